"""Places fixtures: read-only access to the seeded template database (no copy per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from sqlalchemy import select

from cityops.core.db import Database
from cityops.places import service
from cityops.places.index import PlaceIndex
from cityops.places.models import Division, Grid


@pytest.fixture(scope="session")
def seeded(template_db: Path) -> Iterator[Database]:
    """The seeded template database; tests using it must not write."""
    database = Database(f"sqlite:///{template_db}")
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def place_index(seeded: Database) -> PlaceIndex:
    with seeded.sessions() as session:
        return service.build_index(session)


@pytest.fixture(scope="session")
def shapes(seeded: Database) -> dict[str, Any]:
    """code -> shapely geometry for every division and grid."""
    with seeded.sessions() as session:
        rows = session.execute(select(Division.code, Division.geometry)).all()
        rows += session.execute(select(Grid.code, Grid.geometry)).all()
    return {code: shapely.from_wkb(wkb) for code, wkb in rows}
