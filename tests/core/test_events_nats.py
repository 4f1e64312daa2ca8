"""The outbox through NATS JetStream (the real server at 127.0.0.1:4222): events reach their
subscribers through durable consumers, processes share a consumer, a failing subscriber gets its event
again, a re-published event is stored once, and nothing is lost while NATS is away.

Each test has a stream and subject prefix of its own, deleted afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import nats
import pytest
from fastapi.testclient import TestClient
from nats.js.errors import NotFoundError
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from cityops.app import create_app
from cityops.cases import notify
from cityops.config import Settings
from cityops.core.db import Database
from cityops.core.events import Envelope, Event, EventBus, OutboxEntry, ProcessedEvent, emit, event_type
from cityops.core.events_nats import NatsTransport, durable_name
from tests.conftest import require_service
from tests.perception.test_alarms import alarms, send
from tests.perception.test_api import make_device

NATS_HOST, NATS_PORT = "127.0.0.1", 4222
NATS_URL = f"nats://{NATS_HOST}:{NATS_PORT}"


@event_type
@dataclasses.dataclass(frozen=True)
class ParcelSent(Event):
    topic = "test.parcel_sent"
    name: str


@dataclasses.dataclass(frozen=True)
class Names:
    stream: str
    prefix: str


def run(coro_factory: Callable[[Any], Any]) -> Any:
    """One call to the JetStream API on a connection of its own (the test's view of the server)."""
    async def main() -> Any:
        nc = await nats.connect(NATS_URL)
        try:
            return await coro_factory(nc.jetstream())
        finally:
            await nc.close()
    return asyncio.run(main())


@pytest.fixture
def names() -> Iterator[Names]:
    require_service("NATS", NATS_HOST, NATS_PORT)
    tag = uuid.uuid4().hex[:12]
    found = Names(stream=f"TEST_{tag}", prefix=f"test_{tag}.events")
    yield found

    async def delete(js: Any) -> None:
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(found.stream)
    run(delete)


@pytest.fixture
def effects(empty_db: Database) -> Database:
    """A table the subscribers write to: their effects, committed with their processed marks."""
    with empty_db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE effects (id INTEGER PRIMARY KEY, name TEXT, worker TEXT)"))
    return empty_db


def make_bus(db: Database, names: Names, *, url: str = NATS_URL, **options: Any) -> EventBus:
    bus = EventBus(db)
    bus.transport = NatsTransport(bus, url, stream=names.stream, subject_prefix=names.prefix,
                                  fetch_wait_s=0.2, retry_delay_s=0.1, connect_timeout_s=1,
                                  reconnect_wait_s=1, **options)
    return bus


def record(worker: str = "one", *, pause_s: float = 0.0) -> Callable[[Session, Envelope], None]:
    def handler(session: Session, envelope: Envelope) -> None:
        session.execute(text("INSERT INTO effects (name, worker) VALUES (:name, :worker)"),
                        {"name": envelope.payload["name"], "worker": worker})
        if pause_s:
            time.sleep(pause_s)
    return handler


def rows(db: Database, sql: str) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(text(sql)).all())


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def effect_count(db: Database) -> int:
    return int(rows(db, "SELECT count(*) FROM effects")[0][0])


def unpublished(db: Database) -> list[OutboxEntry]:
    with db.sessions() as session:
        return list(session.scalars(select(OutboxEntry).where(OutboxEntry.published_at.is_(None))))


def stream_messages(names: Names) -> int:
    async def info(js: Any) -> int:
        return int((await js.stream_info(names.stream)).state.messages)
    return int(run(info))


