"""The seeded Hebi: real division counts, synthetic geometry that tessellates every level."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
import shapely
from sqlalchemy import select

from cityops.core.db import Database
from cityops.places import service, synthetic
from cityops.places.models import Division, Grid

GRID_SIZE = 1e-8


def test_counts_per_level(seeded: Database) -> None:
    with seeded.sessions() as session:
        stats = service.stats(session)
    assert stats.counts == {"city": 1, "county": 6, "township": 48, "village": 1041, "grid": 2397}
    per_county = {c.code: (c.townships, c.villages) for c in stats.counties}
    assert per_county == {
        "410602": (7, 77),
        "410603": (8, 100),
        "410611": (10, 163),
        "410621": (11, 483),
        "410622": (9, 201),
        "410671": (3, 17),
    }
    assert sum(c.grids for c in stats.counties) == 2397
    assert stats.population == sum(c.population for c in stats.counties)
    assert 1_500_000 <= stats.population <= 1_600_000


def test_every_village_has_a_grid_and_populations_add_up(seeded: Database) -> None:
    with seeded.sessions() as session:
        villages = {d.code: d for d in session.scalars(select(Division).where(Division.level == "village"))}
        grids = list(session.scalars(select(Grid)))
    by_village: dict[str, list[Grid]] = defaultdict(list)
    for g in grids:
        by_village[g.village_code].append(g)
        assert g.code.startswith(g.village_code) and len(g.code) == 15
        assert g.synthetic and g.geometry_source == "synthetic"
        assert "网格" in g.name
    assert set(by_village) == set(villages)
    for code, village in villages.items():
        assert sum(g.population or 0 for g in by_village[code]) == village.population


def test_labels_say_what_is_real_and_what_is_synthetic(seeded: Database) -> None:
    with seeded.sessions() as session:
        divisions = {d.code: d for d in session.scalars(select(Division))}
    assert not divisions["410621"].geometry_synthetic
    assert divisions["410621"].source_datum == "GCJ-02"
    assert "converted to WGS84" in divisions["410621"].geometry_source
    assert divisions["410671"].geometry_synthetic
    assert divisions["410611100"].geometry_synthetic and divisions["410611100"].source_datum == "WGS84"
    assert divisions["410602"].name_en == "Heshan"
    assert divisions["410600"].parent_code is None


def _tessellates(parent: Any, children: list[Any]) -> None:
    """Children cover the parent exactly: no gap, no overlap (beyond the 1e-8 degree precision grid)."""
    union = shapely.union_all(children, grid_size=GRID_SIZE)
    gap = shapely.difference(parent, union, grid_size=GRID_SIZE).area
    spill = shapely.difference(union, parent, grid_size=GRID_SIZE).area
    overlap = sum(c.area for c in children) - union.area
    tolerance = parent.area * 1e-9
    assert gap <= tolerance and spill <= tolerance and overlap <= max(tolerance, 1e-15)


@pytest.mark.parametrize("level", ["county", "township", "village", "grid"])
def test_each_level_tessellates_its_parent(seeded: Database, shapes: dict[str, Any], level: str) -> None:
    with seeded.sessions() as session:
        if level == "grid":
            pairs = session.execute(select(Grid.code, Grid.village_code)).all()
        else:
            pairs = session.execute(
                select(Division.code, Division.parent_code).where(Division.level == level)
            ).all()
    children: dict[str, list[Any]] = defaultdict(list)
    for code, parent in pairs:
        children[parent].append(shapes[code])
    for parent, parts in children.items():
        _tessellates(shapes[parent], parts)
        assert all(p.geom_type == "Polygon" and p.is_valid for p in parts)


def test_real_county_outlines_are_kept(shapes: dict[str, Any]) -> None:
    real = synthetic.read_county_boundaries()
    for code in ("410602", "410603", "410621", "410622"):
        assert shapely.difference(real[code], shapes[code]).area < real[code].area * 1e-6
    # 淇滨区 lost the development zone's area and nothing else.
    qibin = shapely.union_all([shapes["410611"], shapes["410671"]])
    assert shapely.symmetric_difference(real["410611"], qibin).area < real["410611"].area * 1e-6


def test_development_zone_is_away_from_the_qibin_seat(shapes: dict[str, Any]) -> None:
    seat = next(p for p in synthetic.read_geonames() if p.name_en == "Qibin")
    zone = shapes["410671"]
    assert not zone.contains(shapely.Point(seat.lon, seat.lat))
    assert 30 < synthetic.geo.area_km2(zone) < 60


def test_apportionment_is_exact() -> None:
    shares = synthetic.largest_remainder([5.0, 3.0, 0.01, 0.01], 10, minimum=1)
    assert sum(shares) == 10 and min(shares) == 1
    assert synthetic.largest_remainder([1, 1, 1], 3) == [1, 1, 1]


def test_short_village_names() -> None:
    assert synthetic.short_village_name("东马庄村民委员会") == "东马庄村"
    assert synthetic.short_village_name("西石林村村民委员会") == "西石林村"
    assert synthetic.short_village_name("上关居民委员会") == "上关社区"
    assert synthetic.short_village_name("飞龙社区居民委员会") == "飞龙社区"
    assert synthetic.short_village_name("农场六分场生活区") == "农场六分场生活区"


def test_township_areas_follow_their_village_counts(seeded: Database) -> None:
    """Townships are sized by their villages (communities weigh less: they are urban and dense)."""
    with seeded.sessions() as session:
        rows = session.execute(
            select(Division.code, Division.name, Division.level, Division.parent_code, Division.area_km2)
        ).all()
    weight: dict[str, float] = defaultdict(float)
    for _code, name, level, parent, _area in rows:
        if level == "village":
            weight[parent] += synthetic.AREA_WEIGHT[synthetic.village_kind(name)]
    towns_of: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for code, _name, level, parent, area in rows:
        if level == "township":
            towns_of[parent].append((area, weight[code]))
    for county, towns in towns_of.items():
        total_area = sum(a for a, _w in towns)
        total_weight = sum(w for _a, w in towns)
        for area, w in towns:
            ratio = (area / total_area) / (w / total_weight)
            assert 0.5 < ratio < 2.0, county


def test_generation_is_deterministic_for_a_seed() -> None:
    first = synthetic.generate(5)
    second = synthetic.generate(5)
    assert [g.geometry.wkb for g in first.grids] == [g.geometry.wkb for g in second.grids]
    assert [d.population for d in first.divisions] == [d.population for d in second.divisions]
