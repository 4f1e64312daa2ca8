"""`cityops seed --scale full` on a fresh SQLite file: the foundation (places and accounts) and the
three years of synthetic history.

Targets: the foundation within 30 s (issue 2), the whole seed within 5 minutes. Run:
.venv/bin/python bench/seed_full.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import save

TARGET_S = 30.0
TOTAL_TARGET_S = 300.0
FOUNDATION = ("places", "accounts")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CITYOPS_DATABASE_URL": f"sqlite:///{Path(tmp) / 'seed.db'}",
               "CITYOPS_ATTACHMENTS_DIR": str(Path(tmp) / "files")}
        cli = [sys.executable, "-m", "cityops.cli"]
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        out = subprocess.run([*cli, "seed", "--scale", "full", "--json"], env=env, check=True,
                             capture_output=True, text=True)
        wall = time.perf_counter() - started
        per_generator = json.loads(out.stdout.strip().splitlines()[-1])
        stats = subprocess.run([*cli, "places", "stats", "--json"], env=env, check=True,
                               capture_output=True, text=True)
    foundation = sum(per_generator.get(name, 0.0) for name in FOUNDATION)
    save("seed_full", {
        "command": "cityops seed --scale full (fresh SQLite, after db upgrade)",
        "wall_s": round(wall, 2),
        "per_generator_s": per_generator,
        "foundation_s": round(foundation, 2),
        "target_s": TARGET_S,
        "meets_target": foundation <= TARGET_S,
        "total_target_s": TOTAL_TARGET_S,
        "meets_total_target": wall <= TOTAL_TARGET_S,
        "places_stats": json.loads(stats.stdout),
    })


if __name__ == "__main__":
    main()
