"""The ThingsBoard device HTTP API and device management: what a device sends shows on its device,
a revoked or rotated token is refused, refusals are counted by reason, and devices stay in scope."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.perception.models import TelemetryPoint
from tests.accounts.helpers import login, logout
from tests.cases.helpers import point_in_village, scope_of


def make_device(client: TestClient, db: Database, *, name: str = "一村烟感-001",
                profile: str = "smoke_detector", village_user: str = "village1.operator") -> dict[str, Any]:
    lon, lat, _grid = point_in_village(db, scope_of(db, village_user))
    login(client, "admin")
    created = client.post("/api/perception/devices",
                          json={"name": name, "profile": profile, "lon": lon, "lat": lat})
    assert created.status_code == 201, created.text
    logout(client)
    device: dict[str, Any] = created.json()
    return device


def now_ms() -> int:
    return int(time.time() * 1000)


def test_telemetry_in_all_three_forms_shows_on_the_device(client: TestClient, db: Database) -> None:
    device = make_device(client, db)
    assert device["status"] == "inactive" and device["org_unit"]["code"] == "dept-fire"
    token = device["access_token"]
    assert len(token) == 20
    t0 = now_ms() - 60_000
    assert client.post(f"/api/v1/{token}/telemetry", json={"smoke": 0.05, "battery": 97}).status_code == 200
    assert client.post(f"/api/v1/{token}/telemetry",
                       json={"ts": t0, "values": {"smoke": 0.02}}).status_code == 200
    assert client.post(f"/api/v1/{token}/telemetry", json=[
        {"ts": t0 + 1000, "values": {"smoke": 0.03}}, {"ts": t0 + 2000, "values": {"smoke": 0.04}}],
    ).status_code == 200
    # Plain HTTP with no client library: the body as bytes, as firmware sends it.
    raw = client.post(f"/api/v1/{token}/telemetry", content=b'{"alarm": false}',
                      headers={"Content-Type": "application/json"})
    assert raw.status_code == 200

    login(client, "admin")
    shown = client.get(f"/api/perception/devices/{device['id']}").json()
    assert shown["status"] == "online"
    assert shown["latest"]["smoke"]["value"] == 0.05  # the newest point, not the last one sent
    assert shown["latest"]["battery"]["value"] == 97.0 and shown["latest"]["alarm"]["value"] == 0.0
    series = client.get(f"/api/perception/devices/{device['id']}/series", params={"key": "smoke"}).json()
    assert [v for _ts, v in series["points"]] == [0.02, 0.03, 0.04, 0.05]
    assert series["unit"] == "dB/m"


def test_a_point_sent_twice_is_stored_once(client: TestClient, db: Database) -> None:
    device = make_device(client, db)
    body = {"ts": now_ms() - 5000, "values": {"smoke": 0.1, "battery": 90}}
    for _ in range(3):
        assert client.post(f"/api/v1/{device['access_token']}/telemetry", json=body).status_code == 200
    with db.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(TelemetryPoint)
                                .where(TelemetryPoint.device_id == device["id"]))
    assert stored == 2


def test_client_attributes_are_kept_and_read_back(client: TestClient, db: Database) -> None:
    token = make_device(client, db)["access_token"]
    assert client.post(f"/api/v1/{token}/attributes",
                       json={"firmware": "2.1.0", "config": {"interval": 300}}).status_code == 200
    assert client.post(f"/api/v1/{token}/attributes", json={"firmware": "2.1.1"}).status_code == 200
    read = client.get(f"/api/v1/{token}/attributes", params={"clientKeys": "firmware"}).json()
    assert read == {"client": {"firmware": "2.1.1"}, "shared": {}}
    assert client.get(f"/api/v1/{token}/attributes").json()["client"]["config"] == {"interval": 300}


def test_revoked_and_rotated_tokens_are_refused(client: TestClient, db: Database) -> None:
    device = make_device(client, db)
    old = device["access_token"]
    login(client, "admin")
    rotated = client.post(f"/api/perception/devices/{device['id']}/token").json()["access_token"]
    assert rotated and rotated != old
    refused = client.post(f"/api/v1/{old}/telemetry", json={"smoke": 1})
    assert refused.status_code == 401 and refused.json()["detail"]["reason"] == "unknown_token"
    assert client.post(f"/api/v1/{rotated}/telemetry", json={"smoke": 1}).status_code == 200
    assert client.delete(f"/api/perception/devices/{device['id']}/token").json()["access_token"] is None
    assert client.post(f"/api/v1/{rotated}/telemetry", json={"smoke": 1}).status_code == 401


def test_refused_payloads_are_counted_by_reason_and_kept(client: TestClient, db: Database) -> None:
    token = make_device(client, db)["access_token"]
    bad = client.post(f"/api/v1/{token}/telemetry", content=b'{"smoke": ',
                      headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["detail"]["reason"] == "malformed_json"
    future = client.post(f"/api/v1/{token}/telemetry", json={"ts": now_ms() + 86_400_000, "values": {"a": 1}})
    assert future.status_code == 400 and future.json()["field"] == "ts"
    assert client.post("/api/v1/no-such-token/telemetry", json={"smoke": 1}).status_code == 401
    assert client.post(f"/api/v1/{token}/telemetry", json={"smoke": 0.1}).status_code == 200  # unaffected
    login(client, "admin")
    dead = client.get("/api/perception/rejections").json()
    assert dead["counts"] == {"malformed_json": 1, "ts_out_of_range": 1, "unknown_token": 1}
    assert dead["items"][-1]["excerpt"] == '{"smoke": '
    assert dead["items"][0]["token_prefix"] == "no-s"
    logout(client)
    login(client, "village1.operator")  # sees devices, but the dead letters are for device managers
    assert client.get("/api/perception/rejections").status_code == 403


def test_devices_stay_in_scope_and_tokens_are_for_managers(client: TestClient, db: Database) -> None:
    mine = make_device(client, db, name="一村水位计", profile="water_level")
    other = make_device(client, db, name="二村水位计", profile="water_level",
                        village_user="village2.operator")
    login(client, "village1.operator")
    listed = client.get("/api/perception/devices").json()
    assert [d["name"] for d in listed["items"]] == ["一村水位计"]
    assert listed["items"][0]["access_token"] is None
    assert client.get(f"/api/perception/devices/{other['id']}").status_code == 404
    assert client.get(f"/api/perception/devices/{mine['id']}").status_code == 200
    assert client.post(f"/api/perception/devices/{mine['id']}/token").status_code == 403
    logout(client)
    login(client, "handler.water")  # the owning department sees its devices everywhere
    names = {d["name"] for d in client.get("/api/perception/devices").json()["items"]}
    assert names >= {"一村水位计", "二村水位计"}


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "profile": "toaster", "lon": 114.3, "lat": 35.7}, "profile"),
    ({"name": "x", "profile": "smoke_detector", "lon": 10.0, "lat": 10.0}, "lon"),
])
def test_bad_device_registration_names_the_field(client: TestClient, body: dict[str, Any],
                                                  field: str) -> None:
    login(client, "admin")
    response = client.post("/api/perception/devices", json=body)
    assert response.status_code == 422 and response.json()["field"] == field


def test_concurrent_uploads_of_many_devices_are_all_stored(live_server: str, client: TestClient,
                                                           db: Database) -> None:
    made = [make_device(client, db, name=f"并发烟感-{i}") for i in range(5)]
    tokens = [d["access_token"] for d in made]
    t0 = now_ms() - 100_000

    def post(http: httpx.Client, token: str, n: int) -> int:
        batch = [{"ts": t0 + n * 10 + k, "values": {"smoke": k / 10}} for k in range(10)]
        return http.post(f"/api/v1/{token}/telemetry", json=batch).status_code

    with httpx.Client(base_url=live_server, timeout=30) as http, \
            concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda job: post(http, *job), [(t, n) for t in tokens for n in range(20)]))
    assert codes == [200] * 100
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TelemetryPoint).where(
            TelemetryPoint.device_id.in_([d["id"] for d in made]))) == 5 * 20 * 10
