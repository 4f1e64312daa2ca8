"""Server time of the map and list pages with the full seed: p95 target < 100 ms (issue 2).

Starts `cityops serve` on a fully seeded SQLite database (built once under var/bench/), signs in as
the demo admin (who sees every record, the heaviest lists) and requests each page repeatedly. The
server time comes from the Server-Timing header; /healthz is measured in the same run as the
framework's floor. Run: .venv/bin/python bench/pages.py
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from _common import save

from cityops.accounts.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
DB_FILE = ROOT / "var" / "bench" / "full.db"
REQUESTS = 200
TARGET_P95_MS = 100.0
PAGES = [
    "/healthz",
    "/",
    "/map",
    "/api/places/geojson?level=county",
    "/api/places/geojson?level=township",
    "/api/places/geojson?level=village",
    "/api/places/geojson?level=grid",
    "/api/places/search?q=%E6%B7%87",
    "/places",
    "/places/stats",
    "/places/410611",
    "/api/places/divisions?level=village",
    "/users",
    "/api/users",
    "/audit",
    "/api/audit",
    "/cases",
    "/api/cases",
    "/cases/figures",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "cityops.cli", *args], env=env, check=True, capture_output=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    # No background jobs during the measurement: the first scheduler tick escalates every overdue demo case.
    env = {**os.environ, "CITYOPS_DATABASE_URL": f"sqlite:///{DB_FILE}", "CITYOPS_RUN_SCHEDULER": "false"}
    DB_FILE.parent.mkdir(parents=True, exist_ok=True)
    cli("db", "upgrade", env=env)
    cli("seed", "--scale", "full", env=env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "cityops.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        deadline = time.monotonic() + 60
        while True:
            try:
                opener.open(f"{base}/healthz", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        credentials = json.dumps({"username": "admin", "password": DEMO_PASSWORD}).encode()
        login = urllib.request.Request(f"{base}/api/auth/login", method="POST", data=credentials,
                                       headers={"Content-Type": "application/json"})
        opener.open(login).read()
        results = {}
        for page in PAGES:
            server_ms: list[float] = []
            client_ms: list[float] = []
            size = 0
            for i in range(REQUESTS + 5):
                started = time.perf_counter()
                with opener.open(f"{base}{page}", timeout=30) as resp:
                    body = resp.read()
                    timing = resp.headers.get("Server-Timing", "app;dur=nan")
                    assert resp.status == 200, (page, resp.status)
                elapsed = (time.perf_counter() - started) * 1000
                if i >= 5:  # the first requests fill caches
                    server_ms.append(float(timing.split("dur=")[1]))
                    client_ms.append(elapsed)
                size = len(body)
            results[page] = {
                "server_p50_ms": round(statistics.median(server_ms), 2),
                "server_p95_ms": round(percentile(server_ms, 0.95), 2),
                "client_p95_ms": round(percentile(client_ms, 0.95), 2),
                "bytes": size,
                "meets_target": percentile(server_ms, 0.95) < TARGET_P95_MS,
            }
            print(f"{page:45s} p95 {results[page]['server_p95_ms']:8.2f} ms  {size:>9} B", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=20)
    save("pages", {
        "what": "server time per page (Server-Timing), full seed, signed in as admin, "
                f"{REQUESTS} sequential requests each after 5 warm-up requests",
        "target_p95_ms": TARGET_P95_MS,
        "baseline": "/healthz (framework floor)",
        "all_meet_target": all(r["meets_target"] for p, r in results.items()),
        "pages": results,
    })


if __name__ == "__main__":
    main()
