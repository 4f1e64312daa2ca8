"""The fire scenario board and the alarm console's hand clearing, from alarms raised by real ingestion:
a detector's smoke alone, then smoke a camera nearby confirms; the board shows the confirmed fire with
its case, today's counts and the detector's false-alarm rate; a hand clear notes the case and lets the
rule raise again; both lists export to Excel."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from cityops import all_models
from cityops.cases.models import Case
from cityops.cases.pages import STATE_LABELS
from cityops.core.auth.models import OrgUnit, User
from cityops.core.db import Base, Database
from cityops.core.i18n import gettext_for
from cityops.perception import service
from cityops.perception.models import Alarm, Device, RuleState
from tests.accounts.helpers import login, logout
from tests.perception.test_alarms import alarms, place, send, timeline
from tests.perception.test_api import make_device

WINDOW_MS = 120_000  # the fire_confirmed rule's window


def local_midnight_ms() -> int:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    return int(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)


def count(page: str, name: str) -> int:
    found = re.search(rf'data-count="{name}"><h2>(\d+)</h2>', page)
    assert found, f"no count {name}"
    return int(found.group(1))


def sheet(content: bytes) -> list[tuple[Any, ...]]:
    return list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))


def test_the_board_shows_the_confirmed_fire_its_case_and_the_false_alarm_rate(client: TestClient,
                                                                              db: Database) -> None:
    smoke = make_device(client, db, name="一村烟感-火情板")
    camera = place(client, "一村视频-火情板", "camera_box", smoke["lon"], smoke["lat"] + 0.0004)  # ~45 m
    t = int(time.time() * 1000) - 300_000
    # Smoke alone, cleared: no fire within the window of its span, so a false alarm.
    send(client, smoke["access_token"], (t, {"smoke": 0.3}), (t + 10_000, {"smoke": 0.02}))
    # Well after that window: the camera sees fire, then the detector smoke: a confirmed fire.
    later = t + 10_000 + WINDOW_MS + 60_000
    send(client, camera["access_token"], (later - 5000, {"event": "fire", "confidence": 0.9}))
    send(client, smoke["access_token"], (later, {"smoke": 0.4}))
    false_alarm, smoke_alarm, fire = alarms(db, smoke["id"])
    assert (false_alarm.status, smoke_alarm.type, fire.type) == ("CLEARED_UNACK", "smoke", "fire")
    assert fire.severity == "CRITICAL" and fire.case_id == smoke_alarm.case_id is not None
    with db.sessions() as session:
        case = session.get(Case, fire.case_id)
        assert case is not None
        unit = session.get(OrgUnit, case.org_unit_id)
        assert unit is not None and unit.code == "dept-fire"
        case_state, unit_name = case.status, unit.name

    login(client, "handler.fire")
    page = client.get("/devices/fire")
    assert page.status_code == 200, page.text
    assert count(page.text, "active") == 2
    midnight = local_midnight_ms()
    assert count(page.text, "confirmed-today") == (1 if later >= midnight else 0)
    assert count(page.text, "unconfirmed-today") == (1 if t >= midnight else 0)
    # The fire first (critical), with its case, the case's state and department.
    active = page.text.split('data-table="fire-active"')[1].split("</table>")[0]
    assert active.index(f'data-alarm="{fire.id}"') < active.index(f'data-alarm="{smoke_alarm.id}"')
    assert f'data-alarm="{fire.id}" data-fire="1"' in active
    assert f'data-alarm="{smoke_alarm.id}" data-fire="0"' in active
    assert f'href="/cases/{fire.case_id}"' in active
    assert gettext_for("zh").gettext(STATE_LABELS[case_state]) in active and unit_name in active
    points = json.loads(page.text.split('id="fire-points">')[1].split("</script>")[0])
    assert {(p["id"], p["fire"], p["severity"]) for p in points} == {(fire.id, True, "CRITICAL"),
                                                                      (smoke_alarm.id, False, "MAJOR")}
    # The rate: two smoke alarms, one confirmed, one false, and the definition said on the page.
    rates = page.text.split('data-table="false-alarm-rates"')[1].split("</table>")[0]
    row = rates.split(f'data-device="{smoke["id"]}"')[1].split("</tr>")[0]
    assert re.findall(r'class="num"[^>]*>([^<]+)<', row) == ["2", "1", "1", "1", "50%"]
    assert "即为误报" in page.text and "120" in page.text
    assert 'href="/devices/fire"' in client.get("/devices").text  # reachable from the device pages

    export = client.get("/devices/fire", params={"format": "xlsx"})
    assert export.status_code == 200
    rows = sheet(export.content)
    assert rows[0][:4] == ("设备", "行政区划", "所属部门", "烟雾告警")
    assert rows[1] == ("一村烟感-火情板", smoke["division_code"], smoke["org_unit"]["name"], 2, 1, 1, 1, 0.5)
    logout(client)

    login(client, "leader")  # no device pages, but the board through the navigation
    assert 'href="/devices/fire"' in client.get("/").text
    board = client.get("/devices/fire?lang=en")
    assert board.status_code == 200 and "Fire board" in board.text and count(board.text, "active") == 2
    assert f'href="/devices/{smoke["id"]}"' not in board.text
    logout(client)
    login(client, "village2.operator")  # another township: none of it
    other = client.get("/devices/fire")
    assert count(other.text, "active") == 0 and "一村烟感-火情板" not in other.text
    logout(client)
    login(client, "citizen")
    assert client.get("/devices/fire").status_code == 403


def test_a_hand_clear_notes_the_case_and_lets_the_rule_raise_again(client: TestClient, db: Database) -> None:
    device = make_device(client, db, name="一村烟感-手动解除")
    token, t = device["access_token"], int(time.time() * 1000) - 60_000
    send(client, token, (t, {"smoke": 0.3}))
    [first] = alarms(db, device["id"])
    assert first.status == "ACTIVE_UNACK" and first.case_id is not None

    login(client, "handler.fire")  # sees and acknowledges alarms, may not clear them
    assert client.post(f"/api/perception/alarms/{first.id}/clear").status_code == 403
    assert client.post(f"/devices/alarms/{first.id}/clear").status_code == 403
    assert "data-clear" not in client.get("/devices/alarms").text
    logout(client)

    login(client, "admin")
    console = client.get("/devices/alarms")
    assert f'data-clear="{first.id}"' in console.text and f'href="/cases/{first.case_id}"' in console.text
    cleared = client.post(f"/api/perception/alarms/{first.id}/clear")
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["status"] == "CLEARED_UNACK" and cleared.json()["clear_at"] is not None
    assert timeline(db, first.case_id)[-1] == "alarm_cleared"
    with db.sessions() as session:
        state = session.scalar(select(RuleState).where(RuleState.device_id == device["id"],
                                                       RuleState.rule_code == "smoke_high"))
        assert state is not None and not state.raised and state.breach_since is None
    again = client.post(f"/api/perception/alarms/{first.id}/clear")  # a second click changes nothing
    assert again.status_code == 200 and again.json()["clear_at"] == cleared.json()["clear_at"]

    # Still smoky: the rule starts over and raises a new alarm, on the same case while it is worked.
    send(client, token, (t + 1000, {"smoke": 0.35}))
    first_again, second = alarms(db, device["id"])
    assert first_again.status == "CLEARED_UNACK" and second.status == "ACTIVE_UNACK"
    assert second.case_id == first.case_id
    # Acknowledged, then cleared from the console's form: ACTIVE_ACK -> CLEARED_ACK.
    assert client.post(f"/api/perception/alarms/{second.id}/ack").json()["status"] == "ACTIVE_ACK"
    assert client.post(f"/devices/alarms/{second.id}/clear", follow_redirects=False).status_code == 303
    assert alarms(db, device["id"])[1].status == "CLEARED_ACK"
    assert "已解除" in client.get("/devices/alarms", params={"active": "false"}).text

    # Filters by severity (and device, as the board's drill-down uses) and the Excel export.
    major = client.get("/devices/alarms", params={"active": "false", "severity": "MAJOR",
                                                  "device": device["id"]})
    assert f'data-alarm="{first.id}"' in major.text and f'data-alarm="{second.id}"' in major.text
    critical = client.get("/devices/alarms", params={"active": "false", "severity": "CRITICAL",
                                                     "device": device["id"]})
    assert "data-alarm=" not in critical.text
    assert client.get("/devices/alarms", params={"severity": "LOUD"}).status_code == 422
    listed = client.get("/api/perception/alarms", params={"active": "false", "device": device["id"],
                                                          "type": "smoke", "severity": "MAJOR"}).json()
    assert listed["total"] == 2
    export = client.get("/devices/alarms", params={"active": "false", "device": device["id"],
                                                   "format": "xlsx"})
    rows = sheet(export.content)
    assert rows[0][:3] == ("编号", "级别", "告警")
    assert [(r[0], r[1], r[2], r[3], r[9]) for r in rows[1:]] == [
        (second.id, "重要", "烟雾浓度超标", "一村烟感-手动解除", first.case_id),
        (first.id, "重要", "烟雾浓度超标", "一村烟感-手动解除", first.case_id)]


@pytest.mark.postgres
def test_the_board_s_queries_and_a_hand_clear_on_postgres(pg_url: str) -> None:
    all_models.load()
    db = Database(pg_url)
    now = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # noon in Hebi
    midnight = int(datetime(2026, 3, 1, 16, 0, tzinfo=UTC).timestamp() * 1000)
    hour = 3_600_000
    try:
        Base.metadata.create_all(db.engine)
        with db.session() as session:  # placed by hand: this test needs no map
            device = Device(name="pg-smoke", profile_code="smoke_detector", lon=114.3, lat=35.7,
                            village_code="410602001001", division_code="410602001001")
            session.add_all([device, User(username="pg-leader", display_name="leader", password_hash="-",
                                          role="leader", scope_code="410600")])
            session.flush()
            session.add_all([
                Alarm(device_id=device.id, type="smoke", rule_code="smoke_high", severity="MAJOR",
                      status="CLEARED_UNACK", start_ts=midnight + 2 * hour, end_ts=midnight + 2 * hour + 9000,
                      clear_ts=midnight + 2 * hour + 9000),
                Alarm(device_id=device.id, type="smoke", rule_code="smoke_high", severity="MAJOR",
                      start_ts=midnight + 11 * hour, end_ts=midnight + 11 * hour),
                Alarm(device_id=device.id, type="fire", rule_code="fire_confirmed", severity="CRITICAL",
                      start_ts=midnight + 11 * hour + 5000, end_ts=midnight + 11 * hour + 5000),
                RuleState(device_id=device.id, rule_code="smoke_high", raised=True,
                          breach_since=midnight + 11 * hour, last_ts=midnight + 11 * hour)])
        with db.sessions() as session:
            leader = session.scalars(select(User)).one()
            rates = service.false_alarm_rates(session, viewer=leader, now=now)
            [row] = rates.items
            assert (row.alarms, row.confirmed, row.false_alarms, row.active, row.rate) == (2, 1, 1, 1, 0.5)
            board = service.fire_board(session, viewer=leader, now=now)
            assert (board.counts.active, board.counts.confirmed_today, board.counts.unconfirmed_smoke_today) \
                == (2, 1, 1)
            assert [a.type for a in board.active] == ["fire", "smoke"]
            assert [a.confirmed for a in board.today if a.type == "smoke"] == [True, False]
        with db.session() as session:
            smoke = session.scalars(select(Alarm).where(Alarm.status == "ACTIVE_UNACK",
                                                        Alarm.type == "smoke")).one()
            assert service.clear_by_hand(session, actor=None, alarm_id=smoke.id).status == "CLEARED_UNACK"
        with db.sessions() as session:
            state = session.scalars(select(RuleState)).one()
            assert not state.raised and state.breach_since is None
    finally:
        db.dispose()
