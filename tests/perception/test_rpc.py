"""Server-side RPC and shared attributes, as ThingsBoard has them: a command reaches a paho device
over MQTT and its answer ends it SUCCESSFUL; one never answered ends TIMEOUT (never sent: EXPIRED);
a one-way command ends once sent; a device polling over HTTP takes its command and answers it; each
command is taken by one sender; bad input is refused with the reason; shared attributes are pushed
to the device; ThingsBoard's own SDK handles commands unchanged."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select

from cityops import all_models
from cityops.core.db import Base, Database
from cityops.perception import service
from cityops.perception.models import Device as DeviceRow
from cityops.perception.models import DeviceRpc
from cityops.perception.schemas import RpcCreate
from tests.accounts.helpers import login, logout
from tests.perception.mqtt_helpers import DEVICES, Broker, Device, WorkerThread, tb_sdk_python, wait_until
from tests.perception.test_api import make_device

TB_RPC_DEVICE = DEVICES / "tb_sdk_rpc_device.py"


def subscribed(device: Device, *topics: str) -> Device:
    """Subscribe and wait for the broker's SUBACK, so nothing published afterwards is missed."""
    acked = threading.Event()
    device.client.on_subscribe = lambda *_args: acked.set()
    device.client.subscribe([(t, 1) for t in topics])
    assert acked.wait(10), "no SUBACK"
    return device


def answering(device: Device) -> Device:
    """A device that answers every command with {"echo": <method>, "params": <params>}."""

    def on_message(client: Any, _userdata: Any, msg: Any) -> None:
        device.received.append((msg.topic, msg.payload))
        if msg.topic.startswith("v1/devices/me/rpc/request/"):
            request = json.loads(msg.payload)
            reply = {"echo": request["method"], "params": request["params"]}
            client.publish(msg.topic.replace("/request/", "/response/"), json.dumps(reply), qos=1)

    device.client.on_message = on_message
    return device


def requests_seen(device: Device) -> list[tuple[str, dict[str, Any]]]:
    return [(t, json.loads(p)) for t, p in device.received if t.startswith("v1/devices/me/rpc/request/")]


def stored(db: Database, rpc_id: int) -> DeviceRpc:
    with db.sessions() as session:
        rpc = session.get(DeviceRpc, rpc_id)
        assert rpc is not None
        return rpc


def status_of(client: TestClient, rpc_id: int) -> str:
    answer = client.get(f"/api/perception/rpc/{rpc_id}")
    assert answer.status_code == 200, answer.text
    status: str = answer.json()["status"]
    return status


def test_a_command_reaches_a_paho_device_and_its_answer_ends_it_successful(
        client: TestClient, db: Database, broker: Broker, worker: WorkerThread) -> None:
    device = make_device(client, db, name="一村阀门-RPC")
    valve = answering(subscribed(Device(broker.port, device["access_token"]).wait_connected(),
                                 "v1/devices/me/rpc/request/+"))
    login(client, "admin")
    command = {"method": "setValve", "params": {"open": True, "level": 3}, "timeout_ms": 60_000}
    done = client.post(f"/api/perception/devices/{device['id']}/rpc", params={"wait": "true"}, json=command)
    assert done.status_code == 201, done.text
    rpc = done.json()
    assert rpc["status"] == "SUCCESSFUL" and rpc["transport"] == "mqtt"
    assert rpc["response"] == {"echo": "setValve", "params": {"open": True, "level": 3}}
    assert rpc["sent_at"] and rpc["completed_at"]
    # ThingsBoard's request topic and payload reached the device.
    assert requests_seen(valve) == [(f"v1/devices/me/rpc/request/{rpc['id']}",
                                     {"method": "setValve", "params": {"open": True, "level": 3}})]
    listed = client.get(f"/api/perception/devices/{device['id']}/rpc").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == rpc["id"]
    assert stored(db, rpc["id"]).status == "SUCCESSFUL"

    # Without waiting: 201 at once with the queued command, which then runs its course.
    queued = client.post(f"/api/perception/devices/{device['id']}/rpc",
                         json={"method": "getState", "timeout_ms": 60_000}).json()
    assert queued["status"] in ("QUEUED", "SENT", "DELIVERED", "SUCCESSFUL") and queued["params"] == {}
    wait_until(lambda: status_of(client, queued["id"]) == "SUCCESSFUL", what="the second answer")
    listed = client.get(f"/api/perception/devices/{device['id']}/rpc").json()
    assert [r["id"] for r in listed["items"]] == [queued["id"], rpc["id"]]  # newest first
    valve.close()


