"""ThingsBoard's MQTT device API through Mosquitto with cityops' plugin: what a paho device sends in
each payload form shows on its page; a device cannot publish as another, nor with a revoked or
unknown token; attribute requests and the SDK's session-limits call are answered; bad messages are
counted by reason while valid ones keep flowing; a fire seen by smoke and a camera becomes a
CRITICAL alarm and a case at the fire brigade."""

from __future__ import annotations

import json
import subprocess
import time

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.cases.models import Case
from cityops.core.auth.models import OrgUnit
from cityops.core.db import Database
from cityops.perception.models import Alarm, IngestRejection, TelemetryPoint
from tests.accounts.helpers import login, logout
from tests.perception.mqtt_helpers import DEVICES, Broker, Device, WorkerThread, tb_sdk_python, wait_until
from tests.perception.test_api import make_device, now_ms

TB_DEVICE = DEVICES / "tb_sdk_device.py"


def points_of(db: Database, device_id: int) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(TelemetryPoint)
                              .where(TelemetryPoint.device_id == device_id)) or 0


def rejections(db: Database) -> dict[str, int]:
    with db.sessions() as session:
        rows = session.execute(select(IngestRejection.reason, func.count()).where(
            IngestRejection.transport == "mqtt").group_by(IngestRejection.reason))
        return {reason: n for reason, n in rows}


def test_paho_device_in_all_three_payload_forms_shows_on_its_page(
        client: TestClient, db: Database, broker: Broker, worker: WorkerThread) -> None:
    device = make_device(client, db, name="一村烟感-MQTT")
    mqtt_device = Device(broker.port, device["access_token"]).wait_connected()
    t = now_ms() - 60_000
    mqtt_device.publish("v1/devices/me/telemetry", json.dumps({"smoke": 0.041, "battery": 93}))
    mqtt_device.publish("v1/devices/me/telemetry", json.dumps({"ts": t, "values": {"smoke": 0.042}}))
    mqtt_device.publish("v1/devices/me/telemetry", json.dumps([{"ts": t + 1, "values": {"smoke": 0.043}},
                                                               {"ts": t + 2, "values": {"smoke": 0.044}}]))
    mqtt_device.close()
    wait_until(lambda: points_of(db, device["id"]) == 5, what="five points stored")
    login(client, "admin")
    page = client.get(f"/devices/{device['id']}")
    assert "0.041" in page.text and "93" in page.text and "在线" in page.text
    series = client.get(f"/api/perception/devices/{device['id']}/series", params={"key": "smoke"}).json()
    assert [value for _ts, value in series["points"]][-4:] == [0.042, 0.043, 0.044, 0.041]


def test_a_device_cannot_publish_as_another_nor_with_a_revoked_or_unknown_token(
        client: TestClient, db: Database, broker: Broker, worker: WorkerThread) -> None:
    mine = make_device(client, db, name="一村烟感-甲")
    other = make_device(client, db, name="一村烟感-乙")
    intruder = Device(broker.port, mine["access_token"]).wait_connected()
    # The platform's own topic layout, and another device's "me" cannot be reached: the broker drops
    # what the ACL forbids.
    intruder.publish(f"v1/devices/{other['id']}/{now_ms()}/telemetry", json.dumps({"smoke": 0.9}))
    intruder.publish(f"down/{other['id']}/v1/devices/me/rpc/request/1", json.dumps({"method": "x"}))
    intruder.client.subscribe("v1/devices/+/+/telemetry", qos=1)
    intruder.publish("v1/devices/me/telemetry", json.dumps({"smoke": 0.01}))
    wait_until(lambda: points_of(db, mine["id"]) == 1, what="the device's own point")
    assert points_of(db, other["id"]) == 0
    assert intruder.received == []

    assert Device(broker.port, "no-such-token").refused is not None
    assert not intruder.disconnected.is_set()
    login(client, "admin")
    assert client.post(f"/devices/{mine['id']}/token", data={"action": "revoke"}).status_code == 200
    # The worker rewrites the credentials file, the plugin reloads it and drops the connection.
    wait_until(intruder.disconnected.is_set, what="the revoked device to be disconnected")
    wait_until(lambda: intruder.refused is not None, what="paho's reconnection to be refused")
    intruder.close()
    again = Device(broker.port, mine["access_token"])
    assert again.refused is not None and not again.connected.is_set()
    again.close()


