"""Raw telemetry partitioned by day on PostgreSQL: the migration converts the table keeping its rows
(and back), points land in their day, the default partition catches the rest and gives it up once
its day gets a partition, and retention drops expired days whole, their rollups kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from cityops import all_models
from cityops.core import migrate
from cityops.core.db import Base, Database
from cityops.perception import partitions, service
from cityops.perception.models import Device, TelemetryPoint, TelemetryRollup

pytestmark = pytest.mark.postgres

DAY = partitions.DAY_MS
NOW = datetime.now(UTC).replace(hour=12, minute=30, second=0, microsecond=0)
TODAY = int(NOW.timestamp() * 1000) // DAY
TOKEN = "part-token"


def at(day: int, hour: int = 1, second: int = 0) -> int:
    """ms of an hour of a day counted from today."""
    return (TODAY + day) * DAY + hour * 3_600_000 + second * 1000


@pytest.fixture
def pg(pg_url: str) -> Iterator[Database]:
    migrate.upgrade(pg_url)
    db = Database(pg_url)
    with db.session() as session:  # placed by hand: these tests need no map
        session.add(Device(name="part-sensor", profile_code="temperature", lon=114.3, lat=35.7,
                           village_code="410602001001", division_code="410602001001", access_token=TOKEN))
    try:
        yield db
    finally:
        db.dispose()


def store(db: Database, *stamps: int) -> None:
    with db.session() as session:
        outcomes = service.store_uploads(session, [service.Upload(TOKEN, "mqtt", points=[
            ("temperature", ts, 20.0 + i % 5, None) for i, ts in enumerate(stamps)])], now=NOW)
    assert outcomes == [None]


def rows_by_partition(db: Database) -> dict[str, int]:
    with db.sessions() as session:
        return {name: n for name, n in session.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM telemetry_raw GROUP BY 1"))}


def all_points(db: Database) -> list[tuple[int, int, int, float | None, str | None]]:
    with db.sessions() as session:
        return [tuple(r) for r in session.execute(select(  # type: ignore[misc]
            TelemetryPoint.device_id, TelemetryPoint.key_id, TelemetryPoint.ts, TelemetryPoint.num,
            TelemetryPoint.text).order_by(TelemetryPoint.ts))]


def is_partitioned(db: Database) -> bool:
    with db.engine.connect() as conn:
        return partitions.is_partitioned(conn)


def day_partitions(db: Database) -> set[int]:
    with db.engine.connect() as conn:
        return set(partitions.day_partitions(conn))


def test_points_land_in_their_day_and_are_stored_once(pg: Database) -> None:
    assert is_partitioned(pg)
    with pg.sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM pg_partitioned_table "
                                   "WHERE partrelid = 'telemetry_raw'::regclass")) == 1
    assert day_partitions(pg) == {TODAY, TODAY + 1, TODAY + 2, TODAY + 3}
    store(pg, at(0), at(0, second=1), at(1), at(-2))
    store(pg, at(0), at(-2))  # redelivered
    assert rows_by_partition(pg) == {partitions.name_of(TODAY): 2, partitions.name_of(TODAY + 1): 1,
                                     partitions.DEFAULT: 1}

    # The day two days ago had no partition: the retention job makes one and moves its point there.
    report = service.roll_up_and_expire(pg, keep_days=30, now=NOW)
    assert (report.partitions_created, report.partitions_dropped, report.raw_deleted) == (1, 0, 0)
    assert rows_by_partition(pg) == {partitions.name_of(TODAY): 2, partitions.name_of(TODAY + 1): 1,
                                     partitions.name_of(TODAY - 2): 1}
    store(pg, at(-2))  # and a redelivery still finds it
    assert len(all_points(pg)) == 4


def test_retention_drops_expired_days_and_keeps_their_rollups(pg: Database) -> None:
    old = [at(day, hour) for day in (-5, -4, -3) for hour in (1, 2)]
    store(pg, *old, at(-2, 6), at(-2, 18), at(0))
    first = service.roll_up_and_expire(pg, keep_days=30, now=NOW)
    assert first.partitions_created == 4 and first.raw_deleted == 0
    assert {TODAY - 5, TODAY - 4, TODAY - 3, TODAY - 2} <= day_partitions(pg)
    store(pg, at(-4, 3))  # a late point after the rollups: rolled up before its day goes

    # Two days kept: the cutoff falls at 12:30 two days ago, so three days go whole and one point of
    # the day the cutoff falls in is deleted.
    report = service.roll_up_and_expire(pg, keep_days=2, now=NOW)
    assert (report.partitions_dropped, report.raw_deleted, report.hours_rolled_up) == (3, 8, 1)
    assert not {TODAY - 5, TODAY - 4, TODAY - 3} & day_partitions(pg)
    assert [ts for _d, _k, ts, _n, _t in all_points(pg)] == [at(-2, 18), at(0)]
    with pg.sessions() as session:
        hours = session.scalars(select(TelemetryRollup.bucket).where(TelemetryRollup.period_s == 3600)
                                .order_by(TelemetryRollup.bucket)).all()
    assert hours == sorted([*old, at(-4, 3), at(-2, 6), at(-2, 18), at(0)])
    again = service.roll_up_and_expire(pg, keep_days=2, now=NOW)
    assert (again.partitions_dropped, again.raw_deleted) == (0, 0)


def test_points_outside_the_prepared_days_are_not_lost(pg: Database) -> None:
    long_ago, ahead = at(-3000), at(400)  # older than any partition; a clock a year ahead
    expired = int(datetime(2005, 1, 1, tzinfo=UTC).timestamp() * 1000)  # beyond the longest history
    store(pg, long_ago, ahead, expired)
    assert rows_by_partition(pg) == {partitions.DEFAULT: 3}

    report = service.roll_up_and_expire(pg, keep_days=3650, now=NOW)
    assert (report.partitions_created, report.raw_deleted) == (1, 1)  # the 2005 point was expired
    assert rows_by_partition(pg) == {partitions.name_of(TODAY - 3000): 1, partitions.DEFAULT: 1}

    # When the far day comes near, it gets its partition and its point, although the default held it.
    later = NOW + timedelta(days=398)
    service.roll_up_and_expire(pg, keep_days=3650, now=later)
    assert rows_by_partition(pg)[partitions.name_of(TODAY + 400)] == 1
    assert partitions.DEFAULT not in rows_by_partition(pg)
    assert sorted(ts for _d, _k, ts, _n, _t in all_points(pg)) == [long_ago, ahead]


def test_migration_round_trip_keeps_the_points(pg: Database) -> None:
    store(pg, at(-2), at(0), at(0, second=5), at(2), at(500))
    before = all_points(pg)
    script = ScriptDirectory.from_config(migrate.alembic_config(pg.url))
    previous = script.get_revision("0010_telemetry_partitions").down_revision
    assert isinstance(previous, str)
    pg.dispose()

    migrate.downgrade(pg.url, previous)
    assert not is_partitioned(pg)
    assert all_points(pg) == before
    with pg.sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM pg_class WHERE relname LIKE 'telemetry_raw%' "
                                   "AND relkind IN ('r', 'p')")) == 1
    pg.dispose()

    migrate.upgrade(pg.url)
    assert is_partitioned(pg)
    assert all_points(pg) == before
    assert {TODAY - 2, TODAY, TODAY + 2} <= day_partitions(pg)
    assert rows_by_partition(pg)[partitions.DEFAULT] == 1  # the point 500 days ahead
    store(pg, at(0))  # still stored once
    assert all_points(pg) == before


def test_create_all_builds_the_partitioned_layout(pg_url: str) -> None:
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        assert is_partitioned(db)
        assert TODAY in day_partitions(db)
        with db.session() as session:
            session.execute(text("INSERT INTO telemetry_raw (device_id, key_id, ts, num) "
                                 "VALUES (1, 1, 0, 1.0)"))  # 1970: the default partition takes it
        assert rows_by_partition(db) == {partitions.DEFAULT: 1}
        with db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(TelemetryPoint)) == 1
    finally:
        db.dispose()
