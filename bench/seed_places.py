"""The places generator at full scale on a fresh SQLite file: real divisions, synthetic geometry,
2,397 grids. Target (issue 2, with accounts): well under 30 s. Run: .venv/bin/python bench/seed_places.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import save
from rich.progress import Progress

from cityops import all_models
from cityops.core.db import Base, Database
from cityops.core.seeding import SeedContext
from cityops.places import demo, service

TARGET_S = 30.0


def main() -> None:
    all_models.load()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'places.db'}")
        Base.metadata.create_all(db.engine)
        ctx = SeedContext(db=db, scale="full", seed=2024, progress=Progress(disable=True))
        started = time.perf_counter()
        demo.GENERATOR.run(ctx)
        seconds = time.perf_counter() - started
        with db.sessions() as session:
            counts = service.stats(session).counts
            started = time.perf_counter()
            service.build_index(session)
            index_s = time.perf_counter() - started
        db.dispose()
    save(
        "seed_places",
        {
            "command": ".venv/bin/python bench/seed_places.py",
            "generator": "places (scale full, seed 2024)",
            "seconds": round(seconds, 2),
            "counts": counts,
            "lookup_index_build_from_db_s": round(index_s, 2),
            "target_s": TARGET_S,
            "meets_target": seconds <= TARGET_S,
        },
    )


if __name__ == "__main__":
    main()