def test_a_command_never_answered_times_out_and_one_never_sent_expires(
        client: TestClient, db: Database, broker: Broker, worker: WorkerThread) -> None:
    device = make_device(client, db, name="一村阀门-沉默")
    silent = subscribed(Device(broker.port, device["access_token"]).wait_connected(),
                        "v1/devices/me/rpc/request/+")
    login(client, "admin")
    rpc = client.post(f"/api/perception/devices/{device['id']}/rpc",
                      json={"method": "reboot", "timeout_ms": 1000}).json()
    wait_until(lambda: requests_seen(silent), what="the command to reach the device")
    # The broker acknowledged it (DELIVERED), then the deadline passed: TIMEOUT on reading at once,
    # stored by the expiry job.
    wait_until(lambda: status_of(client, rpc["id"]) == "TIMEOUT", what="the timeout")
    assert stored(db, rpc["id"]).delivered_at is not None
    assert service.expire_rpcs(db) >= 1
    assert stored(db, rpc["id"]).status == "TIMEOUT"
    # A caller that waits gets the end, stored.
    waited = client.post(f"/api/perception/devices/{device['id']}/rpc", params={"wait": "true"},
                         json={"method": "reboot", "timeout_ms": 1000}).json()
    assert waited["status"] == "TIMEOUT" and stored(db, waited["id"]).status == "TIMEOUT"
    silent.close()
    # A late answer is not taken.
    late = client.post(f"/api/v1/{device['access_token']}/rpc/{rpc['id']}", json={"ok": True})
    assert late.status_code == 409 and "TIMEOUT" in late.json()["message"]


def test_a_one_way_command_ends_once_sent(client: TestClient, db: Database, broker: Broker,
                                          worker: WorkerThread) -> None:
    device = make_device(client, db, name="一村喇叭-单向")
    speaker = subscribed(Device(broker.port, device["access_token"]).wait_connected(),
                         "v1/devices/me/rpc/request/+")
    login(client, "admin")
    rpc = client.post(f"/api/perception/devices/{device['id']}/rpc", params={"wait": "true"},
                      json={"method": "announce", "params": "请注意防火", "oneway": True,
                            "timeout_ms": 60_000}).json()
    assert rpc["status"] == "SUCCESSFUL" and rpc["oneway"] and rpc["response"] is None
    wait_until(lambda: requests_seen(speaker), what="the command at the device")
    assert requests_seen(speaker)[0][1] == {"method": "announce", "params": "请注意防火"}
    refused = client.post(f"/api/v1/{device['access_token']}/rpc/{rpc['id']}", json={"ok": True})
    assert refused.status_code == 409 and "one-way" in refused.json()["message"]
    speaker.close()


def test_a_device_polling_over_http_takes_its_command_and_answers_it(client: TestClient,
                                                                     db: Database) -> None:
    device = make_device(client, db, name="一村水表-HTTP")
    token = device["access_token"]
    assert client.get(f"/api/v1/{token}/rpc", params={"timeout": 0}).status_code == 408
    assert client.get("/api/v1/no-such-token/rpc", params={"timeout": 0}).status_code == 401
    login(client, "admin")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # The device waits; the command made meanwhile (or just before) is what the poll returns.
        polled = pool.submit(client.get, f"/api/v1/{token}/rpc", params={"timeout": 30_000})
        rpc = client.post(f"/api/perception/devices/{device['id']}/rpc",
                          json={"method": "readMeter", "params": {"channel": 2}, "timeout_ms": 60_000}).json()
        command = polled.result(60)
    assert command.status_code == 200, command.text
    assert command.json() == {"id": rpc["id"], "method": "readMeter", "params": {"channel": 2}}
    assert status_of(client, rpc["id"]) == "SENT"
    # Taken once: the next poll finds nothing.
    assert client.get(f"/api/v1/{token}/rpc", params={"timeout": 0}).status_code == 408
    answered = client.post(f"/api/v1/{token}/rpc/{rpc['id']}", json={"reading": 1234.5})
    assert answered.status_code == 200, answered.text
    shown = client.get(f"/api/perception/rpc/{rpc['id']}").json()
    assert shown["status"] == "SUCCESSFUL" and shown["response"] == {"reading": 1234.5}
    assert shown["transport"] == "http"
    assert client.post(f"/api/v1/{token}/rpc/{rpc['id']}", json={}).status_code == 409
    assert client.post(f"/api/v1/{token}/rpc/999999", json={}).status_code == 404
    assert client.post(f"/api/v1/nope/rpc/{rpc['id']}", json={}).status_code == 401

    # Text that is not JSON is kept as text; a one-way command is done once handed over.
    text_rpc = client.post(f"/api/perception/devices/{device['id']}/rpc",
                           json={"method": "version", "timeout_ms": 60_000}).json()
    assert client.get(f"/api/v1/{token}/rpc", params={"timeout": 0}).json()["id"] == text_rpc["id"]
    assert client.post(f"/api/v1/{token}/rpc/{text_rpc['id']}", content=b"v2.1 ok").status_code == 200
    assert client.get(f"/api/perception/rpc/{text_rpc['id']}").json()["response"] == "v2.1 ok"
    oneway = client.post(f"/api/perception/devices/{device['id']}/rpc",
                         json={"method": "blink", "oneway": True, "timeout_ms": 60_000}).json()
    assert client.get(f"/api/v1/{token}/rpc", params={"timeout": 0}).json()["method"] == "blink"
    assert status_of(client, oneway["id"]) == "SUCCESSFUL"

    # Nobody takes a command (no MQTT worker here, no poll): it expires unsent.
    unsent = client.post(f"/api/perception/devices/{device['id']}/rpc", params={"wait": "true"},
                         json={"method": "reboot", "timeout_ms": 1000}).json()
    assert unsent["status"] == "EXPIRED" and unsent["sent_at"] is None
    assert stored(db, unsent["id"]).status == "EXPIRED"


