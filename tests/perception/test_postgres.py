"""Ingestion, rollups and retention on PostgreSQL: the statements sent straight to the driver (its
own placeholders), ON CONFLICT, and integer buckets behave as on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from cityops import all_models
from cityops.core.db import Base, Database
from cityops.perception import service
from cityops.perception.ingest import IngestRejected
from cityops.perception.models import (
    Alarm,
    Device,
    IngestRejection,
    TelemetryLatest,
    TelemetryPoint,
    TelemetryRollup,
)

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        yield db
    finally:
        db.dispose()


def add_device(db: Database, token: str, profile: str, **extra: Any) -> None:
    with db.session() as session:  # placed by hand: these tests need no map
        session.add(Device(name=token, profile_code=profile, lon=114.3, lat=35.7, village_code="410602001001",
                           division_code="410602001001", access_token=token, **extra))


@pytest.mark.postgres
def test_ingestion_rollups_and_retention_on_postgres(pg_db: Database) -> None:
    db = pg_db
    add_device(db, "pg-token", "temperature")
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


@pytest.mark.postgres
def test_two_workers_storing_one_device_raise_one_alarm(pg_db: Database) -> None:
    db = pg_db
    """Two ingest workers with batches of the same smoke detector (the broker's shared subscription
    splits a device's messages between them): the second waits for the first to commit, so it sees
    the first's alarm and keeps it up instead of raising another, and nothing is refused."""
    add_device(db, "pg-smoke", "smoke_detector")
    start = int(NOW.timestamp() * 1000)
    first = [service.Upload("pg-smoke", "mqtt", points=[("smoke", start, 0.4, None)])]
    second = [service.Upload("pg-smoke", "mqtt", points=[("smoke", start + 1000, 0.5, None)])]
    outcomes: list[list[object]] = []
    done = threading.Event()

    def other_worker() -> None:
        with db.session() as session:
            outcomes.append(list(service.store_uploads(session, second, now=NOW)))
        done.set()

    with db.session() as session:
        outcomes.append(list(service.store_uploads(session, first, now=NOW)))
        worker = threading.Thread(target=other_worker)
        worker.start()
        # Without the lock the other worker would finish now, blind to this uncommitted alarm.
        assert not done.wait(1.0)
    worker.join(10)
    assert done.is_set() and outcomes == [[None], [None]]
    with db.sessions() as session:
        alarms = session.execute(select(Alarm.status, Alarm.value)).all()
        assert [tuple(a) for a in alarms] == [("ACTIVE_UNACK", 0.5)]
        assert session.scalar(select(func.count()).select_from(IngestRejection)) == 0


@pytest.mark.postgres
def test_offline_check_skips_a_device_whose_batch_is_being_stored(pg_db: Database) -> None:
    db = pg_db
    """A detector silent for hours reports again while the offline check runs: the check must not see
    its old last activity (the batch is not committed yet) and raise an offline alarm it has just
    disproved."""
    add_device(db, "pg-quiet", "smoke_detector", last_activity_at=NOW - timedelta(hours=3))
    now_ms = int(NOW.timestamp() * 1000)
    back = [service.Upload("pg-quiet", "mqtt", points=[("smoke", now_ms, 0.01, None)])]
    reports: list[service.OfflineReport] = []
    with db.session() as session:
        assert service.store_uploads(session, back, now=NOW) == [None]
        check = threading.Thread(target=lambda: reports.append(service.offline_alarms(db, now=NOW)))
        check.start()
        check.join(10)
    assert reports and reports[0].raised == 0
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Alarm)) == 0
