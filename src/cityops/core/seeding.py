"""The generator registry and runner behind `cityops seed`.

It lives in core so that each package's demo.py (which registers a generator) imports downwards; the
packages are named here as strings and imported only when seeding."""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from cityops.config import get_settings
from cityops.core.db import Database, utcnow
from cityops.core.events import OutboxEntry

Scale = Literal["full", "small"]

# Package generators, in dependency order. Each module defines `GENERATOR`.
GENERATOR_MODULES = (
    "cityops.places.demo",
    "cityops.accounts.demo",
    "cityops.cases.demo",
    "cityops.governance.visits.demo",
    "cityops.governance.disputes.demo",
    "cityops.governance.centres.demo",
    "cityops.governance.assessment.demo",
    "cityops.governance.meetings.demo",
    "cityops.governance.risks.demo",
    "cityops.perception.demo",
    "cityops.warning.demo",
    "cityops.credit.demo",
    "cityops.livability.demo",
)


@dataclass
class SeedContext:
    db: Database
    scale: Scale
    seed: int
    progress: Progress
    # Where generated attachments and photos are stored (settings.attachments_dir by default).
    files_root: Path
    # The end of the synthetic history: generators of past records make nothing after it.
    now: datetime
    timings: dict[str, float] = field(default_factory=dict)

    def rng(self, name: str) -> random.Random:
        """A random stream per generator, so adding one generator never changes another's output."""
        return random.Random(f"{self.seed}:{name}")

    def task(self, description: str, total: int) -> Callable[[int], None]:
        """A progress bar line; returns a function that advances it."""
        task_id = self.progress.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            self.progress.advance(task_id, n)

        return advance


@dataclass(frozen=True)
class Generator:
    name: str
    run: Callable[[SeedContext], None]
    # True when the package's data is already there, so a second `seed` is a no-op for it.
    is_seeded: Callable[[Database], bool]


def keep_alive(session: Session) -> list[Any]:
    """Every object that becomes persistent in the session from now on (written or read), in order,
    held alive while in the list: a generator finds there what a service call made without querying
    for it. Clear the list as you go: a session with many live objects makes some ORM statements
    (an UPDATE that synchronises the session) scan them all."""
    kept: list[Any] = []

    def keep(_session: Session, instance: Any) -> None:
        kept.append(instance)

    for change in ("pending_to_persistent", "loaded_as_persistent", "detached_to_persistent"):
        event.listen(session, change, keep)
    return kept


def generators() -> list[Generator]:
    return [importlib.import_module(m).GENERATOR for m in GENERATOR_MODULES]


def seed(db: Database, *, scale: Scale = "full", seed: int = 2024, quiet: bool = False, force: bool = False,
         files_root: Path | None = None, now: datetime | None = None) -> dict[str, float]:
    """Run every generator not yet seeded; returns seconds per generator. Generated files go to
    `files_root` (default: the settings' attachments folder); the history ends at `now`."""
    if files_root is None:
        files_root = get_settings().attachments_dir
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), disable=quiet)
    ctx = SeedContext(db=db, scale=scale, seed=seed, progress=progress, files_root=Path(files_root),
                      now=now or utcnow())
    with progress:
        for gen in generators():
            if not force and gen.is_seeded(db):
                continue
            started = time.perf_counter()
            gen.run(ctx)
            ctx.timings[gen.name] = round(time.perf_counter() - started, 3)
    _history_is_not_news(db)
    return ctx.timings


def _history_is_not_news(db: Database) -> None:
    """The demo history's events stay in the outbox as published: the first server start must not
    notify people of three years of synthetic cases or push old results to webhooks."""
    with db.session() as session:
        session.execute(update(OutboxEntry).where(OutboxEntry.published_at.is_(None))
                        .values(published_at=utcnow()))
