"""FastAPI dependencies shared by every router. They read app.state, so tests swap them by building
an app with other settings rather than by patching modules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from cityops.config import Settings
from cityops.core.db import Database


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_session(request: Request) -> Iterator[Session]:
    """The request is the unit of work: commit when the handler returns, roll back on error."""
    db: Database = request.app.state.db
    with db.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# scope="function": commit before the response is sent, so a failed commit is never answered 200 and a
# redirect after a write never arrives before the write is visible.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
