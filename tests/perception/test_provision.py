"""ThingsBoard's device provisioning (POST /api/v1/provision): a device presenting its profile's key and
secret registers itself and gets a token that works over HTTP and MQTT; a wrong key, a wrong secret and
a disabled profile answer NOT_FOUND alike; a taken name, a taken token and a reached limit answer
FAILURE; what is not ThingsBoard's request is a 400 naming the field; the secret is never readable
again; the administrator's `cityops devices provisioning` commands."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.core.auth.models import AuditEntry
from cityops.core.db import Database
from cityops.perception import service
from cityops.perception.models import Device, DeviceProvisioning
from cityops.perception.schemas import ProvisionRequest
from cityops.places import service as places_service
from tests.accounts.helpers import login, logout
from tests.accounts.test_cli import env_for, run
from tests.cases.helpers import point_in_village, scope_of
from tests.conftest import make_settings
from tests.perception.mqtt_helpers import DEVICES, Broker, WorkerThread, tb_sdk_python, wait_until
from tests.perception.mqtt_helpers import Device as MqttDevice
from tests.perception.test_mqtt import points_of

NOT_FOUND = {"status": "NOT_FOUND", "errorMsg": "Provision data was not found!"}
TB_PROVISION = DEVICES / "tb_sdk_provision.py"


def enable(client: TestClient, db: Database, profile: str = "smoke_detector", **body: Any) -> dict[str, Any]:
    """Provisioning enabled by the administrator for village 1; the answer carries key and secret."""
    login(client, "admin")
    answer = client.put(f"/api/perception/provisioning/{profile}",
                        json={"division_code": scope_of(db, "village1.operator"), **body})
    assert answer.status_code == 200, answer.text
    logout(client)
    found: dict[str, Any] = answer.json()
    return found


def ask(client: TestClient, config: dict[str, Any], name: str | None = "一村烟感-自注册",
        **extra: Any) -> Any:
    body = {"provisionDeviceKey": config["provision_key"], "provisionDeviceSecret": config["secret"], **extra}
    if name is not None:
        body["deviceName"] = name
    answer = client.post("/api/v1/provision", json=body)
    assert answer.status_code == 200, answer.text  # as ThingsBoard: the outcome is in the body
    return answer.json()


def devices_named(db: Database, name: str) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Device).where(Device.name == name)) or 0


def test_a_provisioned_device_gets_a_token_that_sends_telemetry(client: TestClient, db: Database) -> None:
    config = enable(client, db)
    assert config["secret"] and config["provision_key"] and config["department"] == "fire"
    answer = ask(client, config)
    assert answer["status"] == "SUCCESS" and answer["credentialsType"] == "ACCESS_TOKEN"
    token = answer["credentialsValue"]
    assert set(answer) == {"status", "credentialsType", "credentialsValue"} and len(token) == 20
    assert client.post(f"/api/v1/{token}/telemetry", json={"smoke": 0.02, "battery": 91}).status_code == 200

    login(client, "admin")
    [device] = client.get("/api/perception/devices", params={"q": "一村烟感-自注册"}).json()["items"]
    shown = client.get(f"/api/perception/devices/{device['id']}").json()
    village = scope_of(db, "village1.operator")
    _lon, _lat, first_grid = point_in_village(db, village)
    assert shown["grid_code"] == first_grid and shown["village_code"] == village
    assert shown["synthetic"] is False and shown["org_unit"]["code"] == "dept-fire"
    assert shown["position_confirmed"] is False and shown["latest"]["battery"]["value"] == 91.0
    attributes = client.get(f"/api/perception/devices/{device['id']}/attributes").json()
    assert [(a["key"], a["value"]) for a in attributes["server"]] == [("provisionState", "provisioned")]
    page = client.get(f"/devices/{device['id']}")
    assert "data-position-unconfirmed" in page.text and "位置待确认" in page.text

    # A manager gives its real position: placed as a new device is, and confirmed.
    lon, lat, _grid = point_in_village(db, scope_of(db, "village2.operator"))
    moved = client.patch(f"/api/perception/devices/{device['id']}", json={"lon": lon, "lat": lat})
    assert moved.status_code == 200, moved.text
    assert moved.json()["position_confirmed"] is True
    assert moved.json()["village_code"] == scope_of(db, "village2.operator")
    assert "data-position-unconfirmed" not in client.get(f"/devices/{device['id']}").text
    with db.sessions() as session:
        actions = {(e.action, e.resource_type, e.username) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.resource_id.in_([str(device["id"]), "smoke_detector"])))}
    assert ("create", "device", "provision:smoke_detector") in actions
    assert ("update", "device", "admin") in actions and ("create", "device_provisioning", "admin") in actions


def test_a_device_may_choose_its_token_if_it_is_free_and_well_formed(client: TestClient,
                                                                     db: Database) -> None:
    config = enable(client, db)
    chosen = ask(client, config, "一村烟感-自选令牌", credentialsType="ACCESS_TOKEN", token="my-own_token.01")
    assert chosen["status"] == "SUCCESS" and chosen["credentialsValue"] == "my-own_token.01"
    assert client.post("/api/v1/my-own_token.01/telemetry", json={"smoke": 0.01}).status_code == 200
    taken = ask(client, config, "一村烟感-抢令牌", credentialsType="ACCESS_TOKEN", token="my-own_token.01")
    assert taken["status"] == "FAILURE" and taken["errorMsg"] == "Failed to provision device!"
    assert "token" in taken["reason"] and devices_named(db, "一村烟感-抢令牌") == 0
    reserved = ask(client, config, "一村烟感-保留名", credentialsType="ACCESS_TOKEN", token="provision")
    assert reserved["status"] == "FAILURE"
    # As ThingsBoard: a token without its credentials type is not taken; the device gets a new one.
    ignored = ask(client, config, "一村烟感-无类型", token="another-token-02")
    assert ignored["status"] == "SUCCESS" and ignored["credentialsValue"] != "another-token-02"
    # Without a name the device gets one.
    unnamed = ask(client, config, None)
    assert unnamed["status"] == "SUCCESS"


def test_a_wrong_key_or_secret_or_a_disabled_profile_answer_not_found_alike(
        client: TestClient, db: Database) -> None:
    config = enable(client, db)
    secret = config["secret"]
    wrong_secret = ask(client, {**config, "secret": secret[:-1] + ("y" if secret.endswith("x") else "x")})
    unknown_key = ask(client, {**config, "provision_key": "no-such-key"})
    both_empty = ask(client, {"provision_key": "", "secret": ""})
    other_profiles_secret = ask(client, {**config, "secret": enable(client, db, "temperature")["secret"]})
    assert wrong_secret == unknown_key == both_empty == other_profiles_secret == NOT_FOUND
    login(client, "admin")
    shown = client.get("/api/perception/provisioning/smoke_detector").json()
    assert shown["failed_attempts"] == 2 and shown["last_failure_at"] is not None
    assert shown["provisioned"] == 0
    off = client.put("/api/perception/provisioning/smoke_detector", json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    logout(client)
    assert ask(client, config) == NOT_FOUND  # the right key and secret, but disabled
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Device).where(
            Device.position_confirmed.is_(False))) == 0


def test_a_taken_name_and_a_reached_limit_answer_failure(client: TestClient, db: Database) -> None:
    config = enable(client, db, max_devices=2)
    assert ask(client, config, "一村烟感-甲")["status"] == "SUCCESS"
    twice = ask(client, config, "一村烟感-甲")
    assert twice["status"] == "FAILURE" and twice["errorMsg"] == "Failed to provision device!"
    assert "exists already" in twice["reason"]
    assert ask(client, config, "一村烟感-乙")["status"] == "SUCCESS"  # the failure took no slot
    full = ask(client, config, "一村烟感-丙")
    assert full["status"] == "FAILURE" and "limit of 2" in full["reason"]
    assert devices_named(db, "一村烟感-丙") == 0
    login(client, "admin")
    raised = client.put("/api/perception/provisioning/smoke_detector", json={"max_devices": 3})
    assert raised.json()["provisioned"] == 2 and raised.json()["secret"] is None
    logout(client)
    assert ask(client, config, "一村烟感-丙")["status"] == "SUCCESS"


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "body"),
    (b'["a list"]', "body"),
    (b'{"deviceName": "x", "provisionDeviceSecret": "s"}', "provisionDeviceKey"),
    (b'{"provisionDeviceKey": "k"}', "provisionDeviceSecret"),
    (b'{"provisionDeviceKey": 12345, "provisionDeviceSecret": "s"}', "provisionDeviceKey"),
    (b'{"provisionDeviceKey": "k", "provisionDeviceSecret": "s", "deviceName": "   "}', "deviceName"),
    (b'{"provisionDeviceKey": "k", "provisionDeviceSecret": "s", "deviceName": 7}', "deviceName"),
    (b'{"provisionDeviceKey": "k", "provisionDeviceSecret": "s", "credentialsType": "MQTT_BASIC"}',
     "credentialsType"),
    (b'{"provisionDeviceKey": "k", "provisionDeviceSecret": "s", "credentialsType": "ACCESS_TOKEN", '
     b'"token": "has space"}', "token"),
    (b'{"provisionDeviceKey": "k", "provisionDeviceSecret": "s", "credentialsType": "ACCESS_TOKEN", '
     b'"token": "short"}', "token"),
])
def test_a_request_that_is_not_thingsboards_is_refused_naming_the_field(
        client: TestClient, body: bytes, field: str) -> None:
    answer = client.post("/api/v1/provision", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and answer.json()["message"].startswith(
        "not" if field == "body" else field)


def test_an_oversize_request_is_refused_unread(client: TestClient) -> None:
    answer = client.post("/api/v1/provision", content=b"{" + b" " * 10_000 + b"}")
    assert answer.status_code == 413


def test_the_secret_is_never_readable_afterwards(client: TestClient, db: Database) -> None:
    config = enable(client, db, max_devices=10)
    login(client, "admin")
    shown = client.get("/api/perception/provisioning/smoke_detector").json()
    listed = client.get("/api/perception/provisioning").json()
    changed = client.put("/api/perception/provisioning/smoke_detector", json={"max_devices": 20}).json()
    assert shown["secret"] is None and changed["secret"] is None
    assert [c["secret"] for c in listed] == [None] and shown["provision_key"] == config["provision_key"]
    for read in (shown, listed, changed):
        assert config["secret"] not in json.dumps(read)
    with db.sessions() as session:
        row = session.scalar(select(DeviceProvisioning))
        assert row is not None and config["secret"] not in json.dumps(
            {c.name: str(getattr(row, c.name)) for c in DeviceProvisioning.__table__.columns})
    rotated = client.put("/api/perception/provisioning/smoke_detector", json={"rotate_secret": True}).json()
    assert rotated["secret"] and rotated["secret"] != config["secret"]
    assert rotated["provision_key"] == config["provision_key"]
    logout(client)
    assert ask(client, config) == NOT_FOUND
    assert ask(client, {**config, "secret": rotated["secret"]})["status"] == "SUCCESS"


def test_provisioning_is_managed_by_managers_in_scope(client: TestClient, db: Database) -> None:
    enable(client, db)
    login(client, "village1.operator")  # sees devices, does not manage them
    assert client.get("/api/perception/provisioning/smoke_detector").status_code == 403
    assert client.put("/api/perception/provisioning/smoke_detector",
                      json={"rotate_secret": True}).status_code == 403
    logout(client)
    login(client, "admin")
    assert client.get("/api/perception/provisioning/water_level").status_code == 404  # never enabled
    unknown = client.put("/api/perception/provisioning/toaster", json={"division_code": "410611"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "profile"
    nowhere = client.put("/api/perception/provisioning/water_level", json={"division_code": "419999999"})
    assert nowhere.status_code == 422 and nowhere.json()["field"] == "division_code"
    missing = client.put("/api/perception/provisioning/water_level", json={})
    assert missing.status_code == 422 and missing.json()["field"] == "division_code"
    unit = client.put("/api/perception/provisioning/smoke_detector", json={"department": "bakery"})
    assert unit.status_code == 422 and unit.json()["field"] == "department"
    owned = client.put("/api/perception/provisioning/smoke_detector", json={"department": "emergency"})
    assert owned.json()["org_unit"]["code"] == "dept-emergency"


def test_the_command_line_enables_rotates_disables_and_lists(tmp_path: Path, template_db: Path) -> None:
    env = {**env_for(tmp_path, template_db), "CITYOPS_SECRET_KEY": "cli-secret-" + "y" * 32}
    db = Database(env["CITYOPS_DATABASE_URL"])
    settings = make_settings(tmp_path, database_url=env["CITYOPS_DATABASE_URL"],
                             secret_key=env["CITYOPS_SECRET_KEY"])
    try:
        village = scope_of(db, "village1.operator")
        enabled = run(env, "devices", "provisioning", "enable", "smoke_detector", "--division", village,
                      "--limit", "5")
        assert enabled.returncode == 0, enabled.stderr
        lines = dict(line.split(":", 1) for line in enabled.stdout.splitlines()
                     if line.startswith("provision "))
        key, secret = lines["provision key"].strip(), lines["provision secret"].strip()
        assert "shown this once" in enabled.stderr

        def provision(secret: str, name: str) -> str:
            with db.session() as session:
                data = ProvisionRequest.model_validate({"deviceName": name, "provisionDeviceKey": key,
                                                        "provisionDeviceSecret": secret})
                answer = service.provision(session, data=data, index=places_service.build_index(session),
                                           settings=settings)
                return str(answer["status"])

        assert provision(secret, "淇滨烟感-自注册-1") == "SUCCESS"
        listed = json.loads(run(env, "devices", "provisioning", "list", "--json").stdout)
        assert [(p["profile"], p["provision_key"], p["provisioned"], p["max_devices"], p["enabled"])
                for p in listed] == [("smoke_detector", key, 1, 5, True)]
        assert secret not in json.dumps(listed) and "secret" not in listed[0]

        rotated = run(env, "devices", "provisioning", "rotate", "smoke_detector")
        assert rotated.returncode == 0, rotated.stderr
        new_secret = next(line.split(":", 1)[1].strip() for line in rotated.stdout.splitlines()
                          if line.startswith("provision secret"))
        assert new_secret != secret and key in rotated.stdout
        assert provision(secret, "淇滨烟感-自注册-2") == "NOT_FOUND"
        assert provision(new_secret, "淇滨烟感-自注册-2") == "SUCCESS"

        again = run(env, "devices", "provisioning", "enable", "smoke_detector", "--division", village)
        assert again.returncode == 0 and "unchanged" in again.stdout and new_secret not in again.stdout

        disabled = run(env, "devices", "provisioning", "disable", "smoke_detector")
        assert disabled.returncode == 0 and "disabled" in disabled.stdout
        assert provision(new_secret, "淇滨烟感-自注册-3") == "NOT_FOUND"
        table = run(env, "devices", "provisioning", "list")
        assert "smoke_detector" in table.stdout and "disabled" in table.stdout and "2/5" in table.stdout

        never = run(env, "devices", "provisioning", "rotate", "water_level")
        assert never.returncode == 2 and "never enabled" in never.stderr
        nowhere = run(env, "devices", "provisioning", "enable", "water_level", "--division", "12")
        assert nowhere.returncode == 2 and "division_code" in nowhere.stderr
        assert "Traceback" not in nowhere.stderr
    finally:
        db.dispose()


def test_a_provisioned_device_connects_over_mqtt(client: TestClient, db: Database, broker: Broker,
                                                 worker: WorkerThread) -> None:
    config = enable(client, db)
    token = ask(client, config, "一村烟感-MQTT-自注册")["credentialsValue"]
    with db.sessions() as session:
        device_id = session.scalar(select(Device.id).where(Device.access_token == token))
    assert device_id is not None
    # The ingest worker writes the new token to the broker's credentials file; the plugin reloads it.
    device = MqttDevice(broker.port, token).wait_connected()
    device.publish("v1/devices/me/telemetry", json.dumps({"smoke": 0.012}))
    wait_until(lambda: points_of(db, device_id) == 1, what="the provisioned device's point")
    device.close()


def test_thingsboards_sdk_provisions_over_http_unchanged(live_server: str, client: TestClient,
                                                         db: Database) -> None:
    tb_python = tb_sdk_python()
    config = enable(client, db)

    def sdk(name: str, secret: str) -> dict[str, Any]:
        done = subprocess.run([str(tb_python), str(TB_PROVISION), live_server, name, config["provision_key"],
                               secret], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return answer

    made = sdk("一村烟感-TB-SDK-自注册", config["secret"])
    assert len(made["token"]) == 20
    login(client, "admin")
    [device] = client.get("/api/perception/devices", params={"q": "TB-SDK-自注册"}).json()["items"]
    wait_until(lambda: points_of(db, device["id"]) == 2, what="the SDK's two values")
    attributes = client.get(f"/api/perception/devices/{device['id']}/attributes").json()
    assert [(a["key"], a["value"]) for a in attributes["client"]] == [("firmware", "tb-sdk-provisioned")]
    assert sdk("一村烟感-TB-SDK-错", "wrong-secret") == {"failure": NOT_FOUND}
    assert sdk("一村烟感-TB-SDK-自注册", config["secret"])["failure"]["status"] == "FAILURE"
