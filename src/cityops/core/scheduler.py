"""A small job scheduler whose state lives in the database, so it survives restarts and several
app processes can run it side by side.

Each job has a row in `scheduled_jobs`. A runner claims a due job with one conditional UPDATE
(due, and not locked by a live runner); only the runner whose UPDATE changed the row runs it, so two
workers never run the same job at once. The claim is a lease: a runner that dies mid-job leaves
`locked_until` behind, and the job is due again once the lease has passed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, Text, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core import webhooks
from cityops.core.db import Base, Database, utcnow

log = logging.getLogger(__name__)
MAX_ERROR = 2000


class ScheduledJob(Base):
    __tablename__ = "scheduled_jobs"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    interval_s: Mapped[int]
    # When the job is due next (last start + interval); indexed claims compare against it.
    next_run_at: Mapped[datetime]
    last_started_at: Mapped[datetime | None] = mapped_column(default=None)
    last_finished_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


@dataclass(frozen=True)
class Job:
    """A periodic job: `run(db, now)` does one pass; `lease_s` bounds how long a claim holds."""

    name: str
    interval_s: int
    run: Callable[[Database, datetime], object]
    lease_s: int = 600

    def __post_init__(self) -> None:
        if self.interval_s < 1 or self.lease_s < 1:
            raise ValueError(f"job {self.name!r}: interval and lease must be at least one second")


def ensure_jobs(db: Database, jobs: Sequence[Job], *, now: datetime) -> None:
    """A row per job (due at once when new); a changed interval is taken over."""
    with db.session() as session:
        rows = {r.name: r for r in session.scalars(select(ScheduledJob).where(
            ScheduledJob.name.in_([j.name for j in jobs])))}
        for job in jobs:
            row = rows.get(job.name)
            if row is None:
                session.add(ScheduledJob(name=job.name, interval_s=job.interval_s, next_run_at=now))
            elif row.interval_s != job.interval_s:
                row.interval_s = job.interval_s
        try:
            session.flush()
        except IntegrityError:
            # Another runner inserted the same rows at the same moment; theirs will do.
            session.rollback()


def claim(db: Database, job: Job, *, now: datetime) -> bool:
    """Take the job if it is due and not held by a live runner; True if this runner got it."""
    with db.session() as session:
        result = session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.name == job.name, ScheduledJob.next_run_at <= now,
                   or_(ScheduledJob.locked_until.is_(None), ScheduledJob.locked_until <= now))
            .values(locked_until=now + timedelta(seconds=job.lease_s), last_started_at=now,
                    next_run_at=now + timedelta(seconds=job.interval_s))
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


def _finish(db: Database, job: Job, *, error: str | None) -> None:
    with db.session() as session:
        session.execute(update(ScheduledJob).where(ScheduledJob.name == job.name)
                        .values(last_finished_at=utcnow(), last_error=error, locked_until=None)
                        .execution_options(synchronize_session=False))


def run_due(db: Database, jobs: Sequence[Job], *, now: datetime | None = None) -> list[str]:
    """Run every due job this runner can claim; the names of those it ran. A failing job records
    its error and is tried again at its next interval; it never stops the others."""
    now = now or utcnow()
    ensure_jobs(db, jobs, now=now)
    ran: list[str] = []
    for job in jobs:
        if not claim(db, job, now=now):
            continue
        error: str | None = None
        try:
            job.run(db, now)
        except Exception as exc:  # a job's failure is recorded, the scheduler goes on
            log.exception("scheduled job %s failed", job.name)
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        _finish(db, job, error=error)
        ran.append(job.name)
    return ran


def job_states(db: Database) -> list[ScheduledJob]:
    with db.sessions() as session:
        return list(session.scalars(select(ScheduledJob).order_by(ScheduledJob.name)))


class SchedulerThread:
    """Calls run_due every `every_s` seconds in a daemon thread until stopped."""

    def __init__(self, db: Database, jobs: Sequence[Job], *, every_s: float = 5.0) -> None:
        self.db, self.jobs, self.every_s = db, list(jobs), every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cityops-scheduler", daemon=True)

    def _loop(self) -> None:
        # The first tick runs at once, even if a stop comes right away: due work is never left
        # waiting for a process that restarts often.
        while True:
            try:
                run_due(self.db, self.jobs)
            except Exception:  # the database may be away for a moment; try again next tick
                log.exception("scheduler tick failed")
            if self._stop.wait(self.every_s):
                return

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def webhooks_job(secret: str, *, interval_s: int = 30) -> Job:
    """'webhooks.deliver': send the outbound webhooks that are due."""

    def deliver(db: Database, now: datetime) -> None:
        with webhooks.new_client() as client:
            webhooks.deliver_due(db, secret=secret, client=client, now=now)

    return Job("webhooks.deliver", interval_s, deliver)
