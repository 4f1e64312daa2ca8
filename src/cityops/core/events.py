"""Domain events through a transactional outbox.

A service calls `emit(session, event)`: the event is written to the `outbox` table in the same
transaction as the change it describes. After the commit, `EventBus.drain()` hands unpublished rows
to the transport and marks them published, so a rollback never publishes and a crash between commit
and delivery only delays it. Delivery is at-least-once; `deliver_once` makes subscribers idempotent by
recording (subscriber, event id) in the same transaction as the subscriber's own work.

The transport is an interface: `InProcessTransport` calls subscribers directly (the embedded
default); `cityops.core.events_nats.NatsTransport` publishes to a NATS JetStream stream and feeds each
subscriber from a durable consumer shared by every process (settings.nats_url), without touching
services or subscribers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol

from sqlalchemy import JSON, String, UniqueConstraint, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from cityops.core.db import Base, Database, table_of, utcnow

log = logging.getLogger(__name__)


class OutboxEntry(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    topic: Mapped[str] = mapped_column(String(120), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)


class ProcessedEvent(Base):
    """Which subscriber has already handled which event: the idempotency record."""

    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("subscriber", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber: Mapped[str] = mapped_column(String(120))
    event_id: Mapped[str] = mapped_column(String(36))
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclasses.dataclass(frozen=True)
class Event:
    """Base of all domain events: past-tense frozen dataclasses with a dotted `topic`."""

    topic: ClassVar[str] = "event"


_EVENT_TYPES: dict[str, type[Event]] = {}


def event_type(cls: type[Event]) -> type[Event]:
    """Class decorator registering an event class under its topic so envelopes can be decoded."""
    _EVENT_TYPES[cls.topic] = cls
    return cls


@dataclasses.dataclass(frozen=True)
class Envelope:
    event_id: str
    topic: str
    payload: dict[str, Any]
    created_at: datetime

    def decode(self) -> Event | dict[str, Any]:
        cls = _EVENT_TYPES.get(self.topic)
        return cls(**self.payload) if cls else self.payload


def emit_many(session: Session, events: Sequence[Event]) -> list[str]:
    """Write the events to the outbox in the caller's transaction, with one INSERT; their ids."""
    now = utcnow()
    rows = [{"event_id": str(uuid.uuid4()), "topic": event.topic, "created_at": now,
             "payload": json.loads(json.dumps(dataclasses.asdict(event), default=str))} for event in events]
    if rows:  # Core on the session's connection: no flush, none of the ORM's bulk bookkeeping
        session.connection().execute(insert(table_of(OutboxEntry)), rows)
    return [row["event_id"] for row in rows]


def emit(session: Session, event: Event) -> str:
    """Write the event to the outbox in the caller's transaction; returns the event id."""
    return emit_many(session, [event])[0]


Handler = Callable[[Session, Envelope], None]


class Transport(Protocol):
    def publish(self, envelope: Envelope) -> None: ...

    def publish_batch(self, envelopes: Sequence[Envelope]) -> None:
        """Publish every envelope, or raise (the drain then retries them one at a time)."""

    def start(self) -> None:
        """Begin delivering to the bus's subscribers, if delivery is not part of publishing."""

    def stop(self) -> None:
        """Stop delivering and release connections; publishing may start it again."""


