"""Boundary import: all or nothing, errors that name the feature, datum conversion, Shapefiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import shapefile
import shapely
from sqlalchemy import func, select

from cityops.core import geo
from cityops.core.db import Database
from cityops.core.errors import ValidationFailed
from cityops.places import importer, repository, synthetic
from cityops.places.models import Division, Grid


def feature(code: str | None, geometry: Any, **props: Any) -> dict[str, Any]:
    properties = {"code": code, **props} if code is not None else dict(props)
    mapping = shapely.geometry.mapping(geometry) if geometry is not None else None
    return {"type": "Feature", "properties": properties, "geometry": mapping}


def write(tmp_path: Path, *features: dict[str, Any], name: str = "in.geojson") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}), encoding="utf-8")
    return path


def shape_of(db: Database, code: str) -> Any:
    with db.sessions() as session:
        row = session.get(Division, code)
        assert row is not None and row.geometry is not None
        return shapely.from_wkb(row.geometry)


def villages_of(db: Database, township: str) -> list[str]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(Division.code).where(Division.parent_code == township).order_by(Division.code)
            )
        )


def test_import_villages_replaces_geometry_and_marks_it_real(db: Database, tmp_path: Path) -> None:
    first, second = villages_of(db, "410611100")[:2]
    smaller = shape_of(db, first).buffer(-0.0005)
    path = write(tmp_path, feature(first, smaller), feature(second, shape_of(db, second)))
    with db.session() as session:
        before = repository.revision(session)
        result = importer.import_file(session, path=path, level="village", source="Qibin survey 2024")
    assert (result.created, result.updated) == (0, 2)
    with db.sessions() as session:
        row = session.get(Division, first)
        assert row is not None and not row.geometry_synthetic
        assert row.geometry_source == "Qibin survey 2024" and row.source_datum == "WGS84"
        assert row.area_km2 == pytest.approx(geo.area_km2(smaller), rel=1e-6)
        assert repository.revision(session) == before + 1


def test_one_bad_feature_stops_the_whole_import(db: Database, tmp_path: Path) -> None:
    first = villages_of(db, "410611100")[0]
    original = shape_of(db, first)
    bad = feature("410611999001", original.buffer(-0.001), name="新村")
    path = write(tmp_path, feature(first, original.buffer(-0.001)), bad)
    with db.session() as session, pytest.raises(ValidationFailed) as caught:
        importer.import_file(session, path=path, level="village")
    assert "feature 2 (code 410611999001, 新村): unknown parent 410611999" in caught.value.message
    assert caught.value.detail["error_count"] == 1
    assert shape_of(db, first).equals(original)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda v, g: feature(None, g, name="无码村"), "feature 1 (no code, 无码村): missing code"),
        (lambda v, g: feature("4106111001", g), "a village code has 12 digits"),
        (
            lambda v, g: feature(
                v, shapely.Polygon([(114.2, 35.7), (114.3, 35.8), (114.3, 35.7), (114.2, 35.8)])
            ),
            "invalid geometry: Self-intersection",
        ),
        (lambda v, g: feature(v, shapely.Point(114.2, 35.7)), "must be a Polygon or MultiPolygon, got Point"),
        (lambda v, g: feature(v, None), "missing geometry"),
        (lambda v, g: feature(v, shapely.box(116.3, 39.8, 116.4, 39.9)), "outside the city"),
        (
            lambda v, g: feature(v, shapely.box(500000, 3950000, 510000, 3960000)),
            "not longitude/latitude degrees",
        ),
        (lambda v, g: feature("410611100", g), "code 410611100 is already a township, not a village"),
        (lambda v, g: feature(v, g, population="many"), "population must be a whole number"),
    ],
)
def test_errors_name_the_bad_feature(db: Database, tmp_path: Path, make: Any, expected: str) -> None:
    village = villages_of(db, "410611100")[0]
    path = write(tmp_path, make(village, shape_of(db, village)))
    with db.session() as session, pytest.raises(ValidationFailed, match="nothing imported") as caught:
        importer.import_file(session, path=path, level="village")
    assert expected in caught.value.message
    assert caught.value.message.count("feature 1") >= 1


def test_duplicate_codes_are_refused(db: Database, tmp_path: Path) -> None:
    village = villages_of(db, "410611100")[0]
    shape = shape_of(db, village)
    path = write(tmp_path, feature(village, shape), feature(village, shape))
    with (
        db.session() as session,
        pytest.raises(ValidationFailed, match=r"feature 2 .*duplicate code .*feature 1"),
    ):
        importer.import_file(session, path=path, level="village")


def test_unreadable_files_are_refused(db: Database, tmp_path: Path) -> None:
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with db.session() as session:
        with pytest.raises(ValidationFailed, match=r"not valid JSON.*line 1"):
            importer.import_file(session, path=broken, level="village")
        (tmp_path / "x.csv").write_text("code,name\n", encoding="utf-8")
        with pytest.raises(ValidationFailed, match=r"unsupported file type \.csv"):
            importer.import_file(session, path=tmp_path / "x.csv", level="village")
        with pytest.raises(ValidationFailed, match="level must be one of"):
            importer.import_file(session, path=broken, level="street")


def test_gcj02_counties_are_converted_to_wgs84(db: Database, tmp_path: Path) -> None:
    source = json.loads((synthetic.DATA_DIR / "boundaries.geojson").read_text(encoding="utf-8"))
    xun = next(f for f in source["features"] if f["properties"]["adcode"] == "410621")
    path = write(tmp_path, xun, name="xun.geojson")
    with db.session() as session:
        result = importer.import_file(session, path=path, level="county", datum="gcj02")
    assert result.updated == 1 and result.datum == "GCJ-02"
    stored = shape_of(db, "410621")
    expected = synthetic.read_county_boundaries()["410621"]
    assert shapely.symmetric_difference(stored, expected).area < expected.area * 1e-6
    with db.sessions() as session:
        row = session.get(Division, "410621")
        assert (
            row is not None and row.source_datum == "GCJ-02" and "converted to WGS84" in row.geometry_source
        )


def test_grid_import_replaces_the_grids_of_a_village(db: Database, tmp_path: Path) -> None:
    with db.sessions() as session:
        village = session.scalars(
            select(Grid.village_code).group_by(Grid.village_code).having(func.count() > 1)
        ).first()
    assert village is not None
    path = write(tmp_path, feature(f"{village}901", shape_of(db, village), name="整村网格", households=300))
    with db.session() as session:
        result = importer.import_file(session, path=path, level="grid")
    assert result.created == 1 and result.deleted >= 1
    with db.sessions() as session:
        grids = list(session.scalars(select(Grid).where(Grid.village_code == village)))
    assert [(g.code, g.name, g.households, g.synthetic) for g in grids] == [
        (f"{village}901", "整村网格", 300, False)
    ]


def test_shapefile_import(db: Database, tmp_path: Path) -> None:
    village = villages_of(db, "410621101")[0]
    shape = shape_of(db, village)
    with shapefile.Writer(
        str(tmp_path / "villages"), shapeType=shapefile.POLYGON, encoding="utf-8"
    ) as writer:
        writer.field("code", "C", size=12)
        writer.field("name", "C", size=40)
        # Shapefile rings run clockwise.
        writer.poly([list(shapely.geometry.polygon.orient(shape, sign=-1.0).exterior.coords)])
        writer.record(village, "测试村")
    with db.session() as session:
        result = importer.import_file(session, path=tmp_path / "villages.shp", level="village")
    assert result.updated == 1
    with db.sessions() as session:
        row = session.get(Division, village)
        assert row is not None and row.name == "测试村" and not row.geometry_synthetic
    assert (
        shape_of(db, village).equals_exact(shapely.normalize(shape), 1e-9)
        or shapely.symmetric_difference(shape_of(db, village), shape).area < 1e-12
    )
