"""`cityops seed --scale full` for the foundation (places and accounts) on a fresh SQLite file.

Target (issue 2): at most 30 s. Run: .venv/bin/python bench/seed_full.py
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


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CITYOPS_DATABASE_URL": f"sqlite:///{Path(tmp) / 'seed.db'}"}
        cli = [sys.executable, "-m", "cityops.cli"]
        subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        out = subprocess.run([*cli, "seed", "--scale", "full", "--json"], env=env, check=True,
                             capture_output=True, text=True)
        wall = time.perf_counter() - started
        per_generator = json.loads(out.stdout.strip().splitlines()[-1])
        stats = subprocess.run([*cli, "places", "stats", "--json"], env=env, check=True,
                               capture_output=True, text=True)
    save("seed_full", {
        "command": "cityops seed --scale full (fresh SQLite, after db upgrade)",
        "wall_s": round(wall, 2),
        "per_generator_s": per_generator,
        "target_s": TARGET_S,
        "meets_target": wall <= TARGET_S,
        "places_stats": json.loads(stats.stdout),
    })


if __name__ == "__main__":
    main()
