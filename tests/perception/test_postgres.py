"""Ingestion, rollups and retention on PostgreSQL: the statements sent straight to the driver (its
own placeholders), ON CONFLICT, and integer buckets behave as on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cityops import all_models
from cityops.core.db import Base, Database
from cityops.perception import service
from cityops.perception.ingest import IngestRejected
from cityops.perception.models import (
    Device,
    IngestRejection,
    TelemetryLatest,
    TelemetryPoint,
    TelemetryRollup,
)

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


@pytest.mark.postgres
def test_ingestion_rollups_and_retention_on_postgres(pg_url: str) -> None:
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        with db.session() as session:  # placed by hand: this test needs no map
            session.add(Device(name="pg-sensor", profile_code="temperature", lon=114.3, lat=35.7,
                               village_code="410602001001", division_code="410602001001",
                               access_token="pg-token"))
        old = int((NOW - timedelta(days=20)).timestamp() * 1000)
        points = [("temperature", old + i * 1000, float(t), None) for i, t in enumerate((10, 20, 30))]
        uploads = [service.Upload("pg-token", "mqtt", points=points),
                   service.Upload("pg-token", "mqtt", points=points[:1]),  # a redelivery
                   service.Upload("nope", "mqtt", points=points),
                   service.Upload("pg-token", "mqtt", rejected=IngestRejected("bad_shape", "no"))]
        with db.session() as session:
            outcomes = service.store_uploads(session, uploads, now=NOW)
        assert outcomes[:2] == [None, None]
        assert [getattr(o, "reason", None) for o in outcomes[2:]] == ["unknown_token", "bad_shape"]
        with db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(TelemetryPoint)) == 3
            assert session.scalar(select(TelemetryLatest.num)) == 30.0
            assert session.scalar(select(func.count()).select_from(IngestRejection)) == 2
        report = service.roll_up_and_expire(db, keep_days=10, now=NOW)
        assert report.hours_rolled_up == 1 and report.raw_deleted == 3
        with db.sessions() as session:
            rollup = session.execute(select(TelemetryRollup.min, TelemetryRollup.max, TelemetryRollup.count)
                                     .where(TelemetryRollup.period_s == 60)).one()
            assert tuple(rollup) == (10.0, 30.0, 3)
            assert session.scalar(select(func.count()).select_from(TelemetryPoint)) == 0
    finally:
        db.dispose()
