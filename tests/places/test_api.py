"""The /api/places routes as the map and other systems call them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cityops.core.db import Database
from cityops.places import importer
from tests.accounts.helpers import login

QIBIN_SEAT = (114.28598, 35.73947)


@pytest.fixture
def staff(client: TestClient) -> TestClient:
    login(client, "village1.grid")
    return client


def test_routes_need_a_signed_in_staff_user(client: TestClient) -> None:
    assert client.get("/api/places/stats").status_code == 401
    login(client, "citizen")
    refused = client.get("/api/places/stats")
    assert refused.status_code == 403 and "places.read" in refused.json()["message"]


def test_stats(staff: TestClient) -> None:
    body = staff.get("/api/places/stats").json()
    assert body["counts"] == {"city": 1, "county": 6, "township": 48, "village": 1041, "grid": 2397}
    assert len(body["counties"]) == 6


def test_division_with_children_and_ancestors(staff: TestClient) -> None:
    body = staff.get("/api/places/divisions/410611").json()
    assert body["name"] == "淇滨区" and body["level"] == "county"
    assert [a["code"] for a in body["ancestors"]] == ["410600"]
    assert len(body["children"]) == 10
    assert body["counts"]["village"] == 163
    detail = staff.get(f"/api/places/divisions/{body['children'][0]['code']}").json()
    assert detail["children"] and detail["children"][0]["level"] == "village"
    missing = staff.get("/api/places/divisions/999999")
    assert missing.status_code == 404 and "999999" in missing.json()["message"]


def test_village_detail_lists_its_grids_and_grid_route(staff: TestClient) -> None:
    village = staff.get("/api/places/divisions", params={"level": "village", "limit": 1}).json()["items"][0]
    detail = staff.get(f"/api/places/divisions/{village['code']}").json()
    assert detail["grids"] and all(g["village_code"] == village["code"] for g in detail["grids"])
    grid = staff.get(f"/api/places/grids/{detail['grids'][0]['code']}").json()
    assert grid["synthetic"] is True and len(grid["bbox"]) == 4


def test_list_filter_and_paging(staff: TestClient) -> None:
    page = staff.get("/api/places/divisions", params={"level": "township", "parent": "410621"}).json()
    assert page["total"] == 11 and all(d["parent_code"] == "410621" for d in page["items"])
    second = staff.get("/api/places/divisions", params={"level": "village", "limit": 10, "offset": 10}).json()
    assert second["total"] == 1041 and len(second["items"]) == 10
    assert staff.get("/api/places/divisions", params={"level": "street"}).status_code == 422
    assert staff.get("/api/places/divisions", params={"limit": 0}).status_code == 422


@pytest.mark.parametrize(
    ("q", "code"),
    [
        ("浚县", "410621"),
        ("xun xian", "410621"),
        ("XunXian", "410621"),
        ("4106211", "410621101"),
        ("鹤壁集", "410602100"),
    ],
)
def test_search_by_code_name_or_pinyin(staff: TestClient, q: str, code: str) -> None:
    items = staff.get("/api/places/search", params={"q": q}).json()["items"]
    assert code in [i["code"] for i in items]


def test_search_finds_grids(staff: TestClient) -> None:
    items = staff.get("/api/places/search", params={"q": "第1网格", "limit": 5}).json()["items"]
    assert len(items) == 5 and {i["level"] for i in items} == {"grid"}
    assert staff.get("/api/places/search", params={"q": " "}).status_code == 422


def test_lookup_one_point(staff: TestClient) -> None:
    body = staff.get("/api/places/lookup", params={"lon": QIBIN_SEAT[0], "lat": QIBIN_SEAT[1]}).json()
    assert body["county"] == {"code": "410611", "name": "淇滨区"}
    assert body["grid"]["code"].startswith(body["village"]["code"])


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"lon": 200, "lat": 35.7}, 422, "lon"),
        ({"lon": 114.2, "lat": "nan"}, 422, "lat"),
        ({"lon": "east", "lat": 35.7}, 422, "lon"),
        ({"lon": 2.35, "lat": 48.86}, 404, None),
    ],
)
def test_lookup_bad_points(
    staff: TestClient, params: dict[str, object], status: int, field: str | None
) -> None:
    response = staff.get("/api/places/lookup", params=params)
    assert response.status_code == status
    body = response.json()
    if field:
        assert field in body["message"]
    else:
        assert "outside the city" in body["message"]


def test_bulk_lookup(staff: TestClient) -> None:
    body = staff.post(
        "/api/places/lookup", json={"lon": [QIBIN_SEAT[0], 2.35], "lat": [QIBIN_SEAT[1], 48.86]}
    ).json()
    assert body["count"] == 2 and body["matched"] == 1 and body["county"] == ["410611", None]
    too_many = staff.post("/api/places/lookup", json={"lon": [114.2] * 100_001, "lat": [35.7] * 100_001})
    assert too_many.status_code == 422
    mismatch = staff.post("/api/places/lookup", json={"lon": [114.2, 114.3], "lat": [35.7]})
    assert mismatch.status_code == 422 and "lat" in mismatch.json()["message"]


def test_geojson_layers(staff: TestClient) -> None:
    counties = staff.get("/api/places/geojson", params={"level": "county"})
    assert counties.headers["content-type"].startswith("application/geo+json")
    features = counties.json()["features"]
    assert {f["properties"]["code"] for f in features} == {
        "410602",
        "410603",
        "410611",
        "410621",
        "410622",
        "410671",
    }
    props = {f["properties"]["code"]: f["properties"] for f in features}
    assert props["410621"] == {
        "code": "410621",
        "name": "浚县",
        "name_en": "Xunxian",
        "level": "county",
        "parent_code": "410600",
        "synthetic": False,
    }
    assert props["410671"]["synthetic"] is True
    grids = staff.get("/api/places/geojson", params={"level": "grid", "parent": "410621101"}).json()[
        "features"
    ]
    assert grids and all(f["properties"]["code"].startswith("410621101") for f in grids)
    boxed = staff.get("/api/places/geojson", params={"level": "village", "bbox": "114.28,35.73,114.29,35.74"})
    assert 0 < len(boxed.json()["features"]) < 50
    one = staff.get("/api/places/geojson", params={"level": "township", "code": "410622101"}).json()
    assert [f["properties"]["code"] for f in one["features"]] == ["410622101"]
    assert staff.get("/api/places/geojson", params={"level": "grid", "bbox": "1,2,3"}).status_code == 422
    assert staff.get("/api/places/geojson", params={"level": "planet"}).status_code == 422
    assert staff.get("/api/places/geojson", params={"level": "grid", "parent": "123"}).status_code == 404


def test_cached_layers_and_index_follow_an_import(staff: TestClient, db: Database, tmp_path: Path) -> None:
    city = staff.get("/api/places/divisions/410600").json()
    _, min_lat, _, _ = city["bbox"]
    # Just south of the city's southernmost point: outside every division, within the import tolerance.
    edge = next(f for f in staff.get("/api/places/geojson", params={"level": "city"}).json()["features"])[
        "geometry"
    ]["coordinates"][0]
    south_x = min(edge, key=lambda c: c[1])[0]
    probe = {"lon": south_x, "lat": min_lat - 0.004}
    assert staff.get("/api/places/lookup", params=probe).status_code == 404
    # Another process (the CLI) imports a real grid that reaches there.
    box = [
        [south_x - 0.01, min_lat - 0.008],
        [south_x + 0.01, min_lat - 0.008],
        [south_x + 0.01, min_lat + 0.002],
        [south_x - 0.01, min_lat + 0.002],
        [south_x - 0.01, min_lat - 0.008],
    ]
    village = staff.get("/api/places/divisions", params={"parent": "410621101", "limit": 1}).json()["items"][
        0
    ]
    code = village["code"] + "901"
    path = tmp_path / "grid.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": code, "name": "南部网格"},
                        "geometry": {"type": "Polygon", "coordinates": [box]},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    with db.session() as session:
        importer.import_file(session, path=path, level="grid")
    after = staff.get("/api/places/lookup", params=probe)
    assert after.status_code == 200 and after.json()["grid"] == {"code": code, "name": "南部网格"}
    grids = staff.get("/api/places/geojson", params={"level": "grid", "parent": village["code"]}).json()
    assert [f["properties"]["code"] for f in grids["features"]] == [code]
