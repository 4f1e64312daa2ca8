"""FastAPI dependencies shared by every router. They read app.state, so tests swap them by building
an app with other settings rather than by patching modules.

The request is the unit of work, and it commits in the thread that ran the endpoint: every router is
built with `route_class=UnitOfWorkRoute`. FastAPI runs a sync dependency's set-up and tear-down as
separate thread-pool calls, so a commit in the session dependency's tear-down would wait for a free
pool thread while the transaction holds the database's write lock; with more requests in flight than
pool threads, the threads all wait for that lock and the commit never gets a thread.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from cityops.config import Settings
from cityops.core.db import Database


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for the request. UnitOfWorkRoute commits it when the endpoint returns; the commit
    here only finishes what a dependency began when the endpoint never ran (no I/O otherwise).
    Dependencies read through the session but never write: a write there would hold the lock
    across thread-pool calls."""
    db: Database = request.app.state.db
    with db.session() as session:
        yield session


def _commit_in_endpoint_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(endpoint):
        return endpoint  # async endpoints do their database work through run_in_threadpool

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        sessions = [value for value in kwargs.values() if isinstance(value, Session)]
        try:
            result = endpoint(*args, **kwargs)
            for session in sessions:
                session.commit()
        except BaseException:
            for session in sessions:
                session.rollback()
            raise
        return result

    return run


class UnitOfWorkRoute(APIRoute):
    """A route whose endpoint commits its request session in its own thread (see the module doc)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _commit_in_endpoint_thread(endpoint), **kwargs)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# scope="function": closed before the response is sent, so a failed commit is never answered 200 and
# a redirect after a write never arrives before the write is visible.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
