"""ThingsBoard's gateway MQTT API through Mosquitto with cityops' plugin: a gateway connects the
devices behind it, which are created at its place and show what it sends for them; a child's smoke
raises an alarm and a case as a direct device's does; a gateway cannot speak for another gateway's
device nor for one with its own token, and a device that is no gateway cannot use the gateway topics;
commands and shared attributes reach a child through its gateway, which answers for it; bad messages
are refused with the reason while their valid parts are stored; ThingsBoard's own gateway SDK works
unchanged."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops import all_models
from cityops.cases.models import Case
from cityops.core.auth.models import OrgUnit
from cityops.core.db import Base, Database
from cityops.perception import service
from cityops.perception.ingest import MAX_GATEWAY_DEVICES, IngestRejected
from cityops.perception.models import Alarm, IngestRejection, TelemetryPoint
from cityops.perception.models import Device as DeviceRow
from tests.accounts.helpers import login
from tests.perception.mqtt_helpers import DEVICES, Broker, Device, WorkerThread, tb_sdk_python, wait_until
from tests.perception.test_api import make_device, now_ms
from tests.perception.test_rpc import subscribed

TB_GATEWAY = DEVICES / "tb_sdk_gateway.py"


def make_gateway(client: TestClient, db: Database, name: str) -> dict[str, Any]:
    return make_device(client, db, name=name, profile="gateway")


def connected(broker: Broker, gateway: dict[str, Any], *topics: str) -> Device:
    """The gateway on paho, subscribed to the gateway topics it receives on."""
    device = Device(broker.port, gateway["access_token"]).wait_connected()
    return subscribed(device, *topics) if topics else device


def publish(device: Device, topic: str, payload: Any) -> None:
    device.publish(topic, payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False))


def child(db: Database, name: str) -> DeviceRow | None:
    with db.sessions() as session:
        return session.scalar(select(DeviceRow).where(DeviceRow.name == name))


def points_of(db: Database, device_id: int) -> int:
    with db.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(TelemetryPoint).where(TelemetryPoint.device_id == device_id)
            )
            or 0
        )


def refusals(db: Database, device_id: int) -> list[tuple[str, str]]:
    """(reason, message) of the messages of a device refused over MQTT, oldest first."""
    with db.sessions() as session:
        rows = session.execute(
            select(IngestRejection.reason, IngestRejection.message)
            .where(IngestRejection.transport == "mqtt", IngestRejection.device_id == device_id)
            .order_by(IngestRejection.id)
        )
        return [(reason, message) for reason, message in rows]


def received(device: Device, topic: str) -> list[Any]:
    return [json.loads(payload) for t, payload in device.received if t == topic]


def test_a_gateway_connects_devices_behind_it_and_their_data_shows(
    client: TestClient, db: Database, broker: Broker, worker: WorkerThread
) -> None:
    gw = make_gateway(client, db, "一村网关-甲")
    gateway = connected(broker, gw, "v1/gateway/attributes/response")
    t = now_ms() - 60_000
    publish(gateway, "v1/gateway/connect", {"device": "网关甲-烟感1", "type": "smoke_detector"})
    publish(gateway, "v1/gateway/connect", {"device": "网关甲-温度1", "type": "temperature"})
    publish(gateway, "v1/gateway/connect", {"device": "网关甲-井盖1", "type": "manhole_cover"})
    # Both of ThingsBoard's forms: a list of timed values, and values timed by the platform.
    publish(
        gateway,
        "v1/gateway/telemetry",
        {
            "网关甲-烟感1": [
                {"ts": t, "values": {"smoke": 0.02, "battery": 91}},
                {"ts": t + 1000, "values": {"smoke": 0.03}},
            ],
            "网关甲-温度1": {"temperature": 21.5},
        },
    )
    publish(gateway, "v1/gateway/attributes", {"网关甲-烟感1": {"firmware": "1.2.0", "rssi": -70}})
    publish(gateway, "v1/gateway/disconnect", {"device": "网关甲-井盖1"})
    smoke = wait_until(lambda: child(db, "网关甲-烟感1"), what="the smoke detector behind the gateway")
    heat = wait_until(lambda: child(db, "网关甲-温度1"), what="the temperature sensor")
    wait_until(lambda: points_of(db, smoke.id) == 3 and points_of(db, heat.id) == 1, what="four points")

    with db.sessions() as session:
        gateway_row = session.get(DeviceRow, gw["id"])
        assert gateway_row is not None and gateway_row.last_activity_at is not None
        children = session.scalars(select(DeviceRow).where(DeviceRow.gateway_id == gw["id"])).all()
        place = (gateway_row.lon, gateway_row.lat, gateway_row.grid_code, gateway_row.village_code)
        place += (gateway_row.division_code, gateway_row.org_unit_id, gateway_row.synthetic)
        assert {d.name: d.profile_code for d in children} == {
            "网关甲-烟感1": "smoke_detector",
            "网关甲-温度1": "temperature",
            "网关甲-井盖1": "manhole_cover",
        }
        for device in children:
            assert (device.lon, device.lat, device.grid_code, device.village_code) == place[:4]
            assert (device.division_code, device.org_unit_id, device.synthetic) == place[4:]
            assert device.access_token is None
            assert device.last_activity_at is not None  # connecting is activity, as in ThingsBoard
    login(client, "admin")
    shown = client.get(f"/api/perception/devices/{smoke.id}").json()
    assert shown["status"] == "online" and shown["profile"] == "smoke_detector"
    assert shown["gateway_id"] == gw["id"]
    page = client.get(f"/devices/{smoke.id}")
    assert f'href="/devices/{shown["gateway_id"]}"' in page.text  # the page links its gateway
    assert shown["latest"]["smoke"]["value"] == 0.03 and shown["latest"]["battery"]["value"] == 91.0
    assert client.get(f"/api/perception/devices/{heat.id}").json()["latest"]["temperature"]["value"] == 21.5

    # Attribute requests, answered as ThingsBoard answers them: "value" for "key", "values" for "keys".
    request = {"device": "网关甲-烟感1", "client": True}
    publish(gateway, "v1/gateway/attributes/request", {**request, "id": 1, "key": "firmware"})
    publish(
        gateway, "v1/gateway/attributes/request", {**request, "id": 2, "keys": ["firmware", "rssi", "nope"]}
    )
    publish(
        gateway, "v1/gateway/attributes/request", {**request, "id": 3, "client": False, "key": "interval"}
    )
    answers = wait_until(
        lambda: (
            len(received(gateway, "v1/gateway/attributes/response")) == 3
            and received(gateway, "v1/gateway/attributes/response")
        ),
        what="three attribute answers",
    )
    assert sorted(answers, key=lambda a: a["id"]) == [
        {"id": 1, "device": "网关甲-烟感1", "value": "1.2.0"},
        {"id": 2, "device": "网关甲-烟感1", "values": {"firmware": "1.2.0", "rssi": -70}},
        {"id": 3, "device": "网关甲-烟感1"},  # no such shared attribute: no value, as in ThingsBoard
    ]
    assert refusals(db, gw["id"]) == []
    gateway.close()


def test_a_childs_smoke_raises_an_alarm_and_a_case_as_a_direct_devices_does(
    client: TestClient, db: Database, broker: Broker, worker: WorkerThread
) -> None:
    gw = make_gateway(client, db, "一村网关-火警")
    gateway = connected(broker, gw)
    publish(gateway, "v1/gateway/connect", {"device": "网关火警-烟感", "type": "smoke_detector"})
    publish(gateway, "v1/gateway/telemetry", {"网关火警-烟感": {"smoke": 0.31}})
    detector = wait_until(lambda: child(db, "网关火警-烟感"), what="the detector")

    def smoke_alarm() -> Alarm | None:
        with db.sessions() as session:
            return session.scalar(select(Alarm).where(Alarm.device_id == detector.id, Alarm.type == "smoke"))

    alarm = wait_until(smoke_alarm, what="the smoke alarm")
    assert alarm.severity == "MAJOR" and alarm.status == "ACTIVE_UNACK" and alarm.value == 0.31
    case_id = wait_until(lambda: (smoke_alarm() or alarm).case_id, what="the case")
    with db.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.fields["device_id"] == detector.id
        assert session.get(OrgUnit, case.org_unit_id).code == "dept-fire"  # type: ignore[union-attr]
    publish(gateway, "v1/gateway/telemetry", {"网关火警-烟感": [{"ts": now_ms(), "values": {"smoke": 0.02}}]})
    wait_until(lambda: (smoke_alarm() or alarm).status == "CLEARED_UNACK", what="the alarm to clear")
    gateway.close()


def test_a_gateway_cannot_speak_for_another_gateways_device_nor_one_with_its_own_token(
    client: TestClient, db: Database, broker: Broker, worker: WorkerThread
) -> None:
    first = make_gateway(client, db, "一村网关-一号")
    second = make_gateway(client, db, "一村网关-二号")
    direct = make_device(client, db, name="一村烟感-直连")
    one = connected(broker, first)
    publish(one, "v1/gateway/connect", {"device": "一号网关-烟感", "type": "smoke_detector"})
    theirs = wait_until(lambda: child(db, "一号网关-烟感"), what="the first gateway's device")
    two = connected(broker, second)
    publish(two, "v1/gateway/connect", {"device": "二号网关-温度", "type": "temperature"})
    # Taking over another's device by connecting it again, with or without a type, is refused.
    publish(two, "v1/gateway/connect", {"device": "一号网关-烟感", "type": "smoke_detector"})
    publish(two, "v1/gateway/connect", {"device": "一村烟感-直连"})
    # One message for five devices: only its own device's part is stored.
    publish(
        two,
        "v1/gateway/telemetry",
        {
            "一号网关-烟感": {"smoke": 0.9},
            "一村烟感-直连": {"smoke": 0.9},
            "一村网关-一号": {"rssi": -1},
            "一村网关-二号": {"rssi": -2},
            "二号网关-温度": {"temperature": 19.5},
        },
    )
    publish(two, "v1/gateway/attributes", {"一村烟感-直连": {"firmware": "evil"}})
    publish(
        two, "v1/gateway/attributes/request", {"id": 1, "device": "一号网关-烟感", "client": True, "key": "a"}
    )
    publish(two, "v1/gateway/rpc", {"device": "一号网关-烟感", "id": 1, "data": {"ok": True}})
    mine = wait_until(lambda: child(db, "二号网关-温度"), what="the second gateway's device")
    wait_until(lambda: points_of(db, mine.id) == 1, what="its point")
    wait_until(lambda: len(refusals(db, second["id"])) == 9, what="nine refusals")
    found = refusals(db, second["id"])
    assert {reason for reason, _message in found} == {"forbidden"}
    for name in ("一号网关-烟感", "一村烟感-直连", "一村网关-一号", "一村网关-二号"):
        assert any(repr(name) in message for _reason, message in found), name
    assert (
        points_of(db, theirs.id) == 0 and points_of(db, direct["id"]) == 0 and points_of(db, first["id"]) == 0
    )
    with db.sessions() as session:
        assert session.get(DeviceRow, theirs.id).gateway_id == first["id"]  # type: ignore[union-attr]
        assert session.get(DeviceRow, direct["id"]).gateway_id is None  # type: ignore[union-attr]
        assert (
            service.attributes_for(session, device_id=direct["id"], client_keys=[], shared_keys=[]).client
            == {}
        )
    assert refusals(db, first["id"]) == []
    one.close()
    two.close()


def test_a_device_that_is_no_gateway_cannot_use_the_gateway_topics(
    client: TestClient, db: Database, broker: Broker, worker: WorkerThread
) -> None:
    plain = make_device(client, db, name="一村烟感-冒充网关")
    device = connected(broker, plain)
    publish(device, "v1/gateway/connect", {"device": "冒充的设备", "type": "smoke_detector"})
    publish(
        device, "v1/gateway/telemetry", {"冒充的设备": {"smoke": 0.5}, "一村烟感-冒充网关": {"smoke": 0.5}}
    )
    publish(device, "v1/devices/me/telemetry", {"smoke": 0.01})  # its own telemetry still counts
    wait_until(lambda: points_of(db, plain["id"]) == 1, what="the device's own point")
    wait_until(lambda: len(refusals(db, plain["id"])) == 3, what="three refusals")
    assert all(
        reason == "forbidden" and "is no gateway" in message for reason, message in refusals(db, plain["id"])
    )
    assert child(db, "冒充的设备") is None
    device.close()


def test_bad_gateway_messages_are_refused_with_the_reason_and_their_valid_parts_stored(
    client: TestClient, db: Database, broker: Broker, worker: WorkerThread
) -> None:
    gw = make_gateway(client, db, "一村网关-坏消息")
    gateway = connected(broker, gw)
    for name in ("坏消息-温度1", "坏消息-温度2"):
        publish(gateway, "v1/gateway/connect", {"device": name, "type": "temperature"})
    bad: list[tuple[str, Any, str]] = [
        ("v1/gateway/telemetry", b"{not json", "malformed_json"),
        ("v1/gateway/telemetry", [1, 2], "bad_shape"),
        ("v1/gateway/connect", {"device": "没有类型"}, "unknown_device"),
        ("v1/gateway/connect", {"device": "默认类型", "type": "default"}, "unknown_device"),
        ("v1/gateway/connect", {"device": "烤面包机", "type": "toaster"}, "bad_value"),
        ("v1/gateway/connect", {"device": "子网关", "type": "gateway"}, "forbidden"),
        ("v1/gateway/connect", {"device": 42, "type": "temperature"}, "bad_value"),
        ("v1/gateway/connect", {"device": " 空格 ", "type": "temperature"}, "bad_value"),
        ("v1/gateway/telemetry", {"从未连接": {"temperature": 20}}, "unknown_device"),
        (
            "v1/gateway/telemetry",
            {f"设备{i}": {"t": 1} for i in range(MAX_GATEWAY_DEVICES + 1)},
            "too_many_devices",
        ),
        ("v1/gateway/attributes", {"坏消息-温度1": ["not", "a", "dict"]}, "bad_shape"),
        ("v1/gateway/attributes/request", {"id": 1, "device": "坏消息-温度1", "client": True}, "bad_shape"),
        ("v1/gateway/attributes/request", {"id": 1, "device": "坏消息-温度1", "key": "a"}, "bad_value"),
        ("v1/gateway/rpc", {"device": "坏消息-温度1", "data": {"ok": True}}, "bad_value"),
        ("v1/gateway/claim", {"坏消息-温度1": {"secretKey": "x", "durationMs": 1000}}, "bad_shape"),
    ]
    for topic, payload, _reason in bad:
        publish(gateway, topic, payload)
    # One device's part is wrong, the other's is stored.
    publish(
        gateway,
        "v1/gateway/telemetry",
        {
            "坏消息-温度1": {"temperature": None},
            "坏消息-温度2": [{"ts": now_ms(), "values": {"temperature": 22}}],
        },
    )
    second = wait_until(lambda: child(db, "坏消息-温度2"), what="the second device")
    wait_until(lambda: points_of(db, second.id) == 1, what="the valid part")
    wait_until(lambda: len(refusals(db, gw["id"])) == len(bad) + 1, what="every refusal")
    found = refusals(db, gw["id"])
    expected = Counter(reason for _topic, _payload, reason in bad)
    expected["bad_value"] += 1  # the null temperature
    assert Counter(reason for reason, _message in found) == expected
    messages = " | ".join(message for _reason, message in found)
    for words in (
        "not valid JSON",
        "no device named '没有类型' behind this gateway",
        "unknown device profile 'toaster'",
        "a gateway cannot be connected behind another",
        f"at most {MAX_GATEWAY_DEVICES}",
        "device '坏消息-温度1': temperature: null is not a value",
        "not a gateway request cityops takes: claim",
    ):
        assert words in messages, words
    for name in ("没有类型", "默认类型", "烤面包机", "子网关", "从未连接", "设备0"):
        assert child(db, name) is None, name
    gateway.close()


def test_a_command_to_a_child_goes_through_its_gateway_which_answers_for_it(
    client: TestClient, db: Database, broker: Broker, worker: WorkerThread
) -> None:
    gw = make_gateway(client, db, "一村网关-命令")
    gateway = connected(broker, gw, "v1/gateway/rpc", "v1/gateway/attributes", "v1/devices/me/rpc/request/+")

    def on_message(paho_client: Any, _userdata: Any, msg: Any) -> None:
        gateway.received.append((msg.topic, msg.payload))
        if msg.topic == "v1/gateway/rpc":
            request = json.loads(msg.payload)
            data = request["data"]
            answer = {
                "device": request["device"],
                "id": data["id"],
                "data": {"echo": data["method"], "params": data["params"]},
            }
            paho_client.publish("v1/gateway/rpc", json.dumps(answer, ensure_ascii=False), qos=1)

    gateway.client.on_message = on_message
    publish(gateway, "v1/gateway/connect", {"device": "网关命令-路灯", "type": "street_light"})
    lamp = wait_until(lambda: child(db, "网关命令-路灯"), what="the street light")
    login(client, "admin")
    command = {"method": "setLamp", "params": {"on": True, "level": 80}, "timeout_ms": 60_000}
    done = client.post(f"/api/perception/devices/{lamp.id}/rpc", params={"wait": "true"}, json=command)
    assert done.status_code == 201, done.text
    rpc = done.json()
    assert rpc["status"] == "SUCCESSFUL" and rpc["transport"] == "mqtt"
    assert rpc["response"] == {"echo": "setLamp", "params": {"on": True, "level": 80}}
    assert received(gateway, "v1/gateway/rpc") == [
        {
            "device": "网关命令-路灯",
            "data": {"id": rpc["id"], "method": "setLamp", "params": {"on": True, "level": 80}},
        }
    ]
    assert [
        t for t, _p in gateway.received if t.startswith("v1/devices/me/")
    ] == []  # not on the device topic

    # Shared attributes of the child are pushed to the gateway, naming it, and read back on request.
    pushed = client.post(
        f"/api/perception/devices/{lamp.id}/attributes/shared", json={"schedule": "18:00-06:00"}
    )
    assert pushed.status_code == 200, pushed.text
    update = wait_until(lambda: received(gateway, "v1/gateway/attributes"), what="the attribute push")
    assert update == [{"device": "网关命令-路灯", "data": {"schedule": "18:00-06:00"}}]
    # A gateway's command of its own still comes on the device topic.
    own = client.post(
        f"/api/perception/devices/{gw['id']}/rpc",
        json={"method": "reboot", "oneway": True, "timeout_ms": 60_000},
    )
    assert own.status_code == 201, own.text
    wait_until(
        lambda: [t for t, _p in gateway.received if t == f"v1/devices/me/rpc/request/{own.json()['id']}"],
        what="the gateway's own command",
    )
    assert refusals(db, gw["id"]) == []
    gateway.close()


def test_the_rules_for_the_devices_gateways_name(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """service.gateway_children on its own: a device is created once, a name two gateways connect in
    one batch goes to the first, and a gateway may have MAX_CHILDREN devices behind it."""
    rules_hold(db, monkeypatch)


@pytest.mark.postgres
def test_the_rules_for_the_devices_gateways_name_on_postgres(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on PostgreSQL (its INSERT ... ON CONFLICT DO NOTHING on the device name)."""
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        rules_hold(db, monkeypatch)
    finally:
        db.dispose()


