"""The database kernel: UTC timestamps, concurrent writers on SQLite."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from cityops.core.db import Database
from cityops.core.events import OutboxEntry


def test_timestamps_come_back_in_utc(empty_db: Database) -> None:
    with empty_db.session() as session:
        session.add(OutboxEntry(event_id="e", topic="t", payload={}))
    with empty_db.sessions() as session:
        row = session.scalars(select(OutboxEntry)).one()
        assert row.created_at.utcoffset() is not None and row.created_at.utcoffset().total_seconds() == 0


def test_naive_timestamps_are_refused(empty_db: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), empty_db.session() as session:
        session.add(OutboxEntry(event_id="e", topic="t", payload={}, created_at=datetime(2024, 1, 1)))


def test_many_concurrent_writers_all_succeed(empty_db: Database) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                with empty_db.session() as session:
                    session.add(OutboxEntry(event_id=f"{n}-{i}", topic="t", payload={"n": n}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with empty_db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEntry)) == 16 * 20


def test_the_write_turn_is_given_back_after_commit_rollback_and_errors(empty_db: Database) -> None:
    """However a transaction ends, the next writer (here in another thread) gets its turn."""

    def write_elsewhere(event_id: str) -> None:
        done: list[BaseException | None] = []

        def run() -> None:
            try:
                with empty_db.session() as session:
                    session.add(OutboxEntry(event_id=event_id, topic="t", payload={}))
                done.append(None)
            except BaseException as exc:
                done.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=15)
        assert done == [None], f"the other writer did not get its turn: {done}"

    with empty_db.session() as session:
        session.add(OutboxEntry(event_id="committed", topic="t", payload={}))
    write_elsewhere("after-commit")
    with pytest.raises(RuntimeError), empty_db.session() as session:
        session.add(OutboxEntry(event_id="rolled-back", topic="t", payload={}))
        session.flush()
        raise RuntimeError("the handler failed")
    write_elsewhere("after-rollback")
    with pytest.raises(IntegrityError), empty_db.session() as session:
        session.add(OutboxEntry(event_id="committed", topic="t", payload={}))  # duplicate event id
    write_elsewhere("after-error")
    with empty_db.sessions() as session:
        assert sorted(session.scalars(select(OutboxEntry.event_id))) == [
            "after-commit", "after-error", "after-rollback", "committed"]


def test_a_writer_in_another_process_waits_for_its_turn(empty_db: Database, tmp_path: Path) -> None:
    """Two processes on one SQLite file (server workers, the CLI): the second writer queues behind the
    first instead of failing with 'database is locked'."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE, empty_db.url, str(tmp_path / "held")])
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "held").exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holder did not start"
            time.sleep(0.05)
        with empty_db.session() as session:  # waits until the holder commits
            session.add(OutboxEntry(event_id="second", topic="t", payload={}))
    finally:
        assert holder.wait(timeout=20) == 0
    with empty_db.sessions() as session:
        assert sorted(session.scalars(select(OutboxEntry.event_id))) == ["first", "second"]


# Holds a write transaction for 1.5 s (longer than a naive busy wait would poll) and then commits.
HOLD_WRITE = """
import sys, time
from pathlib import Path
from cityops.core.db import Database
from cityops.core.events import OutboxEntry
db = Database(sys.argv[1])
with db.session() as session:
    session.add(OutboxEntry(event_id="first", topic="t", payload={}))
    session.flush()
    Path(sys.argv[2]).touch()
    time.sleep(1.5)
"""
