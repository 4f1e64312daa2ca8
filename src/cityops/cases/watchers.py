"""Watchers: people who asked to be told when a case moves (see cases/notify.py for the notices)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityops.cases import service
from cityops.cases.models import CaseWatcher
from cityops.core.auth.models import User


def watch(session: Session, *, viewer: User, case_id: int) -> bool:
    """Watch a case in the viewer's scope; watching twice is harmless. True when newly watching."""
    service.visible_case(session, viewer=viewer, case_id=case_id)
    if is_watching(session, user_id=viewer.id, case_id=case_id):
        return False
    try:
        with session.begin_nested():
            session.add(CaseWatcher(case_id=case_id, user_id=viewer.id))
    except IntegrityError:  # the same person, twice at once
        return False
    return True


def unwatch(session: Session, *, viewer: User, case_id: int) -> bool:
    """Stop watching; True when the viewer was watching."""
    service.visible_case(session, viewer=viewer, case_id=case_id)
    result = session.execute(
        delete(CaseWatcher).where(CaseWatcher.case_id == case_id, CaseWatcher.user_id == viewer.id)
    )
    return bool(getattr(result, "rowcount", 0))


def is_watching(session: Session, *, user_id: int, case_id: int) -> bool:
    return (
        session.scalar(
            select(CaseWatcher.id).where(CaseWatcher.case_id == case_id, CaseWatcher.user_id == user_id)
        )
        is not None
    )


def watcher_ids(session: Session, case_id: int) -> list[int]:
    return list(session.scalars(select(CaseWatcher.user_id).where(CaseWatcher.case_id == case_id)))
