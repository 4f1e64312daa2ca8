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
    assert (alarm.severity, alarm.status, alarm.type) == ("MAJOR", "ACTIVE_UNACK", "smoke")
    assert alarm.value == 0.32
    assert alarm.case_id is not None
    with db.sessions() as session:
        case = session.get(Case, alarm.case_id)
        assert case is not None
        unit = session.get(OrgUnit, case.org_unit_id)
        assert unit is not None and unit.code == "dept-fire"
        assert (case.type_code, case.category, case.source) == ("sensor_alarm", "fire", "sensor")
        assert case.fields["device_id"] == device["id"] and case.fields["severity"] == "MAJOR"

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


def place(client: TestClient, name: str, profile: str, lon: float, lat: float) -> dict[str, Any]:
    login(client, "admin")
    created = client.post("/api/perception/devices", json={"name": name, "profile": profile, "lon": lon,
                                                           "lat": lat})
    assert created.status_code == 201, created.text
    logout(client)
    device: dict[str, Any] = created.json()
    return device


def test_smoke_confirmed_by_a_camera_nearby_is_a_critical_fire_on_one_case(client: TestClient,
                                                                          db: Database) -> None:
    smoke = make_device(client, db, name="一村烟感-火情")
    camera = place(client, "一村视频-火情", "camera_box", smoke["lon"], smoke["lat"] + 0.0004)  # ~45 m
    far = place(client, "一村视频-远处", "camera_box", smoke["lon"], smoke["lat"] + 0.01)  # ~1.1 km
    t = int(time.time() * 1000) - 30_000
    send(client, far["access_token"], (t, {"event": "fire", "confidence": 0.9}))
    send(client, smoke["access_token"], (t + 1000, {"smoke": 0.3}))
    assert [a.type for a in alarms(db, smoke["id"])] == ["smoke"]  # the camera 1 km away confirms nothing
    send(client, camera["access_token"], (t + 5000, {"event": "fire", "confidence": 0.93,
                                                     "snapshot": "snapshots/1.jpg"}))
    smoke_alarm, fire = alarms(db, smoke["id"])  # the moment the camera's post is answered
    assert (fire.type, fire.severity, fire.status, fire.rule_code) == ("fire", "CRITICAL", "ACTIVE_UNACK",
                                                                      "fire_confirmed")
    assert fire.case_id == smoke_alarm.case_id is not None  # one incident, one case at the fire brigade
    with db.sessions() as session:
        case = session.get(Case, fire.case_id)
        assert case is not None
        unit = session.get(OrgUnit, case.org_unit_id)
        assert unit is not None and unit.code == "dept-fire"
    assert timeline(db, fire.case_id)[-1] == "alarm"
    assert alarms(db, camera["id"]) == []  # the smoke detector is the fire alarm's originator

    send(client, camera["access_token"], (t + 9000, {"event": "fire"}))  # still burning: the same alarm
    assert len(alarms(db, smoke["id"])) == 2
    send(client, smoke["access_token"], (t + 60_000, {"smoke": 0.02}))  # the smoke is gone: both clear
    assert {a.type: a.status for a in alarms(db, smoke["id"])} == {"smoke": "CLEARED_UNACK",
                                                                   "fire": "CLEARED_UNACK"}
