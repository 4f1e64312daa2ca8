"""Long polls that hold neither a database connection nor a thread while they wait.

A waiting request asks the database in short transactions on the thread pool and sleeps on the event
loop in between. It sleeps at most `every_s`, since what it waits for may be written by another
process; a write made in this process wakes it at once through `Wakeups.notify`, called after the
write has committed."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

T = TypeVar("T")
_CREATE = threading.Lock()


class Wakeups:
    """Waiters by key (e.g. "device:12"); `notify` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def notify(self, key: str) -> None:
        with self._lock:
            waiting = list(self._waiting.get(key, ()))
        for loop, event in waiting:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits any more
                loop.call_soon_threadsafe(event.set)

    @contextlib.contextmanager
    def listen(self, key: str) -> Iterator[asyncio.Event]:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.setdefault(key, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                waiting = self._waiting.get(key)
                if waiting is not None:
                    waiting.discard(entry)
                    if not waiting:
                        del self._waiting[key]


def wakeups(state: Any) -> Wakeups:
    """The app's Wakeups (on its state, created on first use)."""
    with _CREATE:
        found: Wakeups | None = getattr(state, "wakeups", None)
        if found is None:
            found = state.wakeups = Wakeups()
        return found


async def long_poll(request: Request, key: str, attempt: Callable[[], T | None], *, wait_s: float,
                    every_s: float) -> T | None:
    """Call `attempt` (on the thread pool) until it returns something, for up to `wait_s`; woken
    early by a notify on `key`. None when the time is up or the client has gone (before another
    attempt, which may take something on the client's behalf)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    with wakeups(request.app.state).listen(key) as woken:
        while True:
            woken.clear()  # before asking: a notify during the attempt is not missed
            found = await run_in_threadpool(attempt)
            left = deadline - loop.time()
            if found is not None or left <= 0:
                return found
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(every_s, left))
            if await request.is_disconnected():
                return None
