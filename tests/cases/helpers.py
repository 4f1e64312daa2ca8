"""Helpers for case tests: points inside a village, and reporting a case through the API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.core.auth.models import User
from cityops.core.db import Database
from cityops.places.models import Grid


def scope_of(db: Database, username: str) -> str:
    with db.sessions() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None and user.scope_code
        return user.scope_code


def point_in_village(db: Database, village_code: str) -> tuple[float, float, str]:
    """(lon, lat, grid code) of a point inside the village's first grid."""
    with db.sessions() as session:
        grid = session.scalars(select(Grid).where(Grid.village_code == village_code)
                               .order_by(Grid.code)).first()
        assert grid is not None and grid.centroid_lon is not None and grid.centroid_lat is not None
        return grid.centroid_lon, grid.centroid_lat, grid.code


def case_body(db: Database, village_code: str, **overrides: Any) -> dict[str, Any]:
    lon, lat, _grid = point_in_village(db, village_code)
    body: dict[str, Any] = {
        "type_code": "dispute", "category": "neighbour", "title": "邻居宅基地边界争议",
        "description": "两户因宅基地边界发生争执", "lon": lon, "lat": lat,
        "reporter_name": "王小明", "reporter_phone": "13812345678", "fields": {"parties": 2},
    }
    body.update(overrides)
    return body


def report(client: TestClient, db: Database, village_code: str, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/cases", json=case_body(db, village_code, **overrides))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def act(client: TestClient, case: dict[str, Any], action: str, **fields: Any) -> dict[str, Any]:
    response = client.post(f"/api/cases/{case['id']}/actions/{action}",
                           json={"version": case["version"], **fields})
    assert response.status_code == 200, response.text
    moved: dict[str, Any] = response.json()
    return moved
