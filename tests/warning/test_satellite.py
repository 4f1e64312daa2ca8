"""The satellite scene catalogue: scenes registered from a GeoJSON or JSON file (bad geometry or a
footprint outside the city refused whole, each problem named by its feature's index), and a case opened
from a flagged change area, once, routed to the area's grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.places import service as places_service
from cityops.warning.models import ChangeArea, SatelliteScene
from tests.accounts.helpers import login, logout
from tests.accounts.test_cli import env_for, run


def square(lon: float, lat: float, half: float) -> dict[str, Any]:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


def feature(scene_id: str, lon: float = 114.36, lat: float = 35.51, **properties: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "scene_id": scene_id, "sensor": "GF-6", "source": "测试数据中心",
        "acquired_at": "2026-07-21T10:32:00+08:00", "cloud_cover": 8.5, "resolution_m": 2.0,
        "changes": [{"kind": "水体扩张", "confidence": 0.88, "geometry": square(lon, lat, 0.005)}],
    }
    values.update(properties)
    return {"type": "Feature", "geometry": square(lon, lat, 0.1), "properties": values}


def collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}, ensure_ascii=False).encode()


def post_scenes(client: TestClient, body: bytes) -> Any:
    return client.post("/api/warnings/scenes", content=body, headers={"Content-Type": "application/json"})


def count(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(SatelliteScene)) or 0


def test_scenes_are_registered_from_a_feature_collection(client: TestClient, db: Database) -> None:
    login(client, "admin")
    made = post_scenes(client, collection(feature("GF6-TEST-1"), feature("GF6-TEST-2", 114.545, 35.665)))
    assert made.status_code == 201, made.text
    found = made.json()
    assert found["created"] == 2 and found["existing"] == 0
    first = found["scenes"][0]
    assert first["sensor"] == "GF-6" and first["footprint"]["type"] == "MultiPolygon"
    [change] = first["changes"]
    assert change["kind"] == "flooding" and change["kind_label"] == "水体扩张" and change["case_id"] is None
    assert 0.8 < change["area_km2"] < 1.2  # about 1 km by 1.1 km
    # The same file again registers nothing new; a JSON list works as well as a FeatureCollection.
    again = post_scenes(client, collection(feature("GF6-TEST-1")))
    assert again.status_code == 201 and again.json()["existing"] == 1 and again.json()["created"] == 0
    as_list = [{**feature("S2-TEST-3")["properties"], "sensor": "Sentinel-2",
                "footprint": square(114.2, 35.7, 0.05), "changes": []}]
    assert post_scenes(client, json.dumps(as_list).encode()).json()["created"] == 1
    listed = client.get("/api/warnings/scenes", params={"sensor": "GF-6"}).json()
    assert {s["scene_id"] for s in listed} == {"GF6-TEST-1", "GF6-TEST-2"}


def test_bad_scenes_are_refused_whole_with_the_feature_and_the_reason(client: TestClient,
                                                                      db: Database) -> None:
    login(client, "admin")
    before = count(db)
    beijing = feature("GF1-BEIJING", 116.4, 39.9)
    point = feature("GF1-POINT")
    point["geometry"] = {"type": "Point", "coordinates": [114.3, 35.7]}
    bowtie = feature("GF1-BOWTIE")
    bowtie["geometry"] = {"type": "Polygon", "coordinates": [[[114.3, 35.7], [114.3, 35.7]]]}
    far_change = feature("GF1-FAR", changes=[{"kind": "landslide", "confidence": 0.5,
                                              "geometry": square(114.0, 35.9, 0.01)}])
    bad_kind = feature("GF1-KIND", changes=[{"kind": "volcano", "confidence": 0.5,
                                             "geometry": square(114.36, 35.51, 0.01)}])
    cloudy = feature("GF1-CLOUD", cloud_cover=140)
    refused = post_scenes(client, collection(feature("GF1-GOOD"), beijing, point, bowtie, far_change,
                                             bad_kind, cloudy, feature("GF1-GOOD")))
    assert refused.status_code == 422
    body = refused.json()
    errors = {e["index"]: e["message"] for e in body["detail"]["errors"]}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6, 7]
    assert errors[1] == "feature 1: the footprint lies outside 鹤壁市"
    assert errors[2] == ("feature 2: footprint: the area must be a GeoJSON Polygon or MultiPolygon, "
                         "not 'Point'")
    assert errors[3].startswith("feature 3: footprint: the area is not a valid GeoJSON Polygon")
    assert errors[4] == "feature 4: change 0: lies outside the scene's footprint"
    assert errors[5].startswith("feature 5: change 0: kind must be one of flooding (水体扩张)")
    assert errors[6].startswith("feature 6: cloud_cover:")
    assert errors[7] == "feature 7: scene GF1-GOOD of 测试数据中心 repeats feature 0"
    assert body["message"].startswith("7 of 8 scenes refused, none registered")
    for text, reason in ((b"{not json", "JSON decode error"), (b'{"type": "Point"}', "expected a JSON list"),
                         (b"[]", "holds no scene")):
        answer = post_scenes(client, text)
        assert answer.status_code == 422 and reason in answer.json()["message"]
    assert count(db) == before
    logout(client)
    login(client, "village1.operator")  # reads the catalogue, does not add to it
    assert client.get("/api/warnings/scenes").status_code == 200
    assert post_scenes(client, collection(feature("GF1-GOOD"))).status_code == 403


def test_a_case_is_opened_from_a_change_area_once(client: TestClient, db: Database) -> None:
    login(client, "admin")
    made = post_scenes(client, collection(feature("GF6-CASE-1")))
    [change] = made.json()["scenes"][0]["changes"]
    opened = client.post(f"/api/warnings/scenes/changes/{change['id']}/case")
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    assert opened.json()["case_number"]
    case = client.get(f"/api/cases/{case_id}").json()
    with db.sessions() as session:
        index = places_service.build_index(session)
        hit = places_service.lookup_point(index, lon=change["lon"], lat=change["lat"])
    assert hit.grid is not None and case["grid_code"] == hit.grid.code  # routed to the area's grid
    assert (case["lon"], case["lat"]) == (change["lon"], change["lat"])
    assert case["type_code"] == "hazard" and "水体扩张" in case["title"]
    assert "GF6-CASE-1" in case["description"]
    second = client.post(f"/api/warnings/scenes/changes/{change['id']}/case")
    assert second.status_code == 409 and f"case {case_id}" in second.json()["message"]
    with db.sessions() as session:
        row = session.get(ChangeArea, change["id"])
        assert row is not None and row.case_id == case_id
    assert client.post("/api/warnings/scenes/changes/999999/case").status_code == 404


def test_opening_a_case_takes_a_dispatcher_in_whose_scope_the_area_lies(client: TestClient,
                                                                        db: Database) -> None:
    login(client, "admin")
    [change] = post_scenes(client, collection(feature("GF6-SCOPE"))).json()["scenes"][0]["changes"]
    logout(client)
    login(client, "village1.operator")  # a dispatcher, of a village in 淇滨区, far from 新镇
    refused = client.post(f"/api/warnings/scenes/changes/{change['id']}/case")
    assert refused.status_code == 403 and "outside your scope" in refused.json()["message"]
    logout(client)
    login(client, "leader")  # reads warnings, dispatches no case
    assert client.post(f"/api/warnings/scenes/changes/{change['id']}/case").status_code == 403
    with db.sessions() as session:
        row = session.get(ChangeArea, change["id"])
        assert row is not None and row.case_id is None


def test_scenes_from_the_cli(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    good = tmp_path / "scenes.geojson"
    good.write_bytes(collection(feature("GF2-CLI-1")))
    done = run(env, "warnings", "scenes", "import", str(good))
    assert done.returncode == 0, done.stderr
    assert "1 scenes registered" in done.stdout
    bad = tmp_path / "bad.geojson"
    bad.write_bytes(collection(feature("GF2-CLI-2"), feature("GF2-CLI-3", 116.4, 39.9)))
    refused = run(env, "warnings", "scenes", "import", str(bad))
    assert refused.returncode == 1
    assert "feature 1: the footprint lies outside 鹤壁市" in refused.stderr
    listed = run(env, "warnings", "scenes", "list")
    assert "GF2-CLI-1" in listed.stdout and "GF2-CLI-2" not in listed.stdout