def rules_hold(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    with db.session() as session:
        gateways = [
            DeviceRow(
                name=f"规则网关-{i}",
                profile_code="gateway",
                lon=114.3,
                lat=35.7,
                village_code="410602001001",
                division_code="410602001001",
                access_token=f"rules-gateway-{i}",
                synthetic=True,
            )
            for i in (1, 2)
        ]
        session.add_all(gateways)
        session.flush()
        a, b = gateways[0].id, gateways[1].id
    wanted = [(a, "规则-甲", "smoke_detector"), (b, "规则-甲", "smoke_detector"), (a, "规则-甲", None)]
    with db.session() as session:
        found = service.gateway_children(session, wanted)
    assert isinstance(found[(a, "规则-甲")], int)
    refused = found[(b, "规则-甲")]
    assert isinstance(refused, IngestRejected) and refused.reason == "forbidden"
    with db.session() as session:
        again = service.gateway_children(session, [(a, "规则-甲", None)])
        assert again == {(a, "规则-甲"): found[(a, "规则-甲")]}
        made = session.get(DeviceRow, found[(a, "规则-甲")])
        assert made is not None and made.synthetic and made.gateway_id == a and made.access_token is None
    monkeypatch.setattr(service, "MAX_CHILDREN", 2)
    with db.session() as session:
        full = service.gateway_children(
            session, [(a, "规则-乙", "temperature"), (a, "规则-丙", "temperature")]
        )
    assert isinstance(full[(a, "规则-乙")], int)
    too_many = full[(a, "规则-丙")]
    assert isinstance(too_many, IngestRejected) and too_many.reason == "too_many_devices"
    with db.session() as session:
        child_id = full[(a, "规则-乙")]
        assert isinstance(child_id, int)
        plain = service.gateway_children(session, [(child_id, "规则-丁", "temperature")])
    refused = plain[(child_id, "规则-丁")]
    assert isinstance(refused, IngestRejected) and refused.reason == "forbidden"
    assert "is no gateway" in refused.message


def test_thingsboards_own_gateway_sdk_works_unchanged(
    client: TestClient, db: Database, broker: Broker, worker: WorkerThread
) -> None:
    tb_python = tb_sdk_python()
    gw = make_gateway(client, db, "一村网关-TB-SDK")
    Device(broker.port, gw["access_token"]).wait_connected().close()  # the broker knows it
    name = "SDK网关-烟感"
    run = subprocess.Popen(
        [
            str(tb_python),
            str(TB_GATEWAY),
            "127.0.0.1",
            str(broker.port),
            gw["access_token"],
            str(now_ms() - 60_000),
            name,
            "smoke_detector",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout is not None
        assert run.stdout.readline().strip() == "ready", run.stderr.read() if run.stderr else ""
        detector = child(db, name)
        assert detector is not None and detector.gateway_id == gw["id"]
        login(client, "admin")
        rpc = client.post(
            f"/api/perception/devices/{detector.id}/rpc",
            params={"wait": "true"},
            json={"method": "setLed", "params": {"on": True}, "timeout_ms": 60_000},
        ).json()
        assert rpc["status"] == "SUCCESSFUL", rpc
        assert rpc["response"] == {"method": "setLed", "params": {"on": True}}
        shared = client.post(
            f"/api/perception/devices/{detector.id}/attributes/shared", json={"interval": 30}
        )
        assert shared.status_code == 200, shared.text
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, out + err[-3000:]
    got = json.loads(out.strip().splitlines()[-1])
    assert got["client_attributes"]["values"] == {"firmware": "gw-sdk-1.0"}
    assert got["commands"] == [
        {"device": name, "data": {"id": rpc["id"], "method": "setLed", "params": {"on": True}}}
    ]
    assert got["updates"] == [{"device": name, "data": {"interval": 30}}]
    assert got["shared_attributes"]["values"] == {"interval": 30}
    wait_until(lambda: points_of(db, detector.id) == 3, what="the SDK's three points")
    login(client, "admin")
    latest = client.get(f"/api/perception/devices/{detector.id}").json()["latest"]
    assert latest["smoke"]["value"] == 0.022 and latest["battery"]["value"] == 88.0
    assert refusals(db, gw["id"]) == []
