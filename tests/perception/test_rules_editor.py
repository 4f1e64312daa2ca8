"""The alarm rules editor: the rules in force are listed; a new version saved in the UI or through the
API is in force for the next telemetry; a wrong rule is refused with its line and field and nothing
changes; older versions can be read and put back; only device managers may save."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.core.db import Database
from cityops.perception import rules
from cityops.perception.models import Alarm
from tests.accounts.helpers import login, logout
from tests.perception.test_api import make_device

SHIPPED = rules.DEFAULT_PATH.read_text(encoding="utf-8")


def smoke_alarms(db: Database, device_id: int) -> int:
    with db.sessions() as session:
        found = session.scalars(select(Alarm).where(Alarm.device_id == device_id, Alarm.type == "smoke"))
        return len(found.all())


def test_a_saved_version_is_in_force_for_the_next_telemetry(client: TestClient, db: Database) -> None:
    device = make_device(client, db, name="一村烟感-规则")
    login(client, "admin")
    page = client.get("/devices/rules")
    assert page.status_code == 200
    assert 'data-rule="smoke_high"' in page.text and "系统自带规则" in page.text
    stricter = SHIPPED.replace("    above: 0.15\n    clear_at: 0.08", "    above: 0.5\n    clear_at: 0.3", 1)
    assert stricter != SHIPPED
    saved = client.put("/api/perception/rules", json={"text": stricter, "comment": "烟感阈值调到0.5"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == saved.json()["in_force"] == 1
    t = int(time.time() * 1000) - 60_000
    token = device["access_token"]
    send = lambda ts, smoke: client.post(f"/api/v1/{token}/telemetry",  # noqa: E731
                                         json={"ts": ts, "values": {"smoke": smoke}}).status_code
    assert send(t, 0.3) == 200
    assert smoke_alarms(db, device["id"]) == 0  # the shipped limit (0.15) would have raised
    assert send(t + 1, 0.6) == 200
    assert smoke_alarms(db, device["id"]) == 1
    listed = client.get("/devices/rules").text
    assert "第 1 版" in listed and "烟感阈值调到0.5" in listed and "above: 0.5" in listed


def test_a_wrong_rule_is_refused_with_its_line_and_field_and_nothing_changes(client: TestClient) -> None:
    login(client, "admin")
    wrong = SHIPPED.replace("    clear_at: 0.08", "    clear_at: 0.9", 1)  # above the limit it clears
    refused = client.put("/api/perception/rules", json={"text": wrong})
    assert refused.status_code == 422
    message = refused.text
    assert "line" in message and "rules.0" in message
    missing = SHIPPED.replace("    severity: MAJOR\n", "", 1)
    refused = client.put("/api/perception/rules", json={"text": missing})
    assert refused.status_code == 422 and "severity" in refused.text
    control = client.put("/api/perception/rules", json={"text": "rules:\n  - code: a\x1f\n"})
    assert control.status_code == 422 and "line 2" in control.text and "x001f" in control.text
    assert client.get("/api/perception/rules").json()["version"] is None

    page = client.post("/devices/rules", data={"text": "rules:\n  - code: Bad Code\n", "comment": "x"})
    assert page.status_code == 422
    assert 'data-error="rules"' in page.text and "line 2" in page.text
    assert "Bad Code" in page.text  # what was typed is kept to fix
    assert client.get("/api/perception/rules").json()["versions"] == []


def test_versions_can_be_read_and_put_back_and_only_managers_save(client: TestClient) -> None:
    login(client, "admin")
    first = SHIPPED.replace("above: 0.15", "above: 0.2", 1)
    second = SHIPPED.replace("above: 0.15", "above: 0.25", 1)
    assert client.post("/devices/rules", data={"text": first, "comment": "v1"},
                       follow_redirects=False).status_code == 303
    assert client.post("/devices/rules", data={"text": second, "comment": "v2"},
                       follow_redirects=False).status_code == 303
    old = client.get("/devices/rules", params={"version": 1})
    assert 'data-old-version="1"' in old.text and "above: 0.2\n" in old.text
    assert client.put("/api/perception/rules", json={"text": first,
                                                     "comment": "恢复第1版"}).json()["in_force"] == 3
    assert client.get("/api/perception/rules", params={"version": 99}).status_code == 404
    logout(client)
    login(client, "village1.operator")
    assert client.get("/devices/rules").status_code in (200, 403)
    assert client.put("/api/perception/rules", json={"text": first}).status_code == 403
