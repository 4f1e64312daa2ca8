"""HTTP ingestion of batched telemetry through the ThingsBoard device API (issue 4: >= 200,000
values/s), on SQLite, beside a trivial endpoint of the same server (/healthz) as the framework's
ceiling, in one run.

It registers DEVICES synthetic devices on a seeded database, starts `cityops serve`, and lets wrk post
lists of {"ts", "values"} (ENTRIES entries of 3 values each) for DURATION seconds with 32 connections,
every request a new set of timestamps for one of the devices; then counts the points stored.
Run: .venv/bin/python bench/device_http_ingest.py [--duration S] [--entries N] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import run_wrk, save, served
from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.perception import service
from cityops.perception.models import TelemetryPoint
from cityops.perception.schemas import DeviceCreate
from cityops.places import service as places_service
from cityops.places.models import Grid

ROOT = Path(__file__).resolve().parent.parent
SQLITE_FILE = ROOT / "var" / "bench" / "device_ingest.db"
CLIENTS = 32
TARGET_VALUES_PER_S = 200_000.0

WRK_SCRIPT = """
local tokens = {%(tokens)s}
local n = 0
local threads = 0
-- wrk runs a Lua state per thread: each thread numbers its requests apart (id), so no two requests
-- send the same timestamps for the same device.
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local base = %(base)d
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local token = tokens[((n * 2 + id) %% #tokens) + 1]
  local parts = {}
  for i = 1, %(entries)d do
    local ts = base + (n * 2 + id) * %(entries)d + i
    parts[i] = string.format('{"ts":%%d,"values":{"temperature":%%.1f,"humidity":%%d,"ok":true}}',
                             ts, 20 + (i %% 7), 40 + (i %% 13))
  end
  return wrk.format(nil, "/api/v1/" .. token .. "/telemetry", nil, "[" .. table.concat(parts, ",") .. "]")
end
"""


def wrk(base_url: str, path: str, script: str, duration: float) -> dict[str, Any]:
    return run_wrk(f"{base_url}{path}", script, duration=duration, clients=CLIENTS)


def register(url: str, count: int) -> list[str]:
    db = Database(url)
    try:
        with db.session() as session:
            index = places_service.build_index(session)
            grids = session.execute(select(Grid.centroid_lon, Grid.centroid_lat).limit(count)).all()
            tokens = []
            for i, (lon, lat) in enumerate(grids):
                device = service.create_device(session, data=DeviceCreate(
                    name=f"压测温湿度-{i:04d}", profile="temperature", lon=lon, lat=lat),
                    index=index, actor=None, synthetic=True)
                assert device.access_token is not None
                tokens.append(device.access_token)
        return tokens
    finally:
        db.dispose()


def stored_points(url: str) -> int:
    db = Database(url)
    try:
        with db.sessions() as session:
            return session.scalar(select(func.count()).select_from(TelemetryPoint)) or 0
    finally:
        db.dispose()


def bytes_per_point() -> float:
    """Pages of the raw table (SQLite's dbstat) per stored point."""
    with sqlite3.connect(SQLITE_FILE) as conn:
        size = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'telemetry_raw'").fetchone()[0]
        points = conn.execute("SELECT count(*) FROM telemetry_raw").fetchone()[0]
    return round(size / points, 1) if points else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--entries", type=int, default=500, help="{ts, values} entries per request")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    SQLITE_FILE.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        SQLITE_FILE.with_name(SQLITE_FILE.name + suffix).unlink(missing_ok=True)
    url = f"sqlite:///{SQLITE_FILE}"
    env = {**os.environ, "CITYOPS_DATABASE_URL": url, "CITYOPS_RUN_SCHEDULER": "false"}
    for step in (["db", "upgrade"], ["seed", "--scale", "small"]):
        subprocess.run([sys.executable, "-m", "cityops.cli", *step], env=env, check=True, capture_output=True)
    tokens = register(url, args.devices)
    script = WRK_SCRIPT % {"tokens": ",".join(f'"{t}"' for t in tokens), "entries": args.entries,
                           "base": int(time.time() * 1000) - 20 * 86_400_000}
    with served(env, workers=args.workers) as base:
        ceiling = wrk(base, "/healthz", "", args.duration)
        before = stored_points(url)
        started = time.monotonic()
        ingest = wrk(base, "/", script, args.duration)
        # What wrk counted was answered; the count below is what the database holds (a little more:
        # wrk stops counting while the server still answers the requests in flight).
        stored = stored_points(url) - before
        elapsed = time.monotonic() - started
    values = ingest["requests"] * args.entries * 3
    result = {"ingest": ingest, "healthz_ceiling": ceiling,
              "values_per_request": args.entries * 3,
              "values_per_s": round(values / ingest["seconds"], 1),
              "values_answered": values, "values_stored": stored,
              "stored_per_s_wall": round(stored / elapsed, 1),
              "raw_bytes_per_point": bytes_per_point(),
              "meets_target": values / ingest["seconds"] >= TARGET_VALUES_PER_S and stored >= values
              and ingest["errors"] == 0}
    print(f"sqlite {args.workers} worker(s): {result['values_per_s']:,.0f} values/s "
          f"({ingest['per_s']:.0f} requests/s, p99 {ingest['p99_ms']} ms), stored {stored:,} of {values:,}, "
          f"{result['raw_bytes_per_point']} bytes a point | "
          f"healthz {ceiling['per_s']:.0f}/s", file=sys.stderr)
    save("device_http_ingest", {
        "what": f"POST /api/v1/{{token}}/telemetry with {CLIENTS} connections for {args.duration:g} s, "
                f"{args.entries} entries of 3 values per request, {len(tokens)} devices, SQLite, "
                f"{args.workers} worker(s); load generator on the same 2-core machine",
        "target": {"values_per_s": TARGET_VALUES_PER_S},
        **result,
    })


if __name__ == "__main__":
    main()
