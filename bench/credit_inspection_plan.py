"""A year's random and joint inspection plan for the full synthetic Hebi (178,000 entities): the draw of
all 24 categories, the merge into joint visits, the route and the calendar, written to the database.

The seed (places, accounts, the credit register with its demo inspectors) goes into a SQLite file in the
temporary directory, reused when present. Target: 30 s. Run:
.venv/bin/python bench/credit_inspection_plan.py
"""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path

from _common import save
from rich.progress import Progress
from sqlalchemy import func, select

from cityops import all_models
from cityops.core.db import Base, Database, utcnow
from cityops.core.seeding import SeedContext
from cityops.credit import demo as credit_demo
from cityops.credit import inspections
from cityops.credit.models import Entity, InspectorQualification

TARGET_S = 30.0
YEAR = 2026
SEED = 20260101
PATH = Path(tempfile.gettempdir()) / "cityops-bench-credit-inspections.db"
GENERATORS = ("cityops.places.demo", "cityops.accounts.demo", "cityops.credit.demo")


def _seeded(db: Database) -> None:
    """Seed what the plan needs unless the file has it (the inspectors and qualifications included)."""
    import importlib

    all_models.load()
    Base.metadata.create_all(db.engine)
    with Progress() as progress:
        ctx = SeedContext(db=db, scale="full", seed=2024, progress=progress, files_root=PATH.parent / "files",
                          now=utcnow())
        for name in GENERATORS:
            generator = importlib.import_module(name).GENERATOR
            if not generator.is_seeded(db):
                started = time.perf_counter()
                generator.run(ctx)
                print(f"seeded {generator.name} in {time.perf_counter() - started:.1f} s")
        with db.sessions() as session:
            qualified = session.scalar(select(func.count()).select_from(InspectorQualification))
        if not qualified:
            credit_demo.seed_inspectors(ctx)


def main() -> None:
    db = Database(f"sqlite:///{PATH}")
    _seeded(db)
    with db.sessions() as session:
        entities = session.scalar(select(func.count()).select_from(Entity)) or 0
    # A previous run's plan is removed before the clock starts: the figure is for planning a fresh year.
    with db.session() as session:
        inspections.clear_year(session, YEAR)
    started = time.perf_counter()
    steps: list[tuple[str, float]] = []

    def step(label: str) -> None:
        steps.append((label, round(time.perf_counter() - started, 3)))

    with db.session() as session:
        found = inspections.plan_year(
            session,
            options=inspections.PlanOptions(year=YEAR, seed=SEED, start=date(YEAR, 1, 1)),
            actor=None,
            progress=step,
        )
    wall = time.perf_counter() - started
    # Spot check the published figure against the rows: tasks minus visits.
    assert found.visits_saved == found.tasks - found.visits
    save("credit_inspection_plan", {
        "command": ".venv/bin/python bench/credit_inspection_plan.py",
        "database": "SQLite file (reused between runs)",
        "entities": entities,
        "year": YEAR,
        "seed": SEED,
        "wall_s": round(wall, 2),
        "target_s": TARGET_S,
        "meets_target": wall <= TARGET_S,
        "steps_s": dict(steps),
        "figures": found.model_dump(),
    })


if __name__ == "__main__":
    main()
