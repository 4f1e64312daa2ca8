"""NATS JetStream as the outbox's transport, when settings.nats_url is set (production).

Publishing: the drain publishes each envelope to `<prefix>.<topic>` in one stream (created if
missing: file storage, kept MAX_AGE_S), with the event id as `Nats-Msg-Id`, so JetStream stores an
event once even when a crash between the publish and marking the row published makes the drain send
it again (within DUPLICATE_WINDOW_S; the subscribers' processed marks catch anything later). A batch
returns once JetStream has acknowledged every message and raises otherwise: the rows stay in the
outbox and the drain retries them.

Consuming: each subscriber (name, topic) has a durable pull consumer filtered on its topic's subject.
Every process that starts the bus pulls from it, so the processes share the work and each event is
handled once. A batch runs through `deliver_all_once` (falling back to `deliver_once` per event), so
the subscriber's effects and its processed marks commit together, and only then are the messages
acknowledged. A failing event is negatively acknowledged with a growing delay and comes back later;
it does not hold up the events behind it (unlike the in-process bus, order within a topic is
best-effort under failures). Nothing is dropped: no delivery limit, and an unacknowledged message
comes back after ACK_WAIT_S (a process that died mid-batch).

NATS unreachable: the error is logged, publishing raises at once (the rows stay in the outbox and
the drain backs off as for a failing subscriber) and the client keeps trying to connect; delivery
resumes when NATS is back.

nats-py is asyncio: one event loop runs in a thread of its own, holding the connection and the
consumer loops; handlers run in worker threads, so a slow transaction never stalls the connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

from cityops.core.events import Envelope, EventBus, Handler, deliver_all_once, deliver_once

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_STREAM = "CITYOPS_EVENTS"
DEFAULT_SUBJECT_PREFIX = "cityops.events"
# A subscriber down (or failing) for longer than this misses the events that expired; a week covers a
# long holiday outage and keeps the stream's disk bounded.
MAX_AGE_S = 7 * 86400.0
DUPLICATE_WINDOW_S = 300.0
ACK_WAIT_S = 60.0  # a batch's handling must fit; a crashed process's batch comes back after it
LOG_EVERY_S = 60.0  # a NATS outage is reported once, then at most this often


def durable_name(subscriber: str, topic: str) -> str:
    """The durable consumer of a subscriber on a topic (consumer names take no dots or wildcards)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{subscriber}--{topic}")


def encode(envelope: Envelope) -> bytes:
    return orjson.dumps({"event_id": envelope.event_id, "topic": envelope.topic,
                         "payload": envelope.payload, "created_at": envelope.created_at})


def decode(data: bytes) -> Envelope:
    body = orjson.loads(data)
    created_at = datetime.fromisoformat(body["created_at"])
    return Envelope(body["event_id"], body["topic"], body["payload"], created_at)


