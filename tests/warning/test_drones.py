"""Drones as mobile devices: a drone's position reported through the device API shows on the board with
its track; patrol routes are stored with their line checked (at least two points, inside the city, a
drone's), from the API and the CLI; the demo's feed flies the drones along their routes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.core.db import Database
from cityops.perception import service as perception_service
from cityops.perception.schemas import DeviceCreate
from cityops.places import service as places_service
from cityops.warning import demo, drones
from cityops.warning.models import PatrolRoute
from tests.accounts.helpers import login, logout
from tests.accounts.test_cli import env_for, run

QIHE = [[114.225, 35.698], [114.28, 35.68], [114.33, 35.66]]


def new_drone(db: Database, name: str = "巡查无人机-测试-01", profile: str = "drone") -> tuple[int, str]:
    with db.session() as session:
        index = places_service.build_index(session)
        device = perception_service.create_device(
            session, data=DeviceCreate(name=name, profile=profile, lon=114.225, lat=35.698), index=index,
            actor=None)
        assert device.access_token is not None
        return device.id, device.access_token


def board_drone(client: TestClient, drone_id: int) -> dict[str, Any]:
    login(client, "admin")
    found = client.get("/api/warnings/board")
    logout(client)
    assert found.status_code == 200, found.text
    [drone] = [d for d in found.json()["drones"] if d["id"] == drone_id]
    assert isinstance(drone, dict)
    return drone


def test_a_drones_reported_position_and_track_show_on_the_board(client: TestClient, db: Database) -> None:
    drone_id, token = new_drone(db)
    assert board_drone(client, drone_id)["lon"] is None  # nothing reported yet
    now_ms = int(time.time() * 1000)
    for i, (lon, lat) in enumerate(QIHE):
        sent = client.post(f"/api/v1/{token}/telemetry",
                           json={"ts": now_ms - (len(QIHE) - i) * 10_000,
                                 "values": {"lat": lat, "lon": lon, "alt": 120 + i, "battery": 90 - i}})
        assert sent.status_code == 200, sent.text
    drone = board_drone(client, drone_id)
    assert (drone["lon"], drone["lat"], drone["alt"], drone["battery"]) == (114.33, 35.66, 122, 88)
    assert [[p["lon"], p["lat"]] for p in drone["track"]] == QIHE
    # A position out of range is not drawn: the last good one stays.
    client.post(f"/api/v1/{token}/telemetry", json={"lat": 135.0, "lon": 114.3})
    assert board_drone(client, drone_id)["lat"] is None


def route_body(drone_id: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "淇河测试航线", "drone_id": drone_id, "schedule": "每日 08:00",
                            "line": {"type": "LineString", "coordinates": QIHE}}
    body.update(overrides)
    return body


def test_a_patrol_route_is_stored_for_a_drone(client: TestClient, db: Database) -> None:
    drone_id, _token = new_drone(db)
    login(client, "admin")
    made = client.post("/api/warnings/routes", json=route_body(drone_id, status="active"))
    assert made.status_code == 201, made.text
    route = made.json()
    assert route["drone_id"] == drone_id and route["status"] == "active"
    assert 10.3 < route["length_km"] < 10.5  # about 5.4 km and 5.0 km along the 淇河
    assert route["line"]["coordinates"] == QIHE
    assert route["id"] in [r["id"] for r in client.get("/api/warnings/routes").json()]
    again = client.post("/api/warnings/routes", json=route_body(drone_id))
    assert again.status_code == 409 and "exists already" in again.json()["message"]


def test_bad_routes_are_refused_with_the_reason(client: TestClient, db: Database) -> None:
    drone_id, _token = new_drone(db)
    camera_id, _ = new_drone(db, "视频分析盒-测试", profile="camera_box")
    login(client, "admin")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"line": {"type": "LineString", "coordinates": [QIHE[0]]}}, "at least 2 points"),
        ({"line": {"type": "LineString", "coordinates": [QIHE[0], QIHE[0]]}}, "at least 2 distinct points"),
        ({"line": {"type": "Polygon", "coordinates": [QIHE]}}, "must be a GeoJSON LineString"),
        ({"line": {"type": "LineString", "coordinates": [QIHE[0], [116.4, 39.9]]}},
         "point 1 of the route (116.400000, 39.900000) lies outside"),
        ({"line": {"type": "LineString", "coordinates": [QIHE[0], ["a", 35.6]]}},
         "point 1 of the route is not"),
        ({"line": {"type": "LineString", "coordinates": [QIHE[0], [114.3, 135.6]]}}, "is not WGS84"),
        ({"drone_id": camera_id}, "not a drone"),
        ({"drone_id": 999_999}, "no drone with id 999999"),
    ]
    for overrides, reason in cases:
        refused = client.post("/api/warnings/routes", json={**route_body(drone_id), **overrides})
        assert refused.status_code == 422, (overrides, refused.text)
        assert reason in refused.json()["message"], refused.json()
    assert client.post("/api/warnings/routes", json=route_body(drone_id, status="flying")).status_code == 422
    with db.sessions() as session:
        assert session.scalar(select(PatrolRoute).where(PatrolRoute.name == "淇河测试航线")) is None
    logout(client)
    login(client, "village1.operator")  # may see warnings, may not plan patrols
    assert client.post("/api/warnings/routes", json=route_body(drone_id)).status_code == 403


def test_routes_from_the_cli(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    db = Database(env["CITYOPS_DATABASE_URL"])
    drone_id, _token = new_drone(db)
    db.dispose()
    points = " ".join(f"{lon},{lat}" for lon, lat in QIHE)
    added = run(env, "warnings", "routes", "add", "淇河夜巡", "--drone", str(drone_id), "--points", points,
                "--status", "active")
    assert added.returncode == 0, added.stderr
    assert "淇河夜巡" in added.stdout and "active" in added.stdout
    outside = run(env, "warnings", "routes", "add", "出城航线", "--drone", str(drone_id), "--points",
                  "114.2,35.7 113.0,34.0")
    assert outside.returncode == 1 and "line: point 1 of the route" in outside.stderr
    listed = run(env, "warnings", "routes", "list")
    assert "淇河夜巡" in listed.stdout and "出城航线" not in listed.stdout


def test_the_demo_feed_flies_the_drones_along_their_routes(db: Database) -> None:
    feed = demo.DroneFeed(db)
    assert feed.load() == 3  # the seeded synthetic drones with active routes
    now_ms = int(time.time() * 1000)
    assert feed.tick(0, now_ms) == 3
    assert feed.tick(1, now_ms + 1000) == 0  # every ten seconds only
    with db.sessions() as session:
        found = drones.drones(session, viewer=None)
        routes = {r.device_id: r for r in session.scalars(select(PatrolRoute))}
    from shapely.geometry import LineString, Point

    for drone in found:
        assert drone.lon is not None and drone.lat is not None
        line = LineString(routes[drone.id].line["coordinates"])
        assert line.distance(Point(drone.lon, drone.lat)) < 1e-5  # on its route
        assert drone.at is not None and abs(drone.at.timestamp() * 1000 - now_ms) < 1