def test_bad_commands_are_refused_with_the_reason(client: TestClient, db: Database) -> None:
    device = make_device(client, db, name="一村阀门-坏命令")
    url = f"/api/perception/devices/{device['id']}/rpc"
    assert client.post(url, json={"method": "x"}).status_code == 401  # not signed in
    login(client, "village1.operator")  # sees the device, may not command it
    assert client.post(url, json={"method": "x"}).status_code == 403
    assert client.get(url).status_code == 200
    logout(client)
    login(client, "admin")
    cases = [({"method": "set valve!"}, "method"), ({"method": ""}, "method"),
             ({"method": "x" * 65}, "method"),
             ({"method": "x", "timeout_ms": 10}, "timeout_ms"),
             ({"method": "x", "timeout_ms": 3_600_000}, "timeout_ms"),
             ({"method": "x", "params": {"blob": "x" * 70_000}}, "params"),
             ({"method": "x", "persistent": True}, "persistent")]
    for body, field in cases:
        refused = client.post(url, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert field in refused.text, (field, refused.text)
    assert client.post("/api/perception/devices/999999/rpc", json={"method": "x"}).status_code == 404
    assert client.get("/api/perception/rpc/999999").status_code == 404
    shared = f"/api/perception/devices/{device['id']}/attributes/shared"
    assert client.post(shared, json={}).status_code == 422
    assert client.post(shared, json={"k" * 65: 1}).status_code == 422
    assert client.post(shared, json={"mode": None}).status_code == 422
    assert client.post(shared, json=[1, 2]).status_code == 422
    with db.sessions() as session:
        assert session.scalars(select(DeviceRpc).where(DeviceRpc.device_id == device["id"])).all() == []


def test_shared_attributes_are_pushed_to_the_device(client: TestClient, db: Database, broker: Broker,
                                                    worker: WorkerThread) -> None:
    device = make_device(client, db, name="一村温控-共享属性")
    thermostat = subscribed(Device(broker.port, device["access_token"]).wait_connected(),
                            "v1/devices/me/attributes")
    login(client, "admin")
    answer = client.post(f"/api/perception/devices/{device['id']}/attributes/shared",
                         json={"targetTemp": 21.5, "mode": "节能"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["shared"] == {"targetTemp": 21.5, "mode": "节能"}
    pushed = wait_until(lambda: [json.loads(p) for t, p in thermostat.received
                                 if t == "v1/devices/me/attributes"], what="the attribute push")
    assert pushed == [{"targetTemp": 21.5, "mode": "节能"}]
    client.post(f"/api/perception/devices/{device['id']}/attributes/shared", json={"mode": "舒适"})
    wait_until(lambda: len([t for t, _p in thermostat.received if t == "v1/devices/me/attributes"]) == 2,
               what="the second push")
    assert json.loads(thermostat.received[-1][1]) == {"mode": "舒适"}  # only what changed
    read = client.get(f"/api/v1/{device['access_token']}/attributes",
                      params={"sharedKeys": "targetTemp,mode"})
    assert read.json()["shared"] == {"targetTemp": 21.5, "mode": "舒适"}
    thermostat.close()


def test_each_queued_command_is_taken_by_one_sender(db: Database) -> None:
    with db.session() as session:
        device_id = _device(session).id
        made = [service.create_rpc(session, actor=None, device_id=device_id,
                                   data=RpcCreate(method=f"m{i}", timeout_ms=60_000)) for i in range(3)]
    with db.session() as session:
        taken = service.claim_rpcs(session, limit=2)
    with db.session() as session:
        rest = service.claim_rpcs(session)
    with db.session() as session:
        assert service.claim_rpcs(session) == []
    assert [r[0] for r in taken + rest] == [r.id for r in made]


def _device(session: Any) -> DeviceRow:
    device = DeviceRow(name="rpc-sensor", profile_code="smoke_detector", lon=114.3, lat=35.7,
                       village_code="410602001001", division_code="410602001001", access_token="rpc-token")
    session.add(device)
    session.flush()
    return device


@pytest.mark.postgres
def test_rpc_statements_on_postgres(pg_url: str) -> None:
    """Claims (UPDATE ... RETURNING with CASE), expiry and answers behave as on SQLite, and of two
    senders at once each command goes to one."""
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        with db.session() as session:
            device_id = _device(session).id
            ids = [service.create_rpc(session, actor=None, device_id=device_id,
                                      data=RpcCreate(method=f"m{i}", timeout_ms=60_000, oneway=i == 1)).id
                   for i in range(4)]
        with concurrent.futures.ThreadPoolExecutor(2) as pool:

            def claim() -> list[int]:
                with db.session() as session:
                    return [r[0] for r in service.claim_rpcs(session, limit=2)]

            first, second = pool.submit(claim), pool.submit(claim)
            taken = first.result() + second.result()
        assert len(taken) == len(set(taken)) and set(taken) <= set(ids)
        with db.session() as session:
            rest = [r[0] for r in service.claim_rpcs(session)]
            assert sorted(taken + rest) == ids
            service.rpcs_delivered(session, rpc_ids=ids[:2])
            assert service.answer_rpc(session, device_id=device_id, rpc_id=ids[0], body=b'{"ok": 1}') is None
            service.rpcs_unsent(session, rpc_ids=[ids[3]])
        later = datetime.now(UTC) + timedelta(minutes=5)
        assert service.expire_rpcs(db, now=later) == 2  # the sent one times out, the requeued expires
        with db.sessions() as session:
            states = {r.id: (r.status, r.response) for r in session.scalars(select(DeviceRpc))}
        assert states == {ids[0]: ("SUCCESSFUL", {"ok": 1}), ids[1]: ("SUCCESSFUL", None),
                          ids[2]: ("TIMEOUT", None), ids[3]: ("EXPIRED", None)}
    finally:
        db.dispose()


def test_thingsboards_own_sdk_answers_commands_and_gets_shared_attributes(
        client: TestClient, db: Database, broker: Broker, worker: WorkerThread) -> None:
    tb_python = tb_sdk_python()
    device = make_device(client, db, name="一村阀门-TB-SDK")
    Device(broker.port, device["access_token"]).wait_connected().close()  # the broker knows it
    run = subprocess.Popen([str(tb_python), str(TB_RPC_DEVICE), "127.0.0.1", str(broker.port),
                            device["access_token"]],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        assert run.stdout.readline().strip() == "ready", run.stderr.read() if run.stderr else ""
        login(client, "admin")
        rpc = client.post(f"/api/perception/devices/{device['id']}/rpc", params={"wait": "true"},
                          json={"method": "setLed", "params": {"on": True}, "timeout_ms": 60_000}).json()
        assert rpc["status"] == "SUCCESSFUL"
        assert rpc["response"] == {"method": "setLed", "params": {"on": True}}
        assert client.post(f"/api/perception/devices/{device['id']}/attributes/shared",
                           json={"interval": 30}).status_code == 200
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, out + err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["attributes"] == {"interval": 30}


def test_the_device_page_sends_commands_and_shows_their_outcome(client: TestClient, db: Database) -> None:
    device = make_device(client, db, name="一村阀门-页面")
    page_url = f"/devices/{device['id']}"
    login(client, "admin")
    page = client.get(page_url)
    assert "远程命令" in page.text and 'data-form="rpc"' in page.text and "尚未发送过命令" in page.text
    form = {"method": "setValve", "params": '{"开": true}', "timeout_s": "30"}
    sent = client.post(f"{page_url}/rpc", data=form, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    page = client.get(page_url)
    assert "setValve" in page.text and "排队中" in page.text and escape('{"开": true}') in page.text
    refused = client.post(f"{page_url}/rpc", data={**form, "params": "{oops"})
    assert refused.status_code == 422 and "not valid JSON" in refused.text and "{oops" in refused.text
    assert client.post(f"{page_url}/rpc", data={"method": "x", "timeout_s": "0"}).status_code == 422
    command = client.get(f"/api/v1/{device['access_token']}/rpc", params={"timeout": 0}).json()
    client.post(f"/api/v1/{device['access_token']}/rpc/{command['id']}", json={"done": "好"})
    page = client.get(page_url)
    assert "成功" in page.text and escape('{"done": "好"}') in page.text
    logout(client)
    login(client, "village1.operator")  # sees the commands, may not send them
    page = client.get(page_url)
    assert "setValve" in page.text and 'data-form="rpc"' not in page.text
    assert client.post(f"{page_url}/rpc", data={"method": "x"}).status_code == 403
