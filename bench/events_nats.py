"""The outbox drained and delivered end to end, in-process bus vs NATS JetStream, side by side in one
run, on SQLite.

For each transport: EVENTS events wait in the outbox (emitted beforehand, not timed); the drain
publishes them and a subscriber handles each through `deliver_all_once` (its processed mark is its
one write). Measured: drained/s (outbox rows published and marked), delivered/s (until the last
processed mark is committed), and the latency of a single event from the commit that emits it to
its subscriber running (p50/p99 over SINGLES events, one at a time, as a quiet server sees them).
In-process, draining is delivering; through NATS the consumer (a thread of the same process here)
pulls from a durable JetStream consumer while the drain still publishes.

Run: .venv/bin/python bench/events_nats.py [--events N] [--singles N] [--nats nats://127.0.0.1:4222]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import nats
from _common import save
from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from cityops import all_models
from cityops.core.db import Base, Database
from cityops.core.events import Envelope, Event, EventBus, ProcessedEvent, emit, emit_many, event_type
from cityops.core.events_nats import NatsTransport

ROOT = Path(__file__).resolve().parent.parent
SQLITE_FILE = ROOT / "var" / "bench" / "events_nats.db"
SUBSCRIBER = "bench.collector"


@event_type
@dataclasses.dataclass(frozen=True)
class BenchPinged(Event):
    topic = "bench.pinged"
    n: int
    note: str


def fresh_db() -> Database:
    SQLITE_FILE.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-outbox-drain"):
        SQLITE_FILE.with_name(SQLITE_FILE.name + suffix).unlink(missing_ok=True)
    all_models.load()
    db = Database(f"sqlite:///{SQLITE_FILE}")
    Base.metadata.create_all(db.engine)
    return db


def processed(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0


def wait_processed(db: Database, count: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while processed(db) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {processed(db)} of {count} events delivered")
        time.sleep(0.002)


def run_one(db: Database, bus: EventBus, events: int, singles: int) -> dict[str, Any]:
    delivered_at: dict[str, float] = {}
    done = threading.Event()

    def collect(_session: object, envelope: Envelope) -> None:
        delivered_at[envelope.event_id] = time.perf_counter()  # its processed mark commits right after
        if envelope.payload["note"] == "single":
            done.set()

    bus.subscribe(BenchPinged.topic, SUBSCRIBER, collect)
    bus.start(background=False)  # the consumers (NATS); the drain is called here
    try:
        note = "x" * 200  # about the size of a case event's payload
        with db.sessions() as session:
            for start in range(0, events, 1000):
                chunk = range(start, min(start + 1000, events))
                emit_many(session, [BenchPinged(n=i, note=note) for i in chunk])
            session.commit()
        started = time.perf_counter()
        drained = bus.drain(limit=500)
        drained_s = time.perf_counter() - started
        wait_processed(db, events)
        delivered_s = time.perf_counter() - started
        assert drained == events, f"drained {drained} of {events}"

        latencies = []
        db.after_commit.append(bus.after_commit)  # inline drain after each commit, as in a request
        for i in range(singles):
            done.clear()
            committed = time.perf_counter()
            with db.session() as session:
                event_id = emit(session, BenchPinged(n=i, note="single"))
            if not done.wait(10):
                raise SystemExit("a single event was not delivered")
            latencies.append((delivered_at[event_id] - committed) * 1000)
        db.after_commit.remove(bus.after_commit)
        wait_processed(db, events + singles)
    finally:
        bus.stop()
    latencies.sort()
    return {"events": events, "drained_per_s": round(events / drained_s, 1),
            "delivered_per_s": round(events / delivered_s, 1), "drain_s": round(drained_s, 3),
            "delivered_s": round(delivered_s, 3),
            "single_latency_ms": {"p50": round(statistics.median(latencies), 2),
                                  "p99": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 2)}}


def delete_stream(url: str, stream: str) -> None:
    async def main() -> None:
        nc = await nats.connect(url)
        try:
            await nc.jetstream().delete_stream(stream)
        except NotFoundError:
            pass
        finally:
            await nc.close()
    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--singles", type=int, default=200)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    args = parser.parse_args()

    db = fresh_db()
    try:
        in_process = run_one(db, EventBus(db), args.events, args.singles)
    finally:
        db.dispose()

    tag = uuid.uuid4().hex[:8]
    stream, prefix = f"BENCH_{tag}", f"bench_{tag}.events"
    db = fresh_db()
    bus = EventBus(db)
    bus.transport = NatsTransport(bus, args.nats, stream=stream, subject_prefix=prefix)
    try:
        through_nats = run_one(db, bus, args.events, args.singles)
    finally:
        db.dispose()
        delete_stream(args.nats, stream)

    for name, result in (("in-process", in_process), ("nats", through_nats)):
        latency = result["single_latency_ms"]
        print(f"{name:>10}: drained {result['drained_per_s']:>9,.0f}/s, "
              f"delivered {result['delivered_per_s']:>9,.0f}/s end to end, "
              f"single event p50 {latency['p50']} ms p99 {latency['p99']} ms", file=sys.stderr)
    save("events_nats", {
        "what": f"{args.events} queued outbox events drained and delivered to one subscriber (processed "
                f"mark in the same transaction), then {args.singles} single events one at a time "
                f"(emitting unit of work -> subscriber runs); SQLite; NATS JetStream on the same machine "
                f"(file storage)",
        "in_process": in_process,
        "nats_jetstream": through_nats,
        "nats_vs_in_process_delivered": round(
            through_nats["delivered_per_s"] / in_process["delivered_per_s"], 2),
    })


if __name__ == "__main__":
    main()