class InProcessTransport:
    """Delivers each envelope to the subscribers registered on the bus, in this process."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def publish(self, envelope: Envelope) -> None:
        for name, handler in self.bus.subscribers.get(envelope.topic, []):
            deliver_once(self.bus.db, name, handler, envelope)

    def publish_batch(self, envelopes: Sequence[Envelope]) -> None:
        by_topic: dict[str, list[Envelope]] = defaultdict(list)
        for envelope in envelopes:
            by_topic[envelope.topic].append(envelope)
        for topic, batch in by_topic.items():
            for name, handler in self.bus.subscribers.get(topic, []):
                deliver_all_once(self.bus.db, name, handler, batch)

    def start(self) -> None:  # publishing is delivering
        pass

    def stop(self) -> None:
        pass


def deliver_all_once(db: Database, subscriber: str, handler: Handler, envelopes: Sequence[Envelope]) -> None:
    """Run handler for each envelope the subscriber has not processed, all in one transaction (one
    write instead of one per event); any failure rolls the whole batch back and raises."""
    with db.sessions() as session:
        ids = [e.event_id for e in envelopes]
        seen = set(session.scalars(select(ProcessedEvent.event_id).where(
            ProcessedEvent.subscriber == subscriber, ProcessedEvent.event_id.in_(ids))))
        todo = [e for e in envelopes if e.event_id not in seen]
        for envelope in todo:
            handler(session, envelope)
        if todo:
            session.execute(insert(ProcessedEvent), [{"subscriber": subscriber, "event_id": e.event_id,
                                                      "processed_at": utcnow()} for e in todo])
        session.commit()


def deliver_once(db: Database, subscriber: str, handler: Handler, envelope: Envelope) -> bool:
    """Run handler in its own transaction unless this subscriber already processed the event."""
    with db.sessions() as session:
        seen = session.scalar(
            select(ProcessedEvent.id).where(
                ProcessedEvent.subscriber == subscriber, ProcessedEvent.event_id == envelope.event_id
            )
        )
        if seen is not None:
            return False
        handler(session, envelope)
        session.add(ProcessedEvent(subscriber=subscriber, event_id=envelope.event_id))
        try:
            session.commit()
        except IntegrityError:  # a concurrent worker got there first
            session.rollback()
            return False
    return True


class EventBus:
    """Subscribers by topic and the drain that feeds them from the outbox.

    Inline mode (CLI, tests) drains right after each commit. A server calls `start()`: commits only
    wake a background thread that drains in batches, so a request never pays for a second write
    transaction, and a periodic poll picks up rows other processes committed."""

    def __init__(self, db: Database, transport: Transport | None = None) -> None:
        self.db = db
        self.subscribers: dict[str, list[tuple[str, Handler]]] = defaultdict(list)
        self.transport: Transport = transport or InProcessTransport(self)
        self._lock = threading.Lock()
        self._again = False  # a drain was asked for while another thread held the lock
        self._wake = threading.Event()
        self._stop = threading.Event()
        # True while the last drain stopped at an event a subscriber could not take.
        self.failing = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def subscribe(self, topic: str, name: str, handler: Handler) -> None:
        if any(existing == name for existing, _ in self.subscribers[topic]):
            raise ValueError(f"subscriber {name!r} already registered on {topic!r}")
        self.subscribers[topic].append((name, handler))

    def after_commit(self) -> None:
        if self._thread is not None:
            self._wake.set()
        else:
            self.drain()

    def start(self, *, poll_s: float = 1.0, max_backoff_s: float = 60.0, background: bool = True) -> None:
        """Start the transport's delivery (a broker's consumers) and, with `background`, the drain
        thread; without it the drain stays inline after each commit."""
        self.transport.start()
        if not background:
            return

        def run() -> None:
            backoff = 0.0
            while not self._stopping:
                if backoff:
                    # A failing subscriber keeps its rows queued; retry later rather than reload them
                    # on every commit.
                    self._stop.wait(backoff)
                else:
                    self._wake.wait(poll_s)
                self._wake.clear()
                try:
                    self.drain()
                    failing = self.failing
                except Exception:  # the thread must outlive a database hiccup; rows stay queued
                    log.exception("draining the outbox failed")
                    failing = True
                backoff = min(max(backoff * 2, poll_s), max_backoff_s) if failing else 0.0

        self._stopping = False
        self._stop.clear()
        self._thread = threading.Thread(target=run, name="outbox-drain", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread after a last drain, so nothing committed waits for a restart;
        then the transport's delivery."""
        if self._thread is not None:
            self._stopping = True
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=10)
            self._thread = None
            self.drain()
        self.transport.stop()

    def drain(self, *, limit: int = 200) -> int:
        """Publish committed, unpublished outbox rows in order; returns how many went out."""
        sent = 0
        self._again = True
        while self._again:
            if not self._lock.acquire(blocking=False):
                # Another thread is draining: it drains once more after this call's `_again`, so
                # rows committed after its last look are not left for the next commit or poll.
                return sent
            try:
                self._again = False
                with self.db.try_exclusive("outbox-drain") as mine:
                    if not mine:  # another process is draining (several server workers); it will
                        return sent  # pick these rows up, or the next poll will
                    sent += self._drain_rows(limit)
                if self.failing:  # retried later (backoff), not once per concurrent commit
                    return sent
            finally:
                self._lock.release()
        return sent

    def _drain_rows(self, limit: int) -> int:
        """Publish batches until none is left or an event fails (see drain)."""
        sent = 0
        while True:
            with self.db.sessions() as session:
                rows = session.scalars(
                    select(OutboxEntry)
                    .where(OutboxEntry.published_at.is_(None))
                    .order_by(OutboxEntry.id)
                    .limit(limit)
                ).all()
                if not rows:
                    self.failing = False
                    return sent
                failed = False
                envelopes = [Envelope(r.event_id, r.topic, r.payload, r.created_at) for r in rows]
                try:
                    self.transport.publish_batch(envelopes)
                    published = len(rows)
                except Exception:  # find the event that fails, delivering one at a time
                    published = 0
                now = utcnow()
                for row in rows[:published]:
                    row.attempts += 1
                    row.published_at = now
                sent += published
                for row, envelope in zip(rows[published:], envelopes[published:], strict=True):
                    row.attempts += 1
                    try:
                        self.transport.publish(envelope)
                    except Exception as exc:  # keep the row for a retry, never lose it
                        log.exception("event %s on %s failed", row.event_id, row.topic)
                        row.last_error = str(exc)[:500]
                        failed = True
                        break
                    row.published_at = utcnow()
                    sent += 1
                # One commit per batch: what went out is marked, the failed row keeps its place.
                session.commit()
                self.failing = failed
                if failed:
                    return sent
