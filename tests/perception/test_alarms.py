"""Threshold rules raise, keep up and clear ThingsBoard alarms from the points a device sends; an
alarm opens a case at its rule's department, a flapping detector keeps joining that one case."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.cases.models import Case, CaseEvent
from cityops.core.auth.models import OrgUnit
from cityops.core.db import Database
from cityops.perception.models import Alarm
from tests.accounts.helpers import login, logout
from tests.perception.test_api import make_device


def send(client: TestClient, token: str, *entries: tuple[int, dict[str, Any]]) -> None:
    body = [{"ts": ts, "values": values} for ts, values in entries]
    response = client.post(f"/api/v1/{token}/telemetry", json=body)
    assert response.status_code == 200, response.text


def alarms(db: Database, device_id: int) -> list[Alarm]:
    with db.sessions() as session:
        return list(session.scalars(select(Alarm).where(Alarm.device_id == device_id).order_by(Alarm.id)))


def timeline(db: Database, case_id: int) -> list[str]:
    with db.sessions() as session:
        return list(session.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case_id)
                                    .order_by(CaseEvent.id)))


def test_smoke_raises_a_critical_alarm_and_a_case_at_the_fire_brigade(client: TestClient,
                                                                      db: Database) -> None:
    device = make_device(client, db, name="一村烟感-告警")
    token, t = device["access_token"], int(time.time() * 1000) - 60_000
    send(client, token, (t, {"smoke": 0.05}))
    assert alarms(db, device["id"]) == []
    send(client, token, (t + 1000, {"smoke": 0.32}))
    [alarm] = alarms(db, device["id"])
    assert (alarm.severity, alarm.status, alarm.type) == ("CRITICAL", "ACTIVE_UNACK", "smoke")
    assert alarm.value == 0.32
    assert alarm.case_id is not None
    with db.sessions() as session:
        case = session.get(Case, alarm.case_id)
        assert case is not None
        unit = session.get(OrgUnit, case.org_unit_id)
        assert unit is not None and unit.code == "dept-fire"
        assert (case.type_code, case.category, case.source) == ("sensor_alarm", "fire", "sensor")
        assert case.fields["device_id"] == device["id"] and case.fields["severity"] == "CRITICAL"

    send(client, token, (t + 2000, {"smoke": 0.40}), (t + 3000, {"smoke": 0.10}))  # higher, then the band
    [alarm] = alarms(db, device["id"])
    assert alarm.status == "ACTIVE_UNACK" and alarm.value == 0.10 and alarm.end_ts == t + 3000
    send(client, token, (t + 4000, {"smoke": 0.05}))  # recovered: below clear_at
    [alarm] = alarms(db, device["id"])
    assert alarm.status == "CLEARED_UNACK" and alarm.clear_ts == t + 4000
    assert timeline(db, alarm.case_id)[-1] == "alarm_cleared"

    # The detector flaps: a new alarm each time, all on the one case while it is being worked.
    for k in range(3):
        send(client, token, (t + 10_000 + k * 2000, {"smoke": 0.5}), (t + 11_000 + k * 2000, {"smoke": 0.01}))
    found = alarms(db, device["id"])
    assert len(found) == 4 and {a.case_id for a in found} == {alarm.case_id}
    assert all(a.status == "CLEARED_UNACK" for a in found)
    assert timeline(db, alarm.case_id).count("alarm") == 3

    login(client, "handler.fire")
    listed = client.get("/api/perception/alarms", params={"active": "false"}).json()
    assert listed["total"] == 4 and listed["items"][0]["device_name"] == "一村烟感-告警"
    acked = client.post(f"/api/perception/alarms/{found[0].id}/ack").json()
    assert acked["status"] == "CLEARED_ACK" and acked["ack_at"] is not None
    logout(client)
    login(client, "village2.operator")  # another village: neither the alarm nor its case
    assert client.post(f"/api/perception/alarms/{found[0].id}/ack").status_code == 404
    assert client.get("/api/perception/alarms", params={"active": "false"}).json()["total"] == 0


def test_a_limit_must_be_passed_for_the_rule_s_duration(client: TestClient, db: Database) -> None:
    device = make_device(client, db, name="一村温度-告警", profile="temperature")
    token, t = device["access_token"], int(time.time() * 1000) - 600_000
    send(client, token, (t, {"temperature": 65}), (t + 30_000, {"temperature": 66}))
    assert alarms(db, device["id"]) == []  # 30 s of the 60 s the rule asks for
    send(client, token, (t + 40_000, {"temperature": 55}))  # back under the limit: the clock restarts
    send(client, token, (t + 70_000, {"temperature": 65}), (t + 100_000, {"temperature": 65}))
    assert alarms(db, device["id"]) == []
    send(client, token, (t + 131_000, {"temperature": 70}))
    [alarm] = alarms(db, device["id"])
    assert alarm.severity == "MAJOR" and alarm.start_ts == t + 131_000
    # A point older than the last one seen does not move the alarm back in time.
    send(client, token, (t + 50_000, {"temperature": 20}))
    assert alarms(db, device["id"])[0].status == "ACTIVE_UNACK"


def test_people_cannot_report_a_sensor_alarm_case(client: TestClient, db: Database) -> None:
    from tests.cases.helpers import case_body, scope_of

    login(client, "village1.operator")
    body = case_body(db, scope_of(db, "village1.operator"), type_code="sensor_alarm", category="fire",
                     fields={"device_id": 1, "alarm_type": "smoke", "severity": "CRITICAL"})
    refused = client.post("/api/cases", json=body)
    assert refused.status_code == 422 and refused.json()["field"] == "type_code"
