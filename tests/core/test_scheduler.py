"""The database-backed scheduler: one runner per job at a time, state that survives restarts, leases
that expire after a crash, failures recorded, and the app's background thread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from cityops.app import create_app
from cityops.core import scheduler
from cityops.core.db import Database
from cityops.core.scheduler import Job, claim, job_states, run_due
from tests.conftest import make_settings

T0 = datetime(2024, 10, 8, 8, 0, tzinfo=UTC)


def state(db: Database, name: str) -> scheduler.ScheduledJob:
    [row] = [r for r in job_states(db) if r.name == name]
    return row


def test_two_runners_never_run_the_same_job_at_once(empty_db: Database) -> None:
    other = Database(empty_db.url)  # a second process on the same database
    runs: list[str] = []
    nested: list[list[str]] = []

    def work(db: Database, now: datetime) -> None:
        runs.append("a")
        # While this runner holds the job, the other one finds nothing to run.
        nested.append(run_due(other, [job], now=now))

    job = Job("test.work", 60, work)
    assert run_due(empty_db, [job], now=T0) == ["test.work"]
    assert runs == ["a"] and nested == [[]]
    # Done, but not due again before its interval, on either runner.
    assert run_due(other, [job], now=T0 + timedelta(seconds=30)) == []
    assert run_due(empty_db, [job], now=T0 + timedelta(seconds=59)) == []
    assert run_due(other, [job], now=T0 + timedelta(seconds=60)) == ["test.work"]
    assert len(runs) == 2
    other.dispose()


def test_state_survives_a_restart(empty_db: Database) -> None:
    runs: list[datetime] = []
    job = Job("test.restart", 60, lambda db, now: runs.append(now))
    assert run_due(empty_db, [job], now=T0) == ["test.restart"]
    empty_db.dispose()
    restarted = Database(empty_db.url)
    assert run_due(restarted, [job], now=T0 + timedelta(seconds=10)) == []
    row = state(restarted, "test.restart")
    assert row.last_started_at == T0 and row.last_finished_at is not None and row.locked_until is None
    assert run_due(restarted, [job], now=T0 + timedelta(seconds=61)) == ["test.restart"]
    assert runs == [T0, T0 + timedelta(seconds=61)]
    restarted.dispose()


def test_a_crashed_runners_claim_expires_with_its_lease(empty_db: Database) -> None:
    runs: list[datetime] = []
    job = Job("test.lease", 60, lambda db, now: runs.append(now), lease_s=300)
    scheduler.ensure_jobs(empty_db, [job], now=T0)
    assert claim(empty_db, job, now=T0)  # ... and the runner dies before finishing
    assert run_due(empty_db, [job], now=T0 + timedelta(seconds=120)) == []
    assert run_due(empty_db, [job], now=T0 + timedelta(seconds=301)) == ["test.lease"]
    assert runs == [T0 + timedelta(seconds=301)]


def test_a_failing_job_records_its_error_and_the_others_still_run(empty_db: Database) -> None:
    def broken(db: Database, now: datetime) -> None:
        raise RuntimeError("mail server down")

    ran: list[str] = []
    jobs = [Job("test.broken", 60, broken), Job("test.fine", 60, lambda db, now: ran.append("fine"))]
    assert run_due(empty_db, jobs, now=T0) == ["test.broken", "test.fine"]
    assert ran == ["fine"]
    assert state(empty_db, "test.broken").last_error == "RuntimeError: mail server down"
    assert state(empty_db, "test.broken").locked_until is None
    assert run_due(empty_db, jobs, now=T0 + timedelta(seconds=60)) == ["test.broken", "test.fine"]


def test_the_app_runs_the_packages_jobs_when_enabled(tmp_path: Path, db: Database) -> None:
    app = create_app(make_settings(tmp_path, run_scheduler=True), db=db)
    with TestClient(app):
        assert app.state.scheduler.running
    assert not app.state.scheduler.running
    names = {r.name: r for r in job_states(db)}
    assert {"cases.escalate_overdue", "webhooks.deliver"} <= set(names)
    assert names["cases.escalate_overdue"].interval_s == 60 and names["webhooks.deliver"].interval_s == 30
    assert all(r.last_finished_at is not None and r.last_error is None for r in names.values())


def test_concurrent_runners_on_postgres_run_a_due_job_once(pg_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cityops import all_models
    from cityops.core.db import Base

    all_models.load()
    databases = [Database(pg_url) for _ in range(4)]  # four app processes
    try:
        Base.metadata.create_all(databases[0].engine)
        runs: list[datetime] = []
        job = Job("test.pg", 60, lambda db, now: runs.append(now))
        scheduler.ensure_jobs(databases[0], [job], now=T0)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda db: run_due(db, [job], now=T0), databases))
        assert sorted(len(r) for r in results) == [0, 0, 0, 1] and runs == [T0]
        assert state(databases[1], "test.pg").last_started_at == T0
    finally:
        for db in databases:
            db.dispose()