def test_an_emitted_event_reaches_its_subscriber_through_jetstream(effects: Database, names: Names) -> None:
    bus = make_bus(effects, names)
    effects.after_commit.append(bus.after_commit)
    bus.subscribe(ParcelSent.topic, "courier", record())
    bus.start(background=False)  # the consumers; the drain stays inline after each commit
    try:
        with effects.session() as session:
            event_id = emit(session, ParcelSent(name="a"))
        assert unpublished(effects) == []  # JetStream has it
        wait_until(lambda: effect_count(effects) == 1)
        assert rows(effects, "SELECT name FROM effects") == [("a",)]
        with effects.sessions() as session:
            assert session.scalars(select(ProcessedEvent.event_id).where(
                ProcessedEvent.subscriber == "courier")).all() == [event_id]
    finally:
        bus.stop()

    async def check(js: Any) -> tuple[Any, Any]:
        return (await js.stream_info(names.stream),
                await js.consumer_info(names.stream, durable_name("courier", ParcelSent.topic)))
    stream, consumer = run(check)
    assert stream.config.subjects == [f"{names.prefix}.>"] and stream.state.messages == 1
    assert stream.config.storage == "file" and stream.config.max_age == 7 * 86400
    assert consumer.config.filter_subject == f"{names.prefix}.{ParcelSent.topic}"
    assert consumer.num_ack_pending == 0 and consumer.ack_floor.stream_seq == 1


def test_two_processes_share_the_durable_consumer_and_handle_each_event_once(
        effects: Database, names: Names) -> None:
    other_db = Database(effects.url)  # its own engine and lock files, as another process has
    first, second = make_bus(effects, names, batch=1), make_bus(other_db, names, batch=1)
    first.subscribe(ParcelSent.topic, "courier", record("first", pause_s=0.02))
    second.subscribe(ParcelSent.topic, "courier", record("second", pause_s=0.02))
    first.start(background=False)
    second.start(background=False)
    try:
        with effects.sessions() as session:
            for i in range(40):
                emit(session, ParcelSent(name=f"p{i}"))
            session.commit()
        assert first.drain() == 40
        wait_until(lambda: effect_count(effects) == 40)
        time.sleep(0.3)  # a second delivery would show up by now
        found = rows(effects, "SELECT name, worker FROM effects")
        assert sorted(name for name, _ in found) == sorted(f"p{i}" for i in range(40))
        assert {worker for _, worker in found} == {"first", "second"}  # both pulled from it
        with effects.sessions() as session:
            assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 40
    finally:
        first.stop()
        second.stop()
        other_db.dispose()


def test_a_subscriber_that_fails_gets_the_event_again(effects: Database, names: Names) -> None:
    attempts: list[str] = []

    def flaky(session: Session, envelope: Envelope) -> None:
        record()(session, envelope)  # rolled back with the failure
        attempts.append(envelope.event_id)
        if len(attempts) <= 2:  # the batch, then the one-at-a-time retry of the same delivery
            raise ConnectionError("subscriber down")

    bus = make_bus(effects, names)
    effects.after_commit.append(bus.after_commit)
    bus.subscribe(ParcelSent.topic, "flaky", flaky)
    bus.start(background=False)
    try:
        with effects.session() as session:
            emit(session, ParcelSent(name="again"))
        assert unpublished(effects) == []  # published fine; the handling is what failed
        wait_until(lambda: effect_count(effects) == 1)
        assert len(attempts) == 3 and len(set(attempts)) == 1  # JetStream redelivered it
        time.sleep(0.3)
        assert rows(effects, "SELECT name FROM effects") == [("again",)]
    finally:
        bus.stop()

    async def consumer(js: Any) -> Any:
        return await js.consumer_info(names.stream, durable_name("flaky", ParcelSent.topic))
    info = run(consumer)
    assert info.num_redelivered == 0 and info.num_ack_pending == 0 and info.ack_floor.stream_seq == 1


def test_a_republished_event_is_stored_once(effects: Database, names: Names) -> None:
    """A crash between the publish and marking the row published: the next drain sends it again and
    JetStream keeps one copy (the event id is the message id)."""
    bus = make_bus(effects, names)
    handled: list[str] = []
    bus.subscribe(ParcelSent.topic, "courier", lambda _s, env: handled.append(env.event_id))
    bus.start(background=False)
    try:
        with effects.sessions() as session:
            event_id = emit(session, ParcelSent(name="twice"))
            session.commit()
            row = session.scalars(select(OutboxEntry)).one()
            bus.transport.publish(Envelope(row.event_id, row.topic, row.payload, row.created_at))
        assert bus.drain() == 1
        bus.transport.publish(Envelope(row.event_id, row.topic, row.payload, row.created_at))
        assert stream_messages(names) == 1
        wait_until(lambda: handled == [event_id])
        time.sleep(0.3)
        assert handled == [event_id]
    finally:
        bus.stop()


