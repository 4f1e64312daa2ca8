"""Case intake through the HTTP API with 32 concurrent clients (issue 3: >= 500 cases/s sustained with
p99 < 100 ms on SQLite), on SQLite and PostgreSQL, beside a trivial endpoint of the same server
(/healthz) as the framework's ceiling, all in one run.

Each run starts `cityops serve` (one worker process, then two) on a seeded database, takes an API
token for a city operator and posts urban-management reports at points inside random grids for
DURATION seconds.
The load comes from wrk (Debian's package; `./run bench` installs it).
Run: .venv/bin/python bench/case_intake.py [--duration S] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _common import run_wrk, save, served
from sqlalchemy import create_engine, select, text

from cityops.places.models import Grid

ROOT = Path(__file__).resolve().parent.parent
SQLITE_FILE = ROOT / "var" / "bench" / "intake.db"
PG_ADMIN = os.environ.get("CITYOPS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CLIENTS = 32
TARGET_RATE = 500.0
TARGET_P99_MS = 100.0


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "cityops.cli", *args], env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def grid_points(url: str, n: int = 2000) -> list[tuple[float, float]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(Grid.centroid_lon, Grid.centroid_lat)).all()
    engine.dispose()
    rng = random.Random(7)
    return [(float(lon), float(lat)) for lon, lat in rng.sample(list(rows), min(n, len(rows)))]


WRK_SCRIPT = """
local points = {%(points)s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  local p = points[(i %% #points) + 1]
  local body = string.format('{"type_code":"urban","category":"garbage","title":"路边垃圾堆积",' ..
    '"description":"压测：小区门口垃圾未清运","lon":%%.6f,"lat":%%.6f}', p[1], p[2])
  return wrk.format(nil, "%(path)s", nil, body)
end
"""
def load(base: str, token: str, points: list[tuple[float, float]], *, path: str, duration: float,
         post: bool) -> dict[str, Any]:
    """wrk (C, Debian's package) as the load generator: a Python client would be the bottleneck."""
    script = (WRK_SCRIPT % {"points": ",".join(f"{{{lon},{lat}}}" for lon, lat in points), "path": path}
              if post else "")
    return run_wrk(f"{base}{path}", script, duration=duration, clients=CLIENTS,
                   headers={"Authorization": f"Bearer {token}"})


def wait_idle(base: str, *, timeout_s: float = 60) -> None:
    """Until /healthz answers fast again, i.e. the requests of closed connections are done."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        started = time.perf_counter()
        httpx.get(f"{base}/healthz", timeout=timeout_s)
        if time.perf_counter() - started < 0.02:
            time.sleep(1)
            return
        time.sleep(0.5)


def run_backend(name: str, url: str, duration: float, workers: int) -> dict[str, Any]:
    env = {**os.environ, "CITYOPS_DATABASE_URL": url, "CITYOPS_RUN_SCHEDULER": "false"}
    cli(env, "db", "upgrade")
    cli(env, "seed", "--scale", "small")  # a no-op when a previous run seeded the database
    token = cli(env, "tokens", "create", "city.operator", "--name", "intake bench", "--days", "1")
    points = grid_points(url)
    with served(env, workers=workers) as base:
        # The ceiling first: a backlog of posts left by a run would slow it down. wrk closes its
        # connections at the end of a run while the server still works on their requests, so each
        # run waits for the server to finish them.
        ceiling = load(base, token, points, path="/healthz", duration=duration, post=False)
        load(base, token, points, path="/api/cases", duration=2, post=True)  # warm-up
        wait_idle(base)
        intake = load(base, token, points, path="/api/cases", duration=duration, post=True)
    result = {"intake": intake, "healthz_ceiling": ceiling,
              "share_of_ceiling": round(intake["per_s"] / ceiling["per_s"], 3),
              "meets_target": intake["per_s"] >= TARGET_RATE and intake["p99_ms"] < TARGET_P99_MS
              and intake["errors"] == 0}
    print(f"{name:10s} {workers} worker(s) intake {intake['per_s']:7.1f}/s p99 {intake['p99_ms']:7.1f} ms | "
          f"healthz {ceiling['per_s']:7.1f}/s", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--workers", default="1,2", help="Server worker processes per run, comma-separated")
    args = parser.parse_args()
    SQLITE_FILE.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # a stale WAL beside a new file would corrupt it
        SQLITE_FILE.with_name(SQLITE_FILE.name + suffix).unlink(missing_ok=True)
    counts = sorted({int(w) for w in args.workers.split(",")})
    results = {f"sqlite_{w}_workers": run_backend("sqlite", f"sqlite:///{SQLITE_FILE}", args.duration, w)
               for w in counts}
    if not args.skip_postgres:
        name = f"cityops_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            for w in counts:
                results[f"postgresql_{w}_workers"] = run_backend(
                    "postgresql", PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", args.duration, w)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    save("case_intake", {
        "what": f"POST /api/cases with {CLIENTS} concurrent clients for {args.duration:g} s, server with "
                "1 and 2 worker processes, load generator on the same 2-core machine; /healthz of the same "
                "server as the framework ceiling",
        "target": {"cases_per_s": TARGET_RATE, "p99_ms": TARGET_P99_MS},
        **results,
    })


if __name__ == "__main__":
    main()
