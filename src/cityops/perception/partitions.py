"""Day partitions of the raw telemetry on PostgreSQL.

There `telemetry_raw` is partitioned by RANGE (ts), one partition per UTC day
(telemetry_raw_pYYYYMMDD, [day start, next day start) in ms), plus a DEFAULT partition, so a point
is never refused for want of a partition. Partitions are made a few days ahead, which keeps the
default near-empty: it only catches the odd point (a gateway replaying an old buffer, a clock set in
the future). `ensure` moves those points into a day of their own once the day is within the kept
history or about to come. Retention then drops a whole expired day: instant, no dead rows to vacuum.
SQLite keeps one table and deletes.

Plain SQL on a Connection, so the migration, the models' create_all hook and the repository share it.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from cityops.core.db import Base

RAW = "telemetry_raw"
DEFAULT = f"{RAW}_default"
DAY_MS = 86_400_000
AHEAD_DAYS = 3
# The longest raw history the settings allow (telemetry_raw_days <= 3650): a point older than that,
# or a clock years ahead, stays in the default partition rather than getting a day of its own.
MAX_KEEP_DAYS = 3650
# Inserts queue behind a waiting ACCESS EXCLUSIVE lock: give up (and retry on the next run) rather
# than stall ingestion behind a long reader.
LOCK_TIMEOUT = "5s"
_DAY_NAME = re.compile(rf"{RAW}_p(\d{{8}})")

COLUMNS = ("device_id integer NOT NULL, key_id integer NOT NULL, ts bigint NOT NULL, "
           "num double precision, text varchar(2000)")

# Partitions are made at run time: the model comparison of migrations leaves them out.
Base.metadata.info.setdefault("unmanaged_patterns", []).append(re.compile(rf"{RAW}_(p\d{{8}}|default)"))


def now_ms() -> int:
    return int(time.time() * 1000)


def name_of(day: int) -> str:
    """The partition of a day (days since the epoch)."""
    return f"{RAW}_p{datetime.fromtimestamp(day * 86_400, UTC):%Y%m%d}"


def day_of(name: str) -> int | None:
    found = _DAY_NAME.fullmatch(name)
    if found is None:
        return None
    return int(datetime.strptime(found.group(1), "%Y%m%d").replace(tzinfo=UTC).timestamp()) // 86_400


def is_partitioned(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    return conn.exec_driver_sql(
        f"SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass('{RAW}')").first() is not None


def day_partitions(conn: Connection) -> dict[int, str]:
    """The day partitions that exist, by day."""
    names = conn.exec_driver_sql(f"SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                 f"WHERE i.inhparent = to_regclass('{RAW}')").scalars()
    return {day: name for name in names if (day := day_of(name)) is not None}


def lock(conn: Connection, *, timeout: str | None = LOCK_TIMEOUT) -> None:
    """Hold inserts off until the transaction ends. Taken on the parent first, the order inserts
    take their locks in, so creating or dropping a partition cannot deadlock with them."""
    if timeout:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{timeout}'")
    conn.exec_driver_sql(f"LOCK TABLE ONLY {RAW} IN ACCESS EXCLUSIVE MODE")


def _create_day(conn: Connection, day: int) -> None:
    conn.exec_driver_sql(f"CREATE TABLE {name_of(day)} PARTITION OF {RAW} "
                         f"FOR VALUES FROM ({day * DAY_MS}) TO ({(day + 1) * DAY_MS})")


def _stray_days(conn: Connection, start_ms: int, end_ms: int) -> set[int]:
    """Days in [start, end) with points in the default partition (a scan of a near-empty table)."""
    return set(conn.exec_driver_sql(f"SELECT DISTINCT ts / {DAY_MS} FROM ONLY {DEFAULT} "
                                    f"WHERE ts >= %s AND ts < %s", (max(start_ms, 0), end_ms)).scalars())


def _wanted(conn: Connection, now: int, keep_from_ms: int, ahead_days: int) -> list[int]:
    today = now // DAY_MS
    have = day_partitions(conn)
    wanted = set(range(today, today + ahead_days + 1))
    wanted |= _stray_days(conn, keep_from_ms, (today + ahead_days + 1) * DAY_MS)
    return sorted(wanted - have.keys())


def ensure(conn: Connection, *, now: int, keep_from_ms: int, ahead_days: int = AHEAD_DAYS,
           lock_timeout: str | None = LOCK_TIMEOUT) -> list[str]:
    """Partitions for today .. today + ahead_days, and for each day from `keep_from_ms` on that has
    points in the default partition, those points moved into it. The partitions made.

    PostgreSQL refuses a partition whose range matches rows in the default partition, so they are
    taken out (into a temporary table) in the same transaction, under the lock, and put back through
    the parent once the partition exists."""
    if not _wanted(conn, now, keep_from_ms, ahead_days):
        return []  # the usual run: nothing to do, and no lock taken
    lock(conn, timeout=lock_timeout)
    days = _wanted(conn, now, keep_from_ms, ahead_days)  # again, now that nobody else can add any
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE telemetry_moving (LIKE {RAW}) ON COMMIT DROP")
    moved = conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM ONLY {DEFAULT} WHERE ts >= 0 AND ts / {DAY_MS} = ANY(%s) RETURNING *) "
        f"INSERT INTO telemetry_moving SELECT * FROM moved", (days,)).rowcount
    for day in days:
        _create_day(conn, day)
    if moved:
        conn.exec_driver_sql(f"INSERT INTO {RAW} SELECT * FROM telemetry_moving")
    conn.exec_driver_sql("DROP TABLE telemetry_moving")
    return [name_of(day) for day in days]


def expired_days(conn: Connection, cutoff_ms: int) -> list[int]:
    """The day partitions that end at or before the cutoff."""
    return sorted(day for day in day_partitions(conn) if (day + 1) * DAY_MS <= cutoff_ms)


def drop_days(conn: Connection, days: list[int]) -> int:
    """Drop these day partitions (call under `lock`); the points they held, counted exactly first."""
    rows = 0
    for day in days:
        name = name_of(day)
        rows += conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one()
        conn.exec_driver_sql(f"DROP TABLE {name}")
    return rows


def create_default(conn: Connection) -> None:
    conn.exec_driver_sql(f"CREATE TABLE {DEFAULT} PARTITION OF {RAW} DEFAULT")


def after_create(_table: Any, connection: Connection, **_kw: Any) -> None:
    """create_all made the partitioned parent (the model's postgresql_partition_by): add the default
    partition and the coming days, as the migration does."""
    if connection.dialect.name == "postgresql":
        create_default(connection)
        now = now_ms()
        ensure(connection, now=now, keep_from_ms=now - MAX_KEEP_DAYS * DAY_MS, lock_timeout=None)


def partition_table(conn: Connection) -> None:
    """Turn an unpartitioned telemetry_raw into the partitioned layout, keeping its rows: a partition
    for each day that has points (within MAX_KEEP_DAYS, the rest go to the default) and the coming
    days, then the rows copied through the parent, which routes each to its day."""
    old = f"{RAW}_unpartitioned"
    conn.exec_driver_sql(f"ALTER TABLE {RAW} RENAME TO {old}")
    conn.exec_driver_sql(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{RAW} TO pk_{old}")
    conn.exec_driver_sql(f"CREATE TABLE {RAW} ({COLUMNS}, "
                         f"CONSTRAINT pk_{RAW} PRIMARY KEY (device_id, key_id, ts)) PARTITION BY RANGE (ts)")
    create_default(conn)
    now = now_ms()
    horizon = (now // DAY_MS + AHEAD_DAYS + 1) * DAY_MS
    days = conn.exec_driver_sql(f"SELECT DISTINCT ts / {DAY_MS} FROM {old} WHERE ts >= %s AND ts < %s",
                                (max(now - MAX_KEEP_DAYS * DAY_MS, 0), horizon)).scalars()
    for day in sorted(days):
        _create_day(conn, day)
    conn.exec_driver_sql(f"INSERT INTO {RAW} (device_id, key_id, ts, num, text) "
                         f"SELECT device_id, key_id, ts, num, text FROM {old}")
    conn.exec_driver_sql(f"DROP TABLE {old}")
    ensure(conn, now=now, keep_from_ms=now - MAX_KEEP_DAYS * DAY_MS, lock_timeout=None)


def unpartition_table(conn: Connection) -> None:
    """Back to one plain table with the same rows (the migration's downgrade)."""
    new = f"{RAW}_unpartitioned"
    conn.exec_driver_sql(f"CREATE TABLE {new} ({COLUMNS}, "
                         f"CONSTRAINT pk_{new} PRIMARY KEY (device_id, key_id, ts))")
    conn.exec_driver_sql(f"INSERT INTO {new} (device_id, key_id, ts, num, text) "
                         f"SELECT device_id, key_id, ts, num, text FROM {RAW}")
    conn.exec_driver_sql(f"DROP TABLE {RAW}")  # its partitions with it
    conn.exec_driver_sql(f"ALTER TABLE {new} RENAME TO {RAW}")
    conn.exec_driver_sql(f"ALTER TABLE {RAW} RENAME CONSTRAINT pk_{new} TO pk_{RAW}")
