"""Raw telemetry on PostgreSQL, partitioned by day (the schema since migration 0010) beside the same
points in one unpartitioned table (the schema before it), in one run: the insert rate through
service.store_uploads, bytes per stored point, and retention of one day, which drops the day's
partition on one side and DELETEs the day's rows on the other (then the VACUUM that DELETE owes).

Two fresh databases on the server, dropped at the end. POINTS values over three days (today and
the two coming days, which have partitions ready), DEVICES devices sending two keys in time order,
BATCH values per transaction. Retention is then run as the scheduler would on the fourth day with
two days kept: the first day expires whole.
Run: .venv/bin/python bench/telemetry_pg.py [--points N] [--devices N] [--batch N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from _common import save
from sqlalchemy import create_engine, text

from cityops import all_models
from cityops.core.db import Base, Database
from cityops.perception import partitions, service
from cityops.perception.models import Device

ADMIN_URL = os.environ.get("CITYOPS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAY = partitions.DAY_MS
KEYS = ("temperature", "humidity")
PER_UPLOAD = 10  # timestamps per device message


@contextmanager
def fresh_database(label: str) -> Iterator[Database]:
    name = f"cityops_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def build(db: Database, *, partitioned: bool, devices: int) -> None:
    """The models' schema (partitioned by day, as the migration leaves it); taken back to one table
    by the migration's downgrade for the other side."""
    all_models.load()
    Base.metadata.create_all(db.engine)
    if not partitioned:
        with db.engine.begin() as conn:
            partitions.unpartition_table(conn)
    with db.session() as session:
        session.add_all(Device(name=f"bench-{i:04d}", profile_code="temperature", lon=114.3, lat=35.7,
                               village_code="410602001001", division_code="410602001001",
                               access_token=f"bench-token-{i:04d}", synthetic=True) for i in range(devices))


def uploads(*, points: int, devices: int, start_ms: int, batch: int) -> Iterator[list[service.Upload]]:
    """Batches of device messages in time order over three days, as live traffic comes."""
    steps = points // (devices * len(KEYS))
    every = 3 * DAY // steps
    pending: list[service.Upload] = []
    for first in range(0, steps, PER_UPLOAD):
        stamps = [start_ms + step * every for step in range(first, min(first + PER_UPLOAD, steps))]
        for d in range(devices):
            values = [(key, ts, 20.0 + (d + ts // 1000 + k) % 7, None)
                      for ts in stamps for k, key in enumerate(KEYS)]
            pending.append(service.Upload(f"bench-token-{d:04d}", "mqtt", points=values))
            if len(pending) * PER_UPLOAD * len(KEYS) >= batch:
                yield pending
                pending = []
    if pending:
        yield pending


def insert(db: Database, args: argparse.Namespace, start_ms: int) -> dict[str, Any]:
    now = datetime.fromtimestamp(start_ms / 1000, UTC)
    values = 0
    started = time.perf_counter()
    for chunk in uploads(points=args.points, devices=args.devices, start_ms=start_ms, batch=args.batch):
        with db.session() as session:
            service.store_uploads(session, chunk, now=now)
        values += sum(len(u.points) for u in chunk)
    seconds = time.perf_counter() - started
    return {"values": values, "seconds": round(seconds, 1), "values_per_s": round(values / seconds, 1)}


def sizes(db: Database) -> dict[str, Any]:
    """Heap and index bytes of the raw points (all partitions, or the one table) per stored point."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) telemetry_raw")  # steady state: visibility map, hint bits
        tables = conn.exec_driver_sql(
            "SELECT coalesce(array_agg(inhrelid), ARRAY['telemetry_raw'::regclass]) FROM pg_inherits "
            "WHERE inhparent = 'telemetry_raw'::regclass").scalar_one()
        heap, index, total = (int(n) for n in conn.exec_driver_sql(  # sums come back as Decimal
            "SELECT sum(pg_relation_size(t)), sum(pg_indexes_size(t)), sum(pg_total_relation_size(t)) "
            "FROM unnest(%s::regclass[]) t", (tables,)).one())
        rows = conn.exec_driver_sql("SELECT count(*) FROM telemetry_raw").scalar_one()
    return {"rows": rows, "total_bytes": total, "bytes_per_point": round(total / rows, 1),
            "heap_bytes_per_point": round(heap / rows, 1),
            "index_bytes_per_point": round(index / rows, 1), "partitions": len(tables)}


def retention(db: Database, now: datetime) -> dict[str, Any]:
    """Rollups of everything first (not timed: the same on both sides), then the timed run that
    expires the first day."""
    started = time.perf_counter()
    rolled = service.roll_up_and_expire(db, keep_days=3650, now=now)
    rollup_s = time.perf_counter() - started
    started = time.perf_counter()
    report = service.roll_up_and_expire(db, keep_days=2, now=now)
    expire_s = time.perf_counter() - started
    out: dict[str, Any] = {"rollup_s": round(rollup_s, 2), "hours_rolled_up": rolled.hours_rolled_up,
                           "expire_s": round(expire_s, 3), "raw_deleted": report.raw_deleted,
                           "partitions_dropped": report.partitions_dropped}
    if not report.partitions_dropped:  # the DELETE left dead rows behind: what clearing them costs
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            started = time.perf_counter()
            conn.exec_driver_sql("VACUUM telemetry_raw")
            out["vacuum_after_delete_s"] = round(time.perf_counter() - started, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--batch", type=int, default=5000, help="values per transaction")
    args = parser.parse_args()
    start_ms = int(time.time() * 1000) // DAY * DAY  # today, 00:00 UTC: three days of ready partitions
    fourth_day = datetime.fromtimestamp((start_ms + 3 * DAY) / 1000, UTC)
    result: dict[str, Any] = {}
    for label, partitioned in (("partitioned", True), ("unpartitioned", False)):
        with fresh_database(label) as db:
            build(db, partitioned=partitioned, devices=args.devices)
            with db.engine.connect() as conn:
                server = conn.exec_driver_sql("SHOW server_version").scalar_one()
            ingest = insert(db, args, start_ms)
            stored = sizes(db)
            expired = retention(db, fourth_day)
            left = sizes(db)
        result[label] = {"insert": ingest, "size": stored, "retention": expired,
                         "after_retention": {k: left[k] for k in ("rows", "total_bytes")}}
        print(f"{label}: {ingest['values_per_s']:,.0f} values/s, {stored['bytes_per_point']} bytes a "
              f"point, one day expired in {expired['expire_s']} s ({expired['raw_deleted']:,} points)",
              file=sys.stderr)
    part, flat = result["partitioned"]["retention"], result["unpartitioned"]["retention"]
    save("telemetry_pg", {
        "what": f"{args.points:,} values over 3 days from {args.devices} devices ({len(KEYS)} keys, "
                f"{PER_UPLOAD} timestamps a message, {args.batch} values a transaction) through "
                f"service.store_uploads into PostgreSQL {server} on the same 2-core machine; then "
                f"retention on day 4 keeping 2 days: day 1 dropped as a partition vs deleted from "
                f"one table",
        **result,
        "expire_day_speedup": round(flat["expire_s"] / part["expire_s"], 1) if part["expire_s"] else None,
    })


if __name__ == "__main__":
    main()
