"""Cases near a boundary show the neighbouring units, and re-route to a neighbour's centre in one click."""

from __future__ import annotations

import math
from typing import Any

import shapely
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.core.db import Database
from cityops.places.models import Division, Grid
from tests.accounts.helpers import login, logout
from tests.cases.helpers import case_body, scope_of

METRES_PER_DEGREE = 111_320.0


def _shape(db: Database, model: type[Division] | type[Grid], code: str) -> Any:
    with db.sessions() as session:
        row = session.get(model, code)
        assert row is not None and row.geometry is not None
        return shapely.from_wkb(row.geometry)


def point_near_neighbour(db: Database, village_code: str, inside_m: float = 8.0) -> tuple[float, float, str]:
    """(lon, lat, neighbour village code): a point `inside_m` metres inside the village, next to the
    middle of the edge it shares with another village."""
    own = _shape(db, Division, village_code)
    with db.sessions() as session:
        others = session.scalars(
            select(Division).where(
                Division.level == "village",
                Division.code != village_code,
                Division.max_lon >= own.bounds[0],
                Division.min_lon <= own.bounds[2],
                Division.max_lat >= own.bounds[1],
                Division.min_lat <= own.bounds[3],
            )
        ).all()
        shapes = {d.code: shapely.from_wkb(d.geometry) for d in others if d.geometry is not None}
    for code, other in sorted(shapes.items()):
        shared = own.boundary.intersection(other.boundary)
        if shared.length < 0.003:  # a real shared edge, a few hundred metres long
            continue
        edge = shapely.line_merge(shared) if shared.geom_type == "MultiLineString" else shared
        if edge.geom_type == "MultiLineString":
            edge = max(edge.geoms, key=lambda g: g.length)
        middle = edge.interpolate(0.5, normalized=True)
        a, b = edge.interpolate(0.49, normalized=True), edge.interpolate(0.51, normalized=True)
        # Step off the edge at right angles, to whichever side lies inside the village.
        dx, dy = b.x - a.x, b.y - a.y
        norm = math.hypot(dx, dy)
        step = inside_m / METRES_PER_DEGREE
        for sign in (1, -1):
            lon, lat = middle.x - sign * dy / norm * step, middle.y + sign * dx / norm * step
            if own.contains(shapely.Point(lon, lat)) and not other.covers(shapely.Point(lon, lat)):
                return lon, lat, code
    raise AssertionError(f"village {village_code} shares no edge with another village")


def middle_of_largest_grid(db: Database) -> tuple[float, float, str]:
    with db.sessions() as session:
        grid = session.scalars(select(Grid).order_by(Grid.area_km2.desc())).first()
        assert grid is not None and grid.geometry is not None
        circle = shapely.maximum_inscribed_circle(shapely.from_wkb(grid.geometry), 1e-5)
        centre = shapely.get_point(circle, 0)
        assert circle.length * METRES_PER_DEGREE * 0.8 > 600  # well over 300 m from every edge
        return centre.x, centre.y, grid.code


def test_a_case_next_to_another_village_lists_it_with_its_centre(client: TestClient, db: Database) -> None:
    village1 = scope_of(db, "village1.operator")
    lon, lat, neighbour = point_near_neighbour(db, village1)
    login(client, "village1.operator")
    created = client.post("/api/cases", json=case_body(db, village1, lon=lon, lat=lat, title="边界处的纠纷"))
    assert created.status_code == 201, created.text
    case = created.json()
    assert client.get(f"/api/cases/{case['id']}").json()["village_code"] == village1

    found = client.get(f"/api/cases/{case['id']}/neighbours")
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["boundary_m"] < 20
    villages = {u["code"]: u for u in body["units"] if u["level"] == "village"}
    assert neighbour in villages and village1 not in villages
    unit = villages[neighbour]
    assert unit["distance_m"] < 20 and unit["centre"]["code"] == f"centre-{neighbour}"
    assert unit["can_reroute"] is True

    page = client.get(f"/cases/{case['id']}")
    assert "临近边界" in page.text and unit["name"] in page.text and neighbour in page.text
    assert f'data-reroute="centre-{neighbour}"' in page.text


def test_a_case_in_the_middle_of_a_large_grid_has_no_neighbours(client: TestClient, db: Database) -> None:
    lon, lat, grid = middle_of_largest_grid(db)
    login(client, "city.operator")
    created = client.post("/api/cases", json={**case_body(db, grid[:12]), "lon": lon, "lat": lat})
    assert created.status_code == 201, created.text
    case = created.json()
    body = client.get(f"/api/cases/{case['id']}/neighbours").json()
    assert body["grid_code"] == grid and body["boundary_m"] > 300 and body["units"] == []
    page = client.get(f"/cases/{case['id']}")
    assert page.status_code == 200 and 'data-panel="neighbours"' not in page.text


def test_rerouting_from_the_panel_moves_the_case_to_the_neighbours_centre(
    client: TestClient, db: Database
) -> None:
    village1 = scope_of(db, "village1.operator")
    lon, lat, neighbour = point_near_neighbour(db, village1)
    login(client, "village1.operator")
    case = client.post("/api/cases", json=case_body(db, village1, lon=lon, lat=lat)).json()
    moved = client.post(
        f"/cases/{case['id']}/act",
        data={
            "action": "reroute",
            "version": str(case["version"]),
            "org_unit_code": f"centre-{neighbour}",
            "reason": "事发地在邻村一侧",
        },
        follow_redirects=False,
    )
    assert moved.status_code == 303, moved.text
    now = client.get(f"/api/cases/{case['id']}").json()
    assert now["org_unit"]["code"] == f"centre-{neighbour}" and now["status"] == "reported"
    page = client.get(f"/cases/{case['id']}").text
    assert "事发地在邻村一侧" in page and 'data-action="reroute"' in page
    # Now held by the neighbour: no button to re-route there again.
    assert f'data-reroute="centre-{neighbour}"' not in page


def test_another_villages_case_has_no_neighbours_for_village1(client: TestClient, db: Database) -> None:
    login(client, "village2.operator")
    village2 = scope_of(db, "village2.operator")
    foreign = client.post("/api/cases", json=case_body(db, village2)).json()
    logout(client)
    login(client, "village1.operator")
    assert client.get(f"/api/cases/{foreign['id']}/neighbours").status_code == 404


def test_a_bad_distance_names_the_field(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    case = client.post("/api/cases", json=case_body(db, scope_of(db, "village1.operator"))).json()
    response = client.get(f"/api/cases/{case['id']}/neighbours", params={"within_m": "-5"})
    assert response.status_code == 422 and "within_m" in response.text


def test_a_reporter_does_not_get_the_neighbours_of_their_own_case(client: TestClient, db: Database) -> None:
    village1 = scope_of(db, "village1.operator")
    lon, lat, _neighbour = point_near_neighbour(db, village1)
    login(client, "citizen")
    case = client.post("/api/cases", json=case_body(db, village1, lon=lon, lat=lat)).json()
    assert client.get(f"/api/cases/{case['id']}/neighbours").status_code == 403
    page = client.get(f"/cases/{case['id']}")
    assert page.status_code == 200 and 'data-panel="neighbours"' not in page.text