def test_attribute_requests_and_the_sdk_session_limits_are_answered(
        client: TestClient, db: Database, broker: Broker, worker: WorkerThread) -> None:
    device = make_device(client, db, name="一村烟感-属性")
    mqtt_device = Device(broker.port, device["access_token"]).wait_connected()
    mqtt_device.client.subscribe("v1/devices/me/attributes/response/+", qos=1)
    mqtt_device.client.subscribe("v1/devices/me/rpc/response/+", qos=1)
    mqtt_device.publish("v1/devices/me/attributes", json.dumps({"firmware": "2.1.0", "rssi": -71}))
    limits = {"method": "getSessionLimits", "params": {}}
    mqtt_device.publish("v1/devices/me/rpc/request/1", json.dumps(limits))
    rpc = wait_until(lambda: [json.loads(p) for t, p in mqtt_device.received if t.endswith("rpc/response/1")],
                     what="the session limits")
    assert rpc[0]["rateLimits"] == {} and rpc[0]["maxPayloadSize"] > 0
    mqtt_device.publish("v1/devices/me/attributes/request/7", json.dumps({"clientKeys": "firmware"}))
    answer = wait_until(lambda: [json.loads(p) for t, p in mqtt_device.received
                                 if t == "v1/devices/me/attributes/response/7"], what="the attribute answer")
    assert answer[0] == {"client": {"firmware": "2.1.0"}, "shared": {}}
    mqtt_device.close()


def test_bad_messages_are_counted_by_reason_and_valid_ones_keep_flowing(
        client: TestClient, db: Database, broker: Broker, worker: WorkerThread) -> None:
    device = make_device(client, db, name="一村烟感-坏消息")
    mqtt_device = Device(broker.port, device["access_token"]).wait_connected()
    mqtt_device.publish("v1/devices/me/telemetry", b"{not json")
    mqtt_device.publish("v1/devices/me/telemetry", json.dumps({"smoke": None}))
    mqtt_device.publish("v1/devices/me/telemetry", json.dumps({"ts": now_ms() + 86_400_000 * 3,
                                                               "values": {"smoke": 0.1}}))
    mqtt_device.publish("v1/devices/me/telemetry", json.dumps([1, 2, 3]))
    mqtt_device.publish("v1/devices/me/telemetry", json.dumps({"blob": "x" * 1_200_000}))
    mqtt_device.publish("v1/devices/me/telemetry", json.dumps({"smoke": 0.02}))
    wait_until(lambda: points_of(db, device["id"]) == 1, what="the valid message")
    wait_until(lambda: sum(rejections(db).values()) == 5, what="five refusals")
    assert rejections(db) == {"malformed_json": 1, "bad_value": 1, "ts_out_of_range": 1, "bad_shape": 1,
                              "too_large": 1}
    login(client, "admin")
    page = client.get("/devices/rejections")
    assert "{not json" in page.text
    mqtt_device.close()


def test_a_fire_seen_by_smoke_and_a_camera_is_a_critical_alarm_and_a_case_at_the_fire_brigade(
        client: TestClient, db: Database, broker: Broker, worker: WorkerThread) -> None:
    smoke = make_device(client, db, name="一村烟感-火警")
    login(client, "admin")
    camera = client.post("/api/perception/devices", json={"name": "一村摄像头-火警", "profile": "camera_box",
                                                          "lon": smoke["lon"] + 0.0003, "lat": smoke["lat"]})
    assert camera.status_code == 201, camera.text
    logout(client)
    detector = Device(broker.port, smoke["access_token"]).wait_connected()
    box = Device(broker.port, camera.json()["access_token"]).wait_connected()
    box.publish("v1/devices/me/telemetry", json.dumps({"event": "fire", "snapshot": "snap/0001.jpg"}))
    time.sleep(0.05)  # the two messages may otherwise fall into one batch; the rule must see both ways
    detector.publish("v1/devices/me/telemetry", json.dumps({"smoke": 0.31}))

    def fire_alarm() -> Alarm | None:
        with db.sessions() as session:
            return session.scalar(select(Alarm).where(Alarm.device_id == smoke["id"], Alarm.type == "fire"))

    alarm = wait_until(fire_alarm, what="the fire alarm")
    assert alarm.severity == "CRITICAL" and alarm.status == "ACTIVE_UNACK"
    case_id = wait_until(lambda: (fire_alarm() or alarm).case_id, what="the case")
    with db.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert session.get(OrgUnit, case.org_unit_id).code == "dept-fire"  # type: ignore[union-attr]
    detector.publish("v1/devices/me/telemetry", json.dumps({"smoke": 0.02}))
    wait_until(lambda: (fire_alarm() or alarm).status == "CLEARED_UNACK", what="the alarm to clear")
    detector.close()
    box.close()


def test_thingsboards_own_device_sdk_works_unchanged(
        client: TestClient, db: Database, broker: Broker, worker: WorkerThread) -> None:
    tb_python = tb_sdk_python()
    device = make_device(client, db, name="一村烟感-TB-SDK")
    Device(broker.port, device["access_token"]).wait_connected().close()  # the broker knows it
    run = subprocess.run([str(tb_python), str(TB_DEVICE), "127.0.0.1", str(broker.port),
                          device["access_token"], str(now_ms() - 60_000)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["attributes"]["client"] == {"firmware": "tb-sdk-1.0"}
    wait_until(lambda: points_of(db, device["id"]) == 5, what="the SDK's five points")
    login(client, "admin")
    assert "0.031" in client.get(f"/devices/{device['id']}").text
