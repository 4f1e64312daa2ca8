"""The command board's JSON (GET /api/warnings/board): stations coloured by the level their readings
reach, the areas of the warnings in force (an imported CAP warning among them), the response tasks by
status, the cameras near the areas, the drones and the satellite scenes; and the board page in a real
browser with its map layers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityops.core.db import Database
from cityops.perception import service as perception_service
from cityops.perception.schemas import DeviceCreate
from cityops.places import service as places_service
from cityops.warning import board
from tests.accounts.helpers import login, logout
from tests.cases.helpers import act
from tests.warning.helpers import weather_cap
from tests.warning.test_monitor import station_device
from tests.warning.test_response import XINZHEN, change, issue
from tests.web import test_browser


def get_board(client: TestClient, username: str = "admin", **params: Any) -> dict[str, Any]:
    login(client, username)
    found = client.get("/api/warnings/board", params=params)
    logout(client)
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


def test_stations_show_the_level_their_readings_reach(client: TestClient, db: Database) -> None:
    _device_id, token = station_device(db, "weihe_daokou")
    assert client.post(f"/api/v1/{token}/telemetry", json={"level": 4.9}).status_code == 200
    login(client, "admin")
    station = client.get("/api/warnings/stations/weihe_daokou").json()
    logout(client)
    assert station["level"] in ("orange", "red")
    found = {s["code"]: s for s in get_board(client)["stations"]}
    assert len(found) > 10
    daokou = found["weihe_daokou"]
    assert daokou["level"] == station["level"]
    assert daokou["colour"] == board.LEVEL_COLOURS[station["level"]]
    assert any(m["value"] == 4.9 for m in daokou["metrics"])
    # A dry station reads no level and is grey.
    dry = [s for s in found.values() if s["level"] is None]
    assert dry and all(s["colour"] == board.NO_LEVEL_COLOUR for s in dry)


def test_an_imported_cap_warning_shows_its_area(client: TestClient, db: Database) -> None:
    login(client, "admin")
    imported = client.post("/api/warnings/import", content=weather_cap(level="orange"),
                           headers={"Content-Type": "application/xml"})
    assert imported.status_code == 201, imported.text
    logout(client)
    warning_id = imported.json()["warning"]["id"]
    [shown] = [w for w in get_board(client, "leader")["warnings"] if w["id"] == warning_id]
    assert shown["source"] == "external" and shown["sender_name"] == "鹤壁市气象台"
    assert shown["level"] == "orange" and shown["colour"] == board.LEVEL_COLOURS["orange"]
    assert shown["area"]["type"] == "MultiPolygon"
    assert shown["url"] == f"/warnings/{warning_id}"


def test_a_red_flood_warning_puts_its_tasks_on_the_board_by_status(client: TestClient, db: Database) -> None:
    warning = issue(client, db, hazard="flood", level="red", division_codes=[XINZHEN])
    found = get_board(client)
    tasks = [t for t in found["tasks"] if t["warning_id"] == warning["id"]]
    assert len(tasks) > 8  # the plan's evacuations of eight villages and more
    assert found["tasks_by_status"] == {"open": len(tasks), "acknowledged": 0, "done": 0, "cancelled": 0}
    with db.sessions() as session:
        index = places_service.build_index(session)
        for t in tasks:  # each at its village or grid, inside 新镇
            hit = places_service.lookup_point(index, lon=t["lon"], lat=t["lat"])
            assert hit.township is not None and hit.township.code == XINZHEN

    # Acknowledging one (accept) and finishing another (resolve) move them; lifting cancels the rest.
    first, second = tasks[0]["case_id"], tasks[1]["case_id"]
    login(client, "admin")
    act(client, client.get(f"/api/cases/{first}").json(), "accept")
    accepted = act(client, client.get(f"/api/cases/{second}").json(), "accept")
    act(client, accepted, "resolve", result="已转移")
    logout(client)
    found = get_board(client)
    assert found["tasks_by_status"] == {"open": len(tasks) - 2, "acknowledged": 1, "done": 1, "cancelled": 0}
    change(client, warning["id"], "cancel", {"reason": "水位回落"})
    found = get_board(client)
    assert warning["id"] not in [w["id"] for w in found["warnings"]]  # no longer in force
    buckets = {t["case_id"]: t["bucket"] for t in found["tasks"] if t["warning_id"] == warning["id"]}
    assert buckets[second] == "done"
    assert sorted(set(buckets.values()) - {"done"}) == ["cancelled"]
    assert found["tasks_by_status"]["cancelled"] == len(tasks) - 1


def test_a_village_operator_sees_only_the_tasks_in_the_village(client: TestClient, db: Database) -> None:
    warning = issue(client, db, hazard="flood", level="red", division_codes=[XINZHEN])
    everyone = [t for t in get_board(client)["tasks"] if t["warning_id"] == warning["id"]]
    theirs = [t for t in get_board(client, "village1.operator")["tasks"] if t["warning_id"] == warning["id"]]
    assert everyone and theirs == []  # village 1 lies in 淇滨区, not in 新镇


def camera_at(db: Database, name: str, lon: float, lat: float) -> int:
    with db.session() as session:
        index = places_service.build_index(session)
        device = perception_service.create_device(
            session, data=DeviceCreate(name=name, profile="camera_box", lon=lon, lat=lat), index=index,
            actor=None)
        return device.id


def test_cameras_within_the_distance_of_a_warning_area(client: TestClient, db: Database) -> None:
    warning = issue(client, db, hazard="flood", level="orange", division_codes=[XINZHEN])
    area = next(w for w in get_board(client)["warnings"] if w["id"] == warning["id"])["area"]
    from shapely.geometry import shape

    inside = shape(area).representative_point()
    near = camera_at(db, "看护摄像机-新镇", inside.x, inside.y)
    far = camera_at(db, "看护摄像机-鹤山", 114.15, 35.965)  # in the hills, tens of km away
    cameras = {c["id"]: c for c in get_board(client, camera_m=1000)["cameras"]}
    assert near in cameras and far not in cameras
    assert cameras[near]["distance_m"] == 0 and cameras[near]["warning_ids"] == [warning["id"]]
    assert all(c["distance_m"] <= 1000 for c in cameras.values())
    # Cameras are those in the reader's scope: the city's leader sees it, village 1's operator does not.
    assert near in [c["id"] for c in get_board(client, "leader", camera_m=1000)["cameras"]]
    assert near not in [c["id"] for c in get_board(client, "village1.operator", camera_m=1000)["cameras"]]
    login(client, "admin")
    assert client.get("/api/warnings/board", params={"camera_m": 0}).status_code == 422


def test_no_warning_in_force_no_cameras(client: TestClient, db: Database) -> None:
    found = get_board(client)
    assert found["warnings"] == [] and found["cameras"] == []
    assert found["tasks_by_status"] == {"open": 0, "acknowledged": 0, "done": 0, "cancelled": 0}


def test_the_seeded_drones_routes_and_scenes_are_on_the_board(client: TestClient, db: Database) -> None:
    found = get_board(client)
    assert len(found["drones"]) == 3 and all(d["lon"] is not None and len(d["track"]) > 2
                                             for d in found["drones"])
    assert {r["drone_id"] for r in found["routes"]} == {d["id"] for d in found["drones"]}
    assert len(found["scenes"]) == 3 and all(s["synthetic"] and s["changes"] for s in found["scenes"])
    # A citizen has no board.
    login(client, "citizen")
    assert client.get("/api/warnings/board").status_code == 403


# --- the board page in a real browser --------------------------------------------------------------

# Debian's chromium and the built web assets, as the shell's browser test has them.
browser = test_browser.browser
assets_built = test_browser.assets_built


@pytest.mark.browser
def test_the_board_page_draws_its_layers(assets_built: None, live_server: str, client: TestClient,
                                         db: Database, browser: Any) -> None:
    from playwright.sync_api import expect

    from cityops.accounts.demo import DEMO_PASSWORD

    warning = issue(client, db, hazard="flood", level="red", division_codes=[XINZHEN])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server}/login?next=/warnings/board")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("form[action^='/login'] [type=submit]").click()
    board_map = page.locator("#board-map")
    expect(board_map).to_have_attribute("data-ready", "yes")
    assert int(board_map.get_attribute("data-stations") or 0) > 10
    assert int(board_map.get_attribute("data-tasks") or 0) > 8
    assert board_map.get_attribute("data-warnings") == "1"
    assert board_map.get_attribute("data-drones") == "3"
    control = page.locator(".leaflet-control-layers")
    for name in ("监测站点", "预警区域", "响应任务", "无人机", "巡查航线", "卫星影像"):
        expect(control).to_contain_text(name)
    expect(page.locator(".board-bar [data-bucket=open] strong")).not_to_have_text("–")
    # Switching a layer off takes its markers off the map.
    markers = page.locator(".leaflet-marker-icon")
    assert markers.count() == 3
    control.get_by_text("无人机").click()
    expect(markers).to_have_count(0)
    # The warning's own page draws its area on a map of the counties.
    page.goto(f"{live_server}/warnings/{warning['id']}")
    expect(page.locator("#warning-map")).to_have_attribute("data-ready", "yes")
    assert page.locator("#warning-map path.leaflet-interactive").count() >= 1
    assert errors == []
