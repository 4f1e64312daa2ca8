"""The database kernel: UTC timestamps, concurrent writers on SQLite."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import func, select

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
