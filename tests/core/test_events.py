"""The outbox: events go out after commit, never for a rollback, once per subscriber even when redelivered."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.event import listen

from cityops import all_models
from cityops.core.db import Base, Database
from cityops.core.events import (
    Envelope,
    Event,
    EventBus,
    OutboxEntry,
    ProcessedEvent,
    deliver_once,
    emit,
    event_type,
)


@event_type
@dataclasses.dataclass(frozen=True)
class ThingHappened(Event):
    topic = "test.thing_happened"
    name: str


@pytest.fixture
def bus(empty_db: Database) -> EventBus:
    bus = EventBus(empty_db)
    empty_db.after_commit.append(bus.drain)
    return bus


def test_event_is_delivered_after_commit_and_decoded(bus: EventBus, empty_db: Database) -> None:
    seen: list[object] = []
    bus.subscribe(ThingHappened.topic, "collector", lambda _s, env: seen.append(env.decode()))
    with empty_db.session() as session:
        emit(session, ThingHappened(name="a"))
        assert seen == []  # nothing goes out before the commit
    assert seen == [ThingHappened(name="a")]
    with empty_db.sessions() as session:
        assert session.scalar(select(func.count()).where(OutboxEntry.published_at.is_(None))) == 0


def test_rolled_back_event_is_never_published(bus: EventBus, empty_db: Database) -> None:
    seen: list[object] = []
    bus.subscribe(ThingHappened.topic, "collector", lambda _s, env: seen.append(env))
    with pytest.raises(RuntimeError), empty_db.session() as session:
        emit(session, ThingHappened(name="lost"))
        raise RuntimeError("the change fails")
    bus.drain()
    assert seen == []


def test_failed_delivery_is_kept_and_retried(bus: EventBus, empty_db: Database) -> None:
    calls: list[str] = []

    def flaky(_session: object, env: Envelope) -> None:
        calls.append(env.event_id)
        if len(calls) <= 2:  # the batch, then the one-at-a-time retry of the same drain
            raise ConnectionError("subscriber down")

    bus.subscribe(ThingHappened.topic, "flaky", flaky)
    with empty_db.session() as session:
        emit(session, ThingHappened(name="x"))
    with empty_db.sessions() as session:
        row = session.scalars(select(OutboxEntry)).one()
        assert row.published_at is None and row.last_error == "subscriber down"
    assert bus.drain() == 1
    assert len(calls) == 3 and len(set(calls)) == 1


def test_redelivered_event_is_handled_once(empty_db: Database) -> None:
    handled: list[str] = []
    env = Envelope("e-1", ThingHappened.topic, {"name": "x"}, created_at=None)  # type: ignore[arg-type]
    assert deliver_once(empty_db, "sub", lambda _s, e: handled.append(e.event_id), env)
    assert not deliver_once(empty_db, "sub", lambda _s, e: handled.append(e.event_id), env)
    assert handled == ["e-1"]
    with empty_db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 1


def test_subscriber_names_are_unique(bus: EventBus) -> None:
    bus.subscribe("t", "one", lambda _s, _e: None)
    with pytest.raises(ValueError, match="already registered"):
        bus.subscribe("t", "one", lambda _s, _e: None)


def test_metadata_loads_every_model() -> None:
    all_models.load()
    assert {"outbox", "processed_events"} <= set(Base.metadata.tables)


def test_background_mode_delivers_after_commit_in_batches(empty_db: Database) -> None:
    bus = EventBus(empty_db)
    empty_db.after_commit.append(bus.after_commit)
    seen: list[object] = []
    delivered = threading.Event()

    def collect(_session: object, env: Envelope) -> None:
        seen.append(env.decode())
        if len(seen) == 3:
            delivered.set()

    bus.subscribe(ThingHappened.topic, "collector", collect)
    bus.start(poll_s=0.05)
    try:
        with empty_db.session() as session:
            for name in ("a", "b", "c"):
                emit(session, ThingHappened(name=name))
        assert delivered.wait(5), "the background thread delivered nothing"
        assert seen == [ThingHappened(name="a"), ThingHappened(name="b"), ThingHappened(name="c")]
        # A row committed by another process (no after-commit hook here) is found by the poll.
        with empty_db.sessions() as session:
            emit(session, ThingHappened(name="elsewhere"))
            session.commit()
        deadline = time.monotonic() + 5
        while len(seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen[-1] == ThingHappened(name="elsewhere")
    finally:
        bus.stop()


def test_one_process_drains_at_a_time(empty_db: Database) -> None:
    """Several server workers share one outbox: while one drains, the others leave the rows to it
    instead of delivering them a second time."""
    other_process = Database(empty_db.url)  # its own lock file handle, as another process has
    bus = EventBus(empty_db)
    seen: list[object] = []
    bus.subscribe(ThingHappened.topic, "collector", lambda _s, env: seen.append(env.decode()))
    try:
        with empty_db.sessions() as session:
            emit(session, ThingHappened(name="a"))
            session.commit()
        with other_process.try_exclusive("outbox-drain") as mine:
            assert mine
            assert bus.drain() == 0 and seen == []
        assert bus.drain() == 1 and seen == [ThingHappened(name="a")]
    finally:
        other_process.dispose()


@pytest.mark.postgres
def test_the_drain_lock_holds_across_connections_on_postgresql(pg_url: str) -> None:
    first, second = Database(pg_url), Database(pg_url)
    try:
        with first.try_exclusive("outbox-drain") as mine:
            assert mine
            with second.try_exclusive("outbox-drain") as theirs:
                assert not theirs
        with second.try_exclusive("outbox-drain") as theirs:
            assert theirs
    finally:
        first.dispose()
        second.dispose()


def test_stop_drains_what_is_left(empty_db: Database) -> None:
    bus = EventBus(empty_db)
    seen: list[object] = []
    bus.subscribe(ThingHappened.topic, "collector", lambda _s, env: seen.append(env))
    bus.start(poll_s=60)
    with empty_db.sessions() as session:
        emit(session, ThingHappened(name="late"))
        session.commit()
    bus.stop()
    assert len(seen) == 1


def test_a_failing_subscriber_is_retried_with_backoff_not_on_every_commit(empty_db: Database) -> None:
    """While a subscriber keeps failing, commits do not make the drain reload the queue each time;
    once it recovers, every queued event goes out in order."""
    bus = EventBus(empty_db)
    empty_db.after_commit.append(bus.after_commit)
    attempts: list[str] = []
    seen: list[str] = []
    recovered = threading.Event()

    def flaky(_session: object, env: Envelope) -> None:
        name = env.decode().name  # type: ignore[attr-defined]
        attempts.append(name)
        if not recovered.is_set():
            raise RuntimeError("receiver down")
        seen.append(name)

    bus.subscribe(ThingHappened.topic, "flaky", flaky)
    bus.start(poll_s=0.05, max_backoff_s=0.4)
    try:
        for i in range(30):
            with empty_db.session() as session:
                emit(session, ThingHappened(name=f"e{i}"))
            time.sleep(0.01)
        assert bus.failing
        assert len(attempts) < 15, f"{len(attempts)} attempts for 30 commits: no backoff"
        recovered.set()
        deadline = time.monotonic() + 5
        while (len(seen) < 30 or bus.failing) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen == [f"e{i}" for i in range(30)]
        assert not bus.failing
    finally:
        bus.stop()


def test_a_batch_goes_to_a_subscriber_in_one_transaction_and_a_bad_event_keeps_its_place(
        empty_db: Database) -> None:
    """Queued events reach a subscriber in one write; when one fails, the ones before it go out, it
    and the rest wait for the next drain, and each is recorded as processed once."""
    bus = EventBus(empty_db)
    failures = {"bad": 2}  # fails in the batch and in the one-at-a-time retry, then recovers
    commits: list[object] = []

    def collect(_session: object, env: Envelope) -> None:
        name = env.decode().name  # type: ignore[attr-defined]
        if failures.get(name):
            failures[name] -= 1
            raise ValueError("cannot take this one yet")

    bus.subscribe(ThingHappened.topic, "collector", collect)
    with empty_db.session() as session:
        for name in ("a", "b", "c"):
            emit(session, ThingHappened(name=name))
    listen(empty_db.engine, "commit", commits.append)
    assert bus.drain() == 3
    assert len(commits) == 2  # the subscriber's batch, then the outbox rows marked
    with empty_db.session() as session:
        for name in ("d", "bad", "e"):
            emit(session, ThingHappened(name=name))
    assert bus.drain() == 1 and bus.failing  # d went out; bad and e wait in order
    assert bus.drain() == 2 and not bus.failing
    with empty_db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 6
        assert session.scalar(select(func.count()).where(OutboxEntry.published_at.is_(None))) == 0


def test_a_drain_asked_for_while_another_thread_drains_is_not_lost(empty_db: Database) -> None:
    """A commit whose drain finds another thread draining leaves its rows to that thread, which
    drains once more before it lets go, even when it had already looked for the last time."""
    bus = EventBus(empty_db)
    seen: list[object] = []
    bus.subscribe(ThingHappened.topic, "collector", lambda _s, env: seen.append(env.decode()))
    drain_rows = bus._drain_rows
    late: list[int] = []

    def and_meanwhile(limit: int) -> int:
        sent = drain_rows(limit)
        if not late:  # after the last look: another thread commits and asks for a drain
            def commit() -> None:
                with empty_db.sessions() as session:
                    emit(session, ThingHappened(name="late"))
                    session.commit()
                late.append(bus.drain())
            other = threading.Thread(target=commit)
            other.start()
            other.join()
        return sent

    bus._drain_rows = and_meanwhile  # type: ignore[method-assign]
    with empty_db.sessions() as session:
        emit(session, ThingHappened(name="first"))
        session.commit()
    assert bus.drain() == 2
    assert late == [0]  # the other thread left its row to the drain under way
    assert seen == [ThingHappened(name="first"), ThingHappened(name="late")]
