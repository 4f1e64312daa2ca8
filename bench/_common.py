"""Shared by the benchmark scripts: machine facts and writing results to bench/results/."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        # Other work on the machine moves timings: the load average when the result is saved says how much.
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def save(name: str, result: dict[str, Any]) -> Path:
    """Print the result and write it as JSON to bench/results/NAME.json."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"bench": name, "at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
               **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(payload, indent=2, ensure_ascii=False))
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(env: dict[str, str], *, workers: int) -> Iterator[str]:
    """`cityops serve` on a free port with these settings, until /healthz answers; its base URL.
    Stopped when the block ends."""
    import subprocess
    import time

    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cityops.cli", "serve", "--port", str(port),
                               "--workers", str(workers)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.3)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99),
    summary.duration))
end
"""


def run_wrk(url: str, script: str, *, duration: float, clients: int, headers: dict[str, str] | None = None
            ) -> dict[str, Any]:
    """wrk (C, Debian's package) with a Lua script (WRK_DONE is appended to report): a Python load
    generator would be the bottleneck. Requests, errors, rate and p50/p99 latency."""
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script + WRK_DONE)
    extra = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")]
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{clients}", f"-d{duration:g}s", "-s", fh.name, *extra, url],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(fh.name)
    line = next(row for row in out.splitlines() if row.startswith("RESULT"))
    requests, socket_errors, bad_status, p50_us, p99_us, duration_us = map(int, line.split()[1:])
    if requests == 0:
        raise SystemExit(f"wrk completed no request on {url}:\n{out}")
    seconds = duration_us / 1e6
    return {"requests": requests, "errors": socket_errors + bad_status, "seconds": round(seconds, 2),
            "per_s": round(requests / seconds, 1), "p50_ms": round(p50_us / 1000, 2),
            "p99_ms": round(p99_us / 1000, 2)}
