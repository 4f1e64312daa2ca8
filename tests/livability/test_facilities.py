"""Facility categories and the facility import: what is stored, and every kind of bad row refused with its
row and field, nothing half-imported."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook
from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.core.errors import ValidationFailed
from cityops.livability import categories, demo, service
from cityops.livability.models import Facility, FacilityEntrance
from tests.accounts.helpers import login
from tests.accounts.test_cli import env_for, run

HEADER = "category,name,lon,lat,area_m2,entrances,source_id\n"


def junction(db: Database, rank: int = 0) -> tuple[float, float]:
    """A busy junction of the demo network (in a town)."""
    with db.sessions() as session:
        graph = service.load_graph(session, name=demo.DEMO_NETWORK)
    degree = np.bincount(np.concatenate([graph.u, graph.v]), minlength=graph.node_count)
    node = int(np.argsort(-degree, kind="stable")[rank])
    return float(graph.lon[node]), float(graph.lat[node])


def counts(db: Database) -> tuple[int, int]:
    with db.sessions() as session:
        return (
            session.scalar(select(func.count(Facility.id))) or 0,
            session.scalar(select(func.count(FacilityEntrance.id))) or 0,
        )


def do_import(db: Database, text: str, filename: str = "f.csv", replace: bool = False) -> None:
    with db.session() as session:
        service.import_facilities(
            session, data=text.encode(), filename=filename, network=demo.DEMO_NETWORK, replace=replace
        )


def test_the_categories_cover_the_standard_items_with_thresholds_and_groups() -> None:
    found = categories.catalogue()
    keys = set(found.categories)
    assert {
        "kindergarten",
        "primary_school",
        "middle_school",
        "clinic",
        "elderly_day_care",
        "community_canteen",
        "medical_elderly_care",
        "market",
        "convenience_store",
        "commerce_centre",
        "service_station",
        "community_park",
        "pocket_park",
        "comprehensive_park",
        "pocket_green",
        "fitness_site",
        "fitness_trail",
        "child_friendly_park",
    } <= keys
    assert (
        found.categories["kindergarten"].threshold_m == 300
        and found.categories["kindergarten"].group == "children"
    )
    assert {c.key for c in found.in_group("elderly")} >= {
        "elderly_day_care",
        "community_canteen",
        "medical_elderly_care",
    }
    assert [(r.key, r.within_m, r.min_area_m2) for r in found.green_rules] == [
        ("green", 300, 400),
        ("park", 500, 10_000),
    ]
    assert found.area_class(399).key == "small_green" and found.area_class(12_000).key == "community"
    assert found.find("幼儿园") is found.categories["kindergarten"]


def test_a_broken_categories_file_names_the_line_and_field() -> None:
    text = categories.CATEGORIES_FILE.read_text(encoding="utf-8")
    broken = text.replace(
        "    threshold_m: 500\n    minutes: 10\n    level: basic\n    standard: GB 50180-2018 "
        "table B.0.1 (service radius at most 500 m)",
        "    threshold_m: -5\n    minutes: 10\n    level: basic\n    standard: x",
        1,
    )
    assert broken != text
    line = broken[: broken.index("key: primary_school")].count("\n") + 1
    with pytest.raises(ValidationFailed) as caught:
        categories.parse(broken)
    assert caught.value.message.startswith(f"categories.yaml, line {line}: threshold_m: must be above 0")
    with pytest.raises(ValidationFailed, match=r"line .*: group: unknown group 'nowhere'"):
        categories.parse(text.replace("group: sport", "group: nowhere", 1))


def test_a_csv_of_facilities_is_stored_with_area_classes_and_entrances(db: Database) -> None:
    lon, lat = junction(db)
    before = counts(db)
    do_import(
        db,
        HEADER
        + f"幼儿园,Sunshine kindergarten,{lon + 0.0003},{lat},,,K-1\n"
        + f"pocket_park,Corner garden,{lon - 0.0004},{lat},850,"
        + f'"{lon - 0.0003} {lat}; {lon - 0.0005} {lat}",\n',
    )
    assert counts(db) == (before[0] + 2, before[1] + 2)
    with db.sessions() as session:
        stored = {f.name: f for f in service.list_facilities(session) if not f.synthetic}
    assert stored["Sunshine kindergarten"].category == "kindergarten"
    park = stored["Corner garden"]
    assert park.area_class == "pocket" and park.area_m2 == 850 and len(park.entrances) == 2


def test_every_kind_of_bad_row_is_named_and_nothing_is_stored(db: Database) -> None:
    lon, lat = junction(db)
    do_import(db, HEADER + f"market,Old market,{lon + 0.002},{lat},,,M-1\n")
    before = counts(db)
    rows = [
        f"bakery,Bread,{lon},{lat},,,",  # 2: unknown category
        f"market,No lat,{lon},,,,",  # 3: missing latitude
        f"market,Bad lon,east,{lat},,,",  # 4: not a number
        "market,Far away,100.0,30.0,,,",  # 5: outside the network's area
        f"market,Again,{lon + 0.001},{lat},,,M-1",  # 6: source id already imported
        f"market,Twin a,{lon - 0.001},{lat},,,T-1",  # 7: fine
        f"market,Twin b,{lon - 0.001 + 0.00002},{lat},,,T-2",  # 8: 2 m from row 7
        f"market,Old again,{lon + 0.002},{lat + 0.00001},,,",  # 9: 1 m from the stored market
        f"community_park,No area,{lon},{lat + 0.001},,,",  # 10: a green space needs its area
        f"kindergarten,Dup id,{lon},{lat + 0.002},,,T-1",  # 11: source id also on row 7
    ]
    with pytest.raises(ValidationFailed) as caught:
        do_import(db, HEADER + "\n".join(rows) + "\n")
    errors = {(e["row"], e["field"]): e["message"] for e in caught.value.detail["errors"]}
    assert "unknown category 'bakery'" in errors[(2, "category")]
    assert errors[(3, "lat")] == "missing"
    assert "'east' is not a WGS84 longitude" in errors[(4, "lon")]
    assert "outside the area of network 'hebi-synthetic': no street within 1,000 m" in errors[(5, "lon")]
    assert "source id 'M-1' is already imported" in errors[(6, "source_id")]
    assert "within 5 m of row 7" in errors[(8, "lon")]
    assert "(already imported)" in errors[(9, "lon")]
    assert "a green space (community_park) needs its area" in errors[(10, "area_m2")]
    assert "also on row 7" in errors[(11, "source_id")]
    assert {row for row, _ in errors} == {2, 3, 4, 5, 6, 8, 9, 10, 11}
    assert caught.value.message.startswith("f.csv: 9 rows refused, nothing imported\nrow 2: category:")
    assert counts(db) == before


def test_geojson_features_with_outlines_and_far_entrances(db: Database) -> None:
    lon, lat = junction(db)
    square = [
        [lon, lat + 0.001],
        [lon + 0.0012, lat + 0.001],
        [lon + 0.0012, lat + 0.002],
        [lon, lat + 0.002],
        [lon, lat + 0.001],
    ]
    good = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [square]},
        "properties": {
            "category": "community_park",
            "name": "Square park",
            "entrances": [[lon, lat + 0.001]],
        },
    }
    far = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "category": "pocket_park",
            "name": "Far gate",
            "area_m2": 900,
            "entrances": [[lon + 0.05, lat]],
        },
    }
    doc = {"type": "FeatureCollection", "features": [good, far]}
    with pytest.raises(ValidationFailed) as caught:
        do_import(db, json.dumps(doc), "parks.geojson")
    assert caught.value.detail["errors"] == [
        {"feature": 2, "field": "entrances", "message": caught.value.detail["errors"][0]["message"]}
    ]
    assert (
        "entrance 1 is 4," in caught.value.message and "m from the feature's location" in caught.value.message
    )
    doc["features"] = [good]
    do_import(db, json.dumps(doc), "parks.geojson")
    with db.sessions() as session:
        [park] = [
            f for f in service.list_facilities(session, category="community_park") if f.name == "Square park"
        ]
    # 0.0012° x 0.001° at 35.7° N: about 108 m x 111 m.
    assert 11_000 < (park.area_m2 or 0) < 13_000 and park.area_class == "community"


def test_an_excel_file_names_the_line(db: Database) -> None:
    lon, lat = junction(db)
    book = Workbook()
    sheet = book.active
    sheet.append(["类别", "名称", "经度", "纬度"])
    sheet.append(["便民商业网点", "Corner shop", lon + 0.0002, lat])
    sheet.append(["便民商业网点", "Nowhere shop", 200, lat])
    buffer = io.BytesIO()
    book.save(buffer)
    before = counts(db)
    with db.session() as session, pytest.raises(ValidationFailed, match="row 3: lon: 200 is not a WGS84"):
        service.import_facilities(session, data=buffer.getvalue(), filename="shops.xlsx")
    assert counts(db) == before


def test_the_demo_seeds_the_seed_figures_labelled_synthetic(db: Database) -> None:
    with db.sessions() as session:
        found = service.list_facilities(session)
    assert found and all(f.synthetic for f in found)
    per = {k: sum(f.category == k for f in found) for k in demo.FACILITY_COUNTS}
    # The small template holds the central district: a share of the city's figures, in proportion.
    share = per["convenience_store"] / demo.FACILITY_COUNTS["convenience_store"]
    assert 0.1 < share < 0.8
    for key in ("fitness_trail", "fitness_site", "child_friendly_park"):
        assert per[key] == pytest.approx(demo.FACILITY_COUNTS[key] * share, rel=0.2, abs=2)
    parks = [f for f in found if categories.catalogue().categories[f.category].green]
    assert all(f.entrances and f.area_m2 for f in parks if f.category != "pocket_green" or f.entrances)


def test_the_api_imports_for_managers_only(client: TestClient, db: Database) -> None:
    lon, lat = junction(db)
    body = HEADER + f"fitness_site,Riverside fitness,{lon + 0.0004},{lat + 0.0004},,,\n"
    login(client, "leader")
    refused = client.post("/api/livability/facilities/import", files={"file": ("f.csv", body, "text/csv")})
    assert refused.status_code == 403 and "livability.manage" in refused.json()["message"]
    client.cookies.clear()
    login(client, "admin")
    bad = client.post(
        "/api/livability/facilities/import",
        files={"file": ("f.csv", HEADER + "gym,Gym,1,1,,,\n", "text/csv")},
    )
    assert bad.status_code == 422
    assert (
        bad.json()["detail"]["errors"][0]["row"] == 2
        and bad.json()["detail"]["errors"][0]["field"] == "category"
    )
    done = client.post("/api/livability/facilities/import", files={"file": ("f.csv", body, "text/csv")})
    assert done.status_code == 200, done.text
    assert done.json() == {"imported": 1, "replaced": 0, "by_category": {"fitness_site": 1}}


def test_the_cli_names_the_line_of_a_bad_row(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    path = tmp_path / "f.csv"
    path.write_text(
        HEADER + "market,Old market,114.3,35.7,,,\nbakery,Bread,114.3,35.7,,,\n", encoding="utf-8"
    )
    result = run(env, "livability", "import-facilities", str(path))
    assert result.returncode == 1
    assert "row 3: category: unknown category 'bakery'" in result.stderr


def test_broken_files_are_refused_with_the_reason(client: TestClient) -> None:
    login(client, "admin")
    cases = {
        "a.geojson": ("{not json", "not valid GeoJSON"),
        "b.geojson": (
            json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": [1]}]}),
            "feature 1: properties must be an object",
        ),
        "c.geojson": (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"category": "market", "name": "x"},
                            "geometry": {
                                "type": "LineString",
                                "coordinates": [[114.3, 35.7], [114.31, 35.7]],
                            },
                        }
                    ],
                }
            ),
            "feature 1: geometry: give a Point or a Polygon, not LineString",
        ),
        "d.txt": ("category,name,lon,lat\n", "give a .csv or .xlsx file"),
        "e.csv": ("category,name,lon,lat\n", "no facilities in the file"),
    }
    for name, (body, reason) in cases.items():
        got = client.post("/api/livability/facilities/import", files={"file": (name, body, "text/plain")})
        assert got.status_code == 422, (name, got.text)
        assert reason in got.json()["message"], (name, got.json())


def test_the_map_layer_colours_communities_by_their_distance(client: TestClient) -> None:
    login(client, "leader")
    got = client.get("/api/livability/layer", params={"category": "park_500"})
    assert got.status_code == 200, got.text
    layer = got.json()
    assert layer["threshold_m"] == 500
    for c in layer["communities"]:
        assert c["covered"] == (c["on_network"] and c["distance_m"] is not None and c["distance_m"] <= 500)
    assert layer["facilities"] and all(f["area_m2"] >= 10_000 for f in layer["facilities"])
    assert client.get("/api/livability/layer", params={"category": "zoo"}).status_code == 422
