"""Group commit: the small writes of many concurrent requests in one transaction.

A request that only adds records (a case report; later, telemetry) hands its item to a GroupCommit
and awaits the answer. One thread per process takes everything submitted while the previous batch
was being written, runs the batch's `write` in one session and commits once: on SQLite one writer
turn and one WAL append for the whole batch instead of one each, on PostgreSQL one lock of a counter
row and one fsync. A request then costs its own rows, not a transaction.

Each submitter gets its own answer or its own error. `write` answers a CityopsError for an item it
refuses (bad input); should the batch fail as a whole (a constraint, a lost connection), it is rolled
back and written again one item at a time, so one item's failure never takes the others with it and
nothing that was answered as written is lost. The thread ends after a few idle seconds and starts
again with the next item, so nothing has to stop it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from cityops.core.db import Database
from cityops.core.errors import CityopsError

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Written = TypeVar("Written")
Answer = TypeVar("Answer")
IDLE_EXIT_S = 5.0


@dataclass
class _Waiting(Generic[Item, Answer]):
    item: Item
    future: asyncio.Future[Answer]
    loop: asyncio.AbstractEventLoop


def _settle(waiting: _Waiting[Item, Answer], outcome: Answer | BaseException) -> None:
    def settle() -> None:
        if waiting.future.done():  # the client went away; what was written stays written
            return
        if isinstance(outcome, BaseException):
            waiting.future.set_exception(outcome)
        else:
            waiting.future.set_result(outcome)

    waiting.loop.call_soon_threadsafe(settle)


class GroupCommit(Generic[Item, Written, Answer]):
    """`write(session, items)` adds the items' records (flush, no commit) and returns, per item, what
    it wrote or the CityopsError refusing it; after the commit `answer(session, item, written)` turns
    each into the submitter's answer, in the same session (outside the write lock)."""

    def __init__(self, db: Database, *, name: str,
                 write: Callable[[Session, Sequence[Item]], Sequence[Written | CityopsError]],
                 answer: Callable[[Session, Item, Written], Answer], max_batch: int = 256) -> None:
        self.db = db
        self.name = name
        self.write = write
        self.answer = answer
        self.max_batch = max_batch
        self._queue: list[_Waiting[Item, Answer]] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self.batches = 0  # how many transactions have been committed (tests and benchmarks read it)

    async def submit(self, item: Item) -> Answer:
        """Queue the item and wait for its answer (or its error)."""
        loop = asyncio.get_running_loop()
        waiting: _Waiting[Item, Answer] = _Waiting(item, loop.create_future(), loop)
        with self._ready:
            self._queue.append(waiting)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"group-commit-{self.name}",
                                                daemon=True)
                self._thread.start()
            self._ready.notify()
        return await waiting.future

    def _take(self) -> list[_Waiting[Item, Answer]]:
        with self._ready:
            if not self._queue:
                self._ready.wait(IDLE_EXIT_S)
            if not self._queue:
                self._thread = None  # a later submit starts a new thread
                return []
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            return batch

    def _run(self) -> None:
        while batch := self._take():
            try:
                self._write_batch(batch)
            except Exception:  # the batch as a whole failed: write each item on its own
                log.exception("group commit %s: a batch of %d failed; writing them one by one",
                              self.name, len(batch))
                for waiting in batch:
                    try:
                        self._write_batch([waiting])
                    except Exception as exc:
                        log.exception("group commit %s: an item failed", self.name)
                        _settle(waiting, exc)

    def _write_batch(self, batch: list[_Waiting[Item, Answer]]) -> None:
        with self.db.sessions() as session:
            outcomes = self.write(session, [w.item for w in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{self.name}: write answered {len(outcomes)} of {len(batch)} items")
            session.commit()
            self.batches += 1
            for hook in self.db.after_commit:  # e.g. wake the outbox drain
                try:
                    hook()
                except Exception:  # committed: never write the batch again for a hook's failure
                    log.exception("group commit %s: an after-commit hook failed", self.name)
            for waiting, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, CityopsError):
                    _settle(waiting, outcome)
                    continue
                try:
                    _settle(waiting, self.answer(session, waiting.item, outcome))
                except Exception as exc:  # written and committed; only the answer failed
                    log.exception("group commit %s: answering an item failed", self.name)
                    _settle(waiting, exc)
