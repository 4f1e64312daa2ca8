"""Coverage of the 15-minute living circle: entrances, the per-community report and the figures summed from
it, and site selection that keeps its promise."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cityops.core.db import Database
from cityops.core.errors import ValidationFailed
from cityops.livability import categories, coverage, service
from cityops.livability.engine import Engine, StreetGraph, local_crs, to_degrees
from tests.accounts.helpers import login
from tests.accounts.test_cli import env_for, run

LON0, LAT0 = 114.30, 35.75


def street(length_m: float = 2000.0, step_m: float = 100.0) -> tuple[StreetGraph, object]:
    """A straight east-west street through (LON0, LAT0), a node every `step_m`."""
    crs = local_crs(LON0, LAT0)
    x = np.arange(0.0, length_m + 1, step_m)
    lon, lat = to_degrees(crs).transform(x, np.zeros_like(x))
    n = len(x)
    graph = StreetGraph(
        crs=crs,
        lon=np.asarray(lon),
        lat=np.asarray(lat),
        u=np.arange(n - 1),
        v=np.arange(1, n),
        length=np.full(n - 1, step_m),
    )
    return graph, to_degrees(crs)


def park_set(
    inverse: object,
    *,
    centre: tuple[float, float],
    gates: list[tuple[float, float]],
    area: float,
    category: str = "community_park",
) -> coverage.FacilitySet:
    """One green space; coordinates in metres of the street's CRS."""
    clon, clat = inverse.transform(*centre)  # type: ignore[attr-defined]
    glon, glat = inverse.transform([g[0] for g in gates], [g[1] for g in gates])  # type: ignore[attr-defined]
    return coverage.FacilitySet(
        id=np.array([1]),
        category=[category],
        lon=np.array([clon]),
        lat=np.array([clat]),
        area_m2=np.array([area]),
        entrance_of=np.zeros(len(gates), dtype=np.int64),
        entrance_lon=np.asarray(glon, dtype=np.float64),
        entrance_lat=np.asarray(glat, dtype=np.float64),
    )


def test_a_park_is_reached_at_its_entrance_not_its_centre() -> None:
    graph, inverse = street()
    engine = Engine(graph)
    home_lon, home_lat = inverse.transform([500.0], [20.0])  # type: ignore[attr-defined]
    home = (np.asarray(home_lon), np.asarray(home_lat))
    catalogue = categories.catalogue()
    # A 2 ha park whose centre is 100 m from home, behind a wall: its only gate is 900 m down the street.
    walled = park_set(inverse, centre=(560.0, 80.0), gates=[(1400.0, 10.0)], area=20_000)
    far = coverage.measure(engine, *home, walled, catalogue)
    assert far.distance_m["park"][0] == pytest.approx(20 + 900 + 10, abs=0.01)
    assert far.distance_m["green"][0] > 300 and not far.distance_m["park"][0] <= 500
    # The same park with a second gate near home: in reach, and still one park within the circles.
    gated = park_set(inverse, centre=(560.0, 80.0), gates=[(1400.0, 10.0), (540.0, 15.0)], area=20_000)
    near = coverage.measure(engine, *home, gated, catalogue)
    assert near.distance_m["green"][0] == pytest.approx(20 + 40 + 15, abs=0.01)
    assert near.counts["community_park"][15][0] == 1 and near.counts["community_park"][5][0] == 1
    # Too small to be a park (under 1 ha), big enough to be green (400 m² and more).
    small = park_set(inverse, centre=(560.0, 80.0), gates=[(540.0, 15.0)], area=900, category="pocket_park")
    pocket = coverage.measure(engine, *home, small, catalogue)
    assert pocket.distance_m["green"][0] <= 300 and np.isinf(pocket.distance_m["park"][0])


def independent_figures(
    rows: list[dict[str, object]], scope_key: str, level_code: str | None = None
) -> dict[str, int]:
    """Sums over the community rows, by hand."""
    chosen = [
        r
        for r in rows
        if r["in_scope"]
        and r["on_network"]
        and (level_code is None or level_code in (r["county_code"], r["township_code"]))
    ]
    return {
        "analysed": len(chosen),
        "population_analysed": sum(int(r["population"]) for r in chosen),  # type: ignore[call-overload]
        "green": sum(int(r["population"]) for r in chosen if r["green_300"]),  # type: ignore[call-overload]
        "park": sum(int(r["population"]) for r in chosen if r["park_500"]),  # type: ignore[call-overload]
        "complete": sum(int(r["population"]) for r in chosen if not r["missing"]),  # type: ignore[call-overload]
        "kindergarten": sum(
            int(r["population"])
            for r in chosen  # type: ignore[call-overload]
            if r["categories"]["kindergarten"]["covered"]
        ),  # type: ignore[index]
    }