class NatsTransport:
    """Publishes the outbox to a JetStream stream; feeds the bus's subscribers from durable consumers."""

    def __init__(self, bus: EventBus, url: str, *, stream: str = DEFAULT_STREAM,
                 subject_prefix: str = DEFAULT_SUBJECT_PREFIX, max_age_s: float = MAX_AGE_S,
                 batch: int = 500, fetch_wait_s: float = 1.0, ack_wait_s: float = ACK_WAIT_S,
                 retry_delay_s: float = 1.0, max_retry_delay_s: float = 60.0,
                 connect_timeout_s: int = 2, reconnect_wait_s: int = 2, publish_timeout_s: float = 10.0,
                 handler_threads: int = 4) -> None:
        self.bus = bus
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.max_age_s = max_age_s
        self.batch = batch
        self.fetch_wait_s = fetch_wait_s
        self.ack_wait_s = ack_wait_s
        self.retry_delay_s = retry_delay_s
        self.max_retry_delay_s = max_retry_delay_s
        self.connect_timeout_s = connect_timeout_s
        self.reconnect_wait_s = reconnect_wait_s
        self.publish_timeout_s = publish_timeout_s
        self.handler_threads = handler_threads
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        # The rest lives in the loop's thread.
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._consumers: dict[str, asyncio.Task[None]] = {}
        self._tried = asyncio.Event()  # replaced in the loop; the first connection attempt is over
        self._consuming = False
        self._stopping = False
        self._last_error = ""
        self._logged_at = 0.0

    def subject(self, topic: str) -> str:
        return f"{self.subject_prefix}.{topic}"

    # -- the Transport interface, called from any thread but the loop's --------------------------------

    def publish(self, envelope: Envelope) -> None:
        self.publish_batch([envelope])

    def publish_batch(self, envelopes: Sequence[Envelope]) -> None:
        if envelopes:
            self._call(lambda: self._publish(envelopes),
                       timeout=self.publish_timeout_s + self.connect_timeout_s + 5)

    def start(self) -> None:
        """Start a consumer per subscriber; waits for the first connection attempt (an unreachable
        NATS is logged, not raised: the consumers start once it is back)."""
        self._call(self._start_consuming, timeout=self.connect_timeout_s + 10)

    def stop(self) -> None:
        """Let the consumers finish their batch, flush the acknowledgements, close the connection and
        the loop. Publishing afterwards connects again."""
        with self._guard:
            loop, thread, executor = self._loop, self._thread, self._executor
        if loop is None or thread is None:
            return
        closed = False
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(
                timeout=self.fetch_wait_s + self.ack_wait_s + 10)
            closed = True
        except Exception:
            log.exception("closing the NATS connection failed")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if executor is not None:  # its handlers are done, unless closing failed (a handler hangs)
            executor.shutdown(wait=closed)
        with self._guard:
            self._loop = self._thread = self._executor = None

    # -- the loop's thread --------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._guard:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=self._run_loop, args=(loop,), name="nats-events",
                                          daemon=True)
                thread.start()
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self.handler_threads, thread_name_prefix="nats-subscriber")
                asyncio.run_coroutine_threadsafe(self._open(), loop).result(timeout=10)
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]], *, timeout: float) -> T:
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("a blocking NATS call from the NATS loop's own thread")
        future = asyncio.run_coroutine_threadsafe(make(), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"NATS at {self.url} did not answer within {timeout:g} s") from None

    async def _open(self) -> None:
        self._stopping = False
        self._tried = asyncio.Event()
        self._js = None
        self._consumers = {}
        self._nc = NatsClient()
        self._supervisor = asyncio.create_task(self._supervise(self._nc))

    async def _supervise(self, nc: NatsClient) -> None:
        """Connect (retrying forever, as the client also reconnects forever once connected), then make
        sure of the stream and every subscriber's consumer before this process publishes anything, so
        no event it publishes precedes the consumer that should get it."""
        try:
            await nc.connect(self.url, name="cityops", connect_timeout=self.connect_timeout_s,
                             reconnect_time_wait=self.reconnect_wait_s, max_reconnect_attempts=-1,
                             error_cb=self._on_error, disconnected_cb=self._on_disconnected,
                             reconnected_cb=self._on_reconnected)
        except Exception as exc:  # what the client does not retry (a malformed URL): no retry helps
            self._report(f"cannot connect to NATS at {self.url}: {exc!r}")
            return
        log.info("connected to NATS at %s (stream %s)", self.url, self.stream)
        delay = self.retry_delay_s
        while not self._stopping:
            js = nc.jetstream(timeout=self.publish_timeout_s)
            try:
                await self._ensure_stream(js)
                for topic, subscribers in list(self.bus.subscribers.items()):
                    for name, _handler in subscribers:
                        await self._ensure_consumer(js, topic, name)
            except Exception as exc:
                self._report(f"setting up JetStream stream {self.stream} at {self.url} failed: {exc!r}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay_s)
                continue
            self._js = js
            self._tried.set()
            if self._consuming:
                self._spawn_consumers()
            return

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        try:
            await js.stream_info(self.stream)
            return
        except NotFoundError:
            pass
        config = api.StreamConfig(
            name=self.stream, subjects=[f"{self.subject_prefix}.>"], storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS, discard=api.DiscardPolicy.OLD, max_age=self.max_age_s,
            duplicate_window=DUPLICATE_WINDOW_S, description="cityops domain events (the outbox, published)")
        try:
            await js.add_stream(config)
        except APIError:  # another process created it meanwhile; anything else shows up here
            await js.stream_info(self.stream)

    async def _ensure_consumer(self, js: JetStreamContext, topic: str, name: str) -> str:
        durable = durable_name(name, topic)
        try:
            await js.consumer_info(self.stream, durable)
            return durable
        except NotFoundError:
            pass
        # NEW: a subscriber added later starts from its creation, as on the in-process bus; the
        # consumers exist before this process publishes (see _supervise). No delivery limit: an
        # event is never dropped.
        config = api.ConsumerConfig(
            durable_name=durable, description=f"cityops subscriber {name} of {topic}",
            filter_subject=self.subject(topic), deliver_policy=api.DeliverPolicy.NEW,
            ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.ack_wait_s, max_deliver=-1,
            max_ack_pending=self.batch * 10)  # a batch in hand for each of several processes
        try:
            await js.add_consumer(self.stream, config)
        except APIError:  # created by another process meanwhile
            await js.consumer_info(self.stream, durable)
        return durable

    async def _start_consuming(self) -> None:
        self._consuming = True
        if self._js is not None:
            self._spawn_consumers()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tried.wait(), self.connect_timeout_s + 1)

    def _spawn_consumers(self) -> None:
        for topic, subscribers in list(self.bus.subscribers.items()):
            for name, handler in subscribers:
                durable = durable_name(name, topic)
                if durable not in self._consumers:
                    self._consumers[durable] = asyncio.create_task(
                        self._consume(topic, name, handler), name=f"nats-consumer-{durable}")

    async def _consume(self, topic: str, name: str, handler: Handler) -> None:
        durable = durable_name(name, topic)
        sub: JetStreamContext.PullSubscription | None = None
        delay = self.retry_delay_s
        while not self._stopping:
            try:
                js = self._js
                assert js is not None
                if sub is None:
                    await self._ensure_consumer(js, topic, name)  # deleted behind our back: recreate
                    sub = await js.pull_subscribe_bind(durable=durable, stream=self.stream)
                try:  # wait for the next event; then take those already waiting behind it
                    msgs = await sub.fetch(1, timeout=self.fetch_wait_s)
                except TimeoutError:
                    continue
                waiting = min(self.batch - 1, msgs[-1].metadata.num_pending or 0)
                if waiting:
                    with contextlib.suppress(TimeoutError):  # another process may have taken them
                        msgs += await sub.fetch(waiting, timeout=0.05)
                await self._deliver(name, handler, msgs)
                delay = self.retry_delay_s
            except Exception as exc:
                self._report(f"consumer {durable} on {self.stream}: {exc!r}")
                if sub is not None:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                    sub = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay_s)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _deliver(self, name: str, handler: Handler, msgs: list[Msg]) -> None:
        taken: list[tuple[Msg, Envelope]] = []
        for msg in msgs:
            try:
                taken.append((msg, decode(msg.data)))
            except (ValueError, KeyError, TypeError):
                log.error("undecodable message %r on %s dropped", msg.data[:200], msg.subject)
                await msg.term()  # no retry can ever decode it
        loop = asyncio.get_running_loop()
        outcomes = await loop.run_in_executor(self._executor, self._handle, name, handler,
                                              [envelope for _msg, envelope in taken])
        for (msg, _envelope), ok in zip(taken, outcomes, strict=True):
            if ok:
                await msg.ack()
            else:
                tries = msg.metadata.num_delivered or 1
                await msg.nak(delay=min(self.retry_delay_s * 2 ** (tries - 1), self.max_retry_delay_s))
        if any(outcomes):  # what the handlers emitted goes out now, not at the next poll
            await loop.run_in_executor(self._executor, self._after_commit, name)

    def _handle(self, name: str, handler: Handler, envelopes: list[Envelope]) -> list[bool]:
        """In a worker thread: the batch in one transaction, or, when it fails, one event at a time
        to find the ones that fail. Whether each went through."""
        db = self.bus.db
        try:
            deliver_all_once(db, name, handler, envelopes)
            outcomes = [True] * len(envelopes)
        except Exception:
            outcomes = []
            for envelope in envelopes:
                try:
                    deliver_once(db, name, handler, envelope)
                    outcomes.append(True)
                except Exception:
                    log.exception("subscriber %s failed on event %s (%s); it is retried later", name,
                                  envelope.event_id, envelope.topic)
                    outcomes.append(False)
        return outcomes

    def _after_commit(self, name: str) -> None:
        try:
            self.bus.after_commit()
        except Exception:
            log.exception("draining the outbox after subscriber %s failed", name)

    async def _publish(self, envelopes: Sequence[Envelope]) -> list[api.PubAck]:
        js = self._js
        if js is None:  # the first attempt to connect may still be under way: wait for it only
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tried.wait(), self.connect_timeout_s + 1)
            js = self._js
        if js is None or self._nc is None or not self._nc.is_connected:
            raise ConnectionError(f"NATS JetStream at {self.url} is not available; the events wait in "
                                  f"the outbox ({self._last_error or 'connecting'})")
        futures: list[asyncio.Future[api.PubAck]] = []
        try:
            for envelope in envelopes:
                futures.append(await js.publish_async(
                    self.subject(envelope.topic), encode(envelope), stream=self.stream,
                    headers={"Nats-Msg-Id": envelope.event_id}))
            return list(await asyncio.wait_for(asyncio.gather(*futures), self.publish_timeout_s))
        except NoStreamResponseError:
            with contextlib.suppress(Exception):  # the stream was lost (a new server): the retry finds it
                await self._ensure_stream(js)
            raise
        finally:
            for future in futures:
                future.cancel()  # a no-op once acknowledged; frees the client's slot otherwise

    async def _close(self) -> None:
        self._stopping = True
        self._consuming = False  # a publish after stop connects again, without consumers
        tasks = list(self._consumers.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self.fetch_wait_s + self.ack_wait_s)
            for task in pending:
                task.cancel()
        supervisor = self._supervisor
        if supervisor is not None and not supervisor.done():  # still trying to connect
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await supervisor
        nc = self._nc
        if nc is not None and not nc.is_closed:
            if nc.is_connected:
                with contextlib.suppress(Exception):
                    await nc.flush(timeout=5)  # the last acknowledgements reach the server
            with contextlib.suppress(Exception):
                await nc.close()
        self._js = None
        self._consumers = {}

    # -- connection callbacks -------------------------------------------------------------------------

    def _report(self, message: str) -> None:
        """Log an outage once, then at most every LOG_EVERY_S, not on every retry."""
        self._tried.set()
        now = time.monotonic()
        if message != self._last_error or now - self._logged_at >= LOG_EVERY_S:
            log.error("%s; events stay in the outbox", message)
            self._logged_at = now
        self._last_error = message

    async def _on_error(self, exc: Exception) -> None:
        if not self._stopping:
            self._report(f"NATS at {self.url}: {exc!r}")

    async def _on_disconnected(self) -> None:
        if not self._stopping:
            log.warning("disconnected from NATS at %s; reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        self._last_error = ""
        log.info("reconnected to NATS at %s", self.url)
