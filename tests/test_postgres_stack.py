"""The whole foundation on PostgreSQL: migrations, the demo seed, sign-in, the map and a point lookup."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cityops.app import create_app
from cityops.config import Settings
from cityops.core import migrate
from cityops.core.db import Database
from cityops.core.seeding import seed
from cityops.places import synthetic
from tests.accounts.helpers import login

pytestmark = pytest.mark.postgres


def test_demo_city_runs_on_postgresql(pg_url: str, settings: Settings) -> None:
    migrate.upgrade(pg_url)
    db = Database(pg_url)
    try:
        files = settings.attachments_dir
        timings = seed(db, scale="small", seed=7, quiet=True, files_root=files)
        assert {"places", "accounts", "cases"} <= set(timings)
        # A second run finds the data.
        assert seed(db, scale="small", seed=7, quiet=True, files_root=files) == {}
        app = create_app(settings.model_copy(update={"database_url": pg_url}), db=db)
        with TestClient(app) as client:
            login(client, "admin")
            stats = client.get("/api/places/stats").json()
            assert stats["counts"] == {"city": 1, "county": 6, "township": 48, "village": 1041, "grid": 2397}
            qibin = next(p for p in synthetic.read_geonames() if p.name_en == "Qibin")
            found = client.get("/api/places/lookup", params={"lon": qibin.lon, "lat": qibin.lat}).json()
            assert found["county"]["code"] == "410611"
            assert client.get("/map").status_code == 200
            assert client.get("/api/users").json()["total"] > 1000
    finally:
        db.dispose()