def test_the_report_lists_every_community_and_the_city_figure_is_summed_from_them(
    tmp_path: Path, template_db: Path
) -> None:
    env = env_for(tmp_path, template_db)
    result = run(env, "livability", "report", "--json", "--communities")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = report["communities"]
    catalogue = categories.catalogue()
    basic = [k for k, c in catalogue.categories.items() if c.basic]
    assert report["network_synthetic"] and report["facilities_synthetic"] == report["facilities"] > 0
    # Every community: 300 m green, 500 m park and the missing items, consistent with its distances.
    for r in rows:
        assert {"green_300", "park_500", "missing", "green_m", "park_m"} <= set(r)
        if not r["on_network"]:
            assert r["missing"] == [] and not r["green_300"]
            continue
        assert r["green_300"] == (r["green_m"] is not None and r["green_m"] <= 300)
        assert r["park_500"] == (r["park_m"] is not None and r["park_m"] <= 500)
        expected = [
            k
            for k in basic
            if not (
                r["categories"][k]["distance_m"] is not None
                and r["categories"][k]["distance_m"] <= catalogue.categories[k].threshold_m
            )
        ]
        expected += [k for k, ok in (("green_300", r["green_300"]), ("park_500", r["park_500"])) if not ok]
        assert r["missing"] == expected
    analysed = [r for r in rows if r["on_network"] and r["in_scope"]]
    assert len(analysed) > 20
    assert any(r["green_300"] for r in analysed) and any(not r["green_300"] for r in analysed)
    assert any(r["missing"] for r in analysed)
    # The city's figure equals an aggregation done here from the rows.
    city = report["city"]
    mine = independent_figures(rows, "urban")
    assert city["analysed"] == mine["analysed"]
    assert city["population_analysed"] == mine["population_analysed"]
    assert city["green_300"]["population"] == mine["green"]
    assert city["park_500"]["population"] == mine["park"]
    assert city["complete"]["population"] == mine["complete"]
    assert city["categories"]["kindergarten"]["population"] == mine["kindergarten"]
    assert city["green_300"]["rate"] == pytest.approx(mine["green"] / mine["population_analysed"], abs=1e-6)
    # And so do the counties' and townships', which add up to the city.
    for area in report["counties"] + report["townships"]:
        theirs = independent_figures(rows, "urban", area["code"])
        assert (area["analysed"], area["green_300"]["population"]) == (theirs["analysed"], theirs["green"])
    assert sum(c["park_500"]["population"] for c in report["counties"]) == city["park_500"]["population"]
    assert sum(t["analysed"] for t in report["townships"]) == city["analysed"]


def test_adding_a_facility_at_a_suggested_site_raises_coverage_by_the_promise(db: Database) -> None:
    with db.sessions() as session:
        before = service.report(session).city.categories["kindergarten"]
        suggestion = service.suggest_sites(session, category="kindergarten", count=3)
    assert suggestion.population_covered == before.population
    first, second = suggestion.sites[0], suggestion.sites[1]
    assert first.population > 0 and first.population >= second.population
    csv = f"category,name,lon,lat\nkindergarten,New kindergarten,{first.lon!r},{first.lat!r}\n"
    with db.session() as session:
        service.import_facilities(session, data=csv.encode(), filename="new.csv")
    with db.sessions() as session:
        after = service.report(session, with_communities=True)
    figure = after.city.categories["kindergarten"]
    assert figure.population == before.population + first.population
    assert figure.population == first.covered_after
    assert figure.communities == before.communities + len(first.communities)
    covered_now = {
        c.code for c in after.communities or [] if c.in_scope and c.categories["kindergarten"].covered
    }
    assert set(first.communities) <= covered_now
    # The second site's promise holds after the first is built.
    csv = f"category,name,lon,lat\nkindergarten,Second,{second.lon!r},{second.lat!r}\n"
    with db.session() as session:
        service.import_facilities(session, data=csv.encode(), filename="second.csv")
    with db.sessions() as session:
        assert service.report(session).city.categories["kindergarten"].population == second.covered_after


def test_elderly_and_children_are_figures_of_their_own(db: Database) -> None:
    with db.sessions() as session:
        report = service.report(session, with_communities=True)
    rows = [r for r in report.communities or [] if r.in_scope and r.on_network]
    elderly = sum(
        r.population
        for r in rows
        if r.categories["elderly_day_care"].covered and r.categories["community_canteen"].covered
    )
    children = sum(r.population for r in rows if r.categories["kindergarten"].covered)
    assert report.city.groups["elderly"].population == elderly
    assert report.city.groups["children"].population == children


def test_the_excel_report_has_a_sheet_per_level_and_the_gap_list(client: TestClient, db: Database) -> None:
    login(client, "leader")
    got = client.get("/api/livability/report", params={"format": "xlsx"})
    assert got.status_code == 200, got.text
    book = load_workbook(io.BytesIO(got.content), read_only=True)
    # The leader's pages are in Chinese by default.
    assert book.sheetnames == ["全市", "县区", "乡镇街道", "社区和村", "缺项清单", "设施类别"]
    with db.sessions() as session:
        report = service.report(session, with_communities=True)
    gaps = list(book["缺项清单"].iter_rows(values_only=True))[1:]
    expected = sum(len(r.missing) for r in report.communities or [] if r.in_scope)
    assert len(gaps) == expected > 0
    city = list(book["全市"].iter_rows(values_only=True))[1]
    assert city[0] == report.city.code and city[6] == report.city.green_300.rate


def test_report_errors_name_the_field(client: TestClient, db: Database) -> None:
    login(client, "leader")
    assert client.get("/api/livability/sites", params={"category": "bakery"}).json()["field"] == "category"
    assert client.get("/api/livability/communities/999").status_code == 404
    with db.sessions() as session, pytest.raises(ValidationFailed, match="scope must be"):
        service.report(session, scope="rural")


def test_walking_times_follow_the_speed_asked_for(client: TestClient, db: Database) -> None:
    with db.sessions() as session:
        rows = service.report(session, with_communities=True).communities or []
    code = next(r.code for r in rows if r.on_network and r.categories["market"].distance_m)
    login(client, "leader")
    slow = client.get(f"/api/livability/communities/{code}", params={"speed": 0.8}).json()
    usual = client.get(f"/api/livability/communities/{code}").json()
    metres = usual["categories"]["market"]["distance_m"]
    assert slow["categories"]["market"]["distance_m"] == metres
    assert usual["categories"]["market"]["minutes"] == round(metres / 1.1 / 60, 1)
    assert slow["categories"]["market"]["minutes"] == round(metres / 0.8 / 60, 1)
