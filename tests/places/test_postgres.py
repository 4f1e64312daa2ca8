"""The places seed, queries and lookup on PostgreSQL."""

from __future__ import annotations

import pytest

from cityops import all_models
from cityops.core.db import Base, Database
from cityops.places import service


@pytest.mark.postgres
def test_seed_search_layers_and_lookup_on_postgres(pg_url: str) -> None:
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        with db.session() as session:
            service.seed_places(session, seed=7)
        with db.sessions() as session:
            assert service.stats(session).counts == {
                "city": 1,
                "county": 6,
                "township": 48,
                "village": 1041,
                "grid": 2397,
            }
            assert "410621" in [h.code for h in service.search(session, q="Xun Xian").items]
            assert service.list_divisions(session, level="township", q="4106221").total == 4
            layer = service.geojson_layer(session, level="village", bbox=(114.28, 35.73, 114.29, 35.74))
            assert layer.startswith(b'{"type":"FeatureCollection"')
            result = service.lookup_point(service.build_index(session), lon=114.54326, lat=35.67628)
            assert result.county is not None and result.county.code == "410621"
    finally:
        db.dispose()
