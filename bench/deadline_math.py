"""Deadline arithmetic and the overdue sweep.

1. Working-time kernel: add_working_time / working_seconds_between for deadlines a day, a month and
   a year away, against a naive minute-by-minute walk (the ceiling the day-span kernel must beat).
2. Overdue sweep over N open cases (default 1,000,000) in a fresh SQLite file, or PostgreSQL with
   --url. Target (issue 3): < 5 s for 1,000,000 open cases.

Run: .venv/bin/python bench/deadline_math.py [--cases N] [--url URL]
(results in bench/results/deadline_math.json, or deadline_math_postgresql.json with --url)
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from _common import save
from sqlalchemy import insert, inspect

from cityops import all_models
from cityops.cases.models import Case
from cityops.cases.sla import sweep_overdue
from cityops.core.calendar import DEFAULT_CALENDAR, add_working_time, working_seconds_between
from cityops.core.db import Base, Database

BEIJING = ZoneInfo("Asia/Shanghai")
START = datetime(2024, 1, 2, 9, tzinfo=BEIJING).astimezone(UTC)
CHUNK = 20_000


def per_call_us(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm the per-year cache
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        runs.append((time.perf_counter() - t0) / repeat * 1e6)
    return round(statistics.median(runs), 2)


def minute_walk(start: datetime, hours: float) -> datetime:
    """Minute by minute: what the kernel must not do; only for the comparison."""
    t, left = start, hours * 60
    while left > 0:
        if DEFAULT_CALENDAR.working_seconds_between(t, t + timedelta(minutes=1)) > 0:
            left -= 1
        t += timedelta(minutes=1)
    return t


def kernel() -> dict[str, object]:
    out: dict[str, object] = {}
    for label, hours in (("day", 7.0), ("month", 7.0 * 21), ("year", 7.0 * 250)):
        end = add_working_time(START, hours=hours)
        out[f"add_working_time_{label}_us"] = per_call_us(partial(add_working_time, START, hours=hours), 200)
        out[f"working_seconds_between_{label}_us"] = per_call_us(partial(working_seconds_between, START, end),
                                                                 200)
    t0 = time.perf_counter()
    walked = minute_walk(START, 7.0 * 21)
    out["minute_walk_month_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    assert walked == add_working_time(START, hours=7.0 * 21)
    return out


def sweep(url: str | None, n: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(url or f"sqlite:///{Path(tmp) / 'sweep.db'}")
        if inspect(db.engine).get_table_names():
            raise SystemExit("--url must name an empty scratch database; it is left holding the cases")
        all_models.load()
        Base.metadata.create_all(db.engine)
        now = datetime(2024, 11, 11, 2, tzinfo=UTC)
        rng = random.Random(3)
        statuses = ["dispatched", "in_progress", "accepted", "escalated", "closed", "resolved"]
        t0 = time.perf_counter()
        with db.engine.begin() as conn:
            for base in range(0, n, CHUNK):
                rows: list[dict[str, object]] = [{
                    "number": f"HB-B-{i:08d}", "type_code": "dispute", "category": "noise", "title": "噪声",
                    "description": "", "status": rng.choice(statuses), "level": "village",
                    "division_code": "410602001001", "village_code": "410602001001", "lon": 114.3,
                    "lat": 35.7, "source": "web", "public": False, "fields": {}, "paused_seconds": 0,
                    "version": 1, "created_at": now, "updated_at": now,
                    # About 5% are past their deadline, the rest due within the next 30 days.
                    "deadline_at": now + timedelta(minutes=rng.randrange(-2_000, 40_000)),
                    "paused_at": now if rng.random() < 0.02 else None,
                } for i in range(base, min(base + CHUNK, n))]
                conn.execute(insert(Case), rows)
        load_s = time.perf_counter() - t0
        runs, found = [], 0
        for _ in range(3):
            with db.session() as s:
                t0 = time.perf_counter()
                found = len(sweep_overdue(s, now=now))
                runs.append(time.perf_counter() - t0)
        backend = db.engine.dialect.name
        db.dispose()
    return {"backend": backend, "cases": n, "load_s": round(load_s, 1), "overdue_found": found,
            "sweep_s_median_of_3": round(statistics.median(runs), 3), "target_s": 5.0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--url", default=None,
                        help="an empty scratch database (default: a fresh SQLite file)")
    args = parser.parse_args()
    result = sweep(args.url, args.cases)
    name = "deadline_math" if args.url is None else f"deadline_math_{result['backend']}"
    save(name, {"kernel": kernel(), "sweep": result})


if __name__ == "__main__":
    main()