class Proxy:
    """Forwards a port to the real NATS: a NATS server that comes up later, where the app looks."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(5)

    async def _serve(self) -> None:
        self.server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(NATS_HOST, NATS_PORT)
        for source, target in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, target))
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                target.write(data)
                await target.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            target.close()

    def stop(self) -> None:
        async def shutdown() -> None:
            server, self.server = self.server, None
            assert server is not None
            server.close()
            await server.wait_closed()
            for task in list(self.pipes):
                task.cancel()
            await asyncio.gather(*self.pipes, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def test_while_nats_is_unreachable_events_wait_in_the_outbox(
        effects: Database, names: Names, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nothing listens on, yet
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    bus = make_bus(effects, names, url=f"nats://127.0.0.1:{port}")
    effects.after_commit.append(bus.after_commit)
    bus.subscribe(ParcelSent.topic, "courier", record())
    proxy = Proxy(port)
    with caplog.at_level(logging.ERROR, logger="cityops.core.events_nats"):
        started = time.monotonic()
        bus.start(poll_s=0.05, max_backoff_s=0.3)  # the server's way: drain thread and consumers
        assert time.monotonic() - started < 5  # start-up is not held up
    try:
        with effects.session() as session:  # the request that emits still succeeds
            for name in ("a", "b", "c"):
                emit(session, ParcelSent(name=name))
        wait_until(lambda: bool(unpublished(effects)) and unpublished(effects)[0].last_error is not None)
        time.sleep(0.5)  # several drains back off and retry
        waiting = unpublished(effects)  # the first one failed; the others keep their place behind it
        assert len(waiting) == 3 and "not available" in (waiting[0].last_error or "")
        assert bus.failing and effect_count(effects) == 0
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any(f"127.0.0.1:{port}" in message for message in errors)

        proxy.start()  # NATS is back: the client reconnects, the drain's retry publishes
        wait_until(lambda: effect_count(effects) == 3, timeout=20)
        assert unpublished(effects) == [] and not bus.failing
        assert sorted(r[0] for r in rows(effects, "SELECT name FROM effects")) == ["a", "b", "c"]

        proxy.stop()  # NATS goes away while connected, then comes back: the client reconnects
        with effects.session() as session:
            emit(session, ParcelSent(name="d"))
        wait_until(lambda: bool(unpublished(effects)) and unpublished(effects)[0].last_error is not None)
        assert effect_count(effects) == 3
        proxy.start()
        wait_until(lambda: effect_count(effects) == 4, timeout=20)
        assert unpublished(effects) == []
    finally:
        bus.stop()
        if proxy.server is not None:
            proxy.stop()


def test_an_alarm_posted_over_http_opens_its_case_through_jetstream(
        settings: Settings, db: Database, names: Names) -> None:
    """The app as configured in production: a device's reading over HTTP raises an alarm; the alarm's
    event goes through JetStream to the perception subscriber, which opens a case, whose own event
    goes through JetStream to the unit's notice."""
    configured = settings.model_copy(update={"nats_url": NATS_URL, "nats_stream": names.stream,
                                             "nats_subject_prefix": names.prefix})
    with db.sessions() as session:
        routed_before = session.scalar(select(func.count()).where(ProcessedEvent.subscriber == notify.ROUTED))
    with TestClient(create_app(configured, db=db)) as client:
        assert isinstance(client.app.state.bus.transport, NatsTransport)  # type: ignore[attr-defined]
        device = make_device(client, db, name="一村烟感-NATS")
        t = int(time.time() * 1000) - 60_000
        send(client, device["access_token"], (t, {"smoke": 0.05}), (t + 1000, {"smoke": 0.32}))
        wait_until(lambda: [a.case_id is not None for a in alarms(db, device["id"])] == [True])

        def routed() -> int:
            with db.sessions() as session:
                return int(session.scalar(select(func.count()).where(
                    ProcessedEvent.subscriber == notify.ROUTED)) or 0)
        wait_until(lambda: routed() == (routed_before or 0) + 1)
    assert unpublished(db) == []
    assert stream_messages(names) >= 2  # the alarm's event and the case's
