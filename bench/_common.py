"""Shared by the benchmark scripts: machine facts and writing results to bench/results/."""

from __future__ import annotations

import json
import os
import platform
import sys
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
