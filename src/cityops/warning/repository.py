"""Queries of the warning package."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from cityops.warning.models import HazardWarning, WarningMessage


def get(session: Session, warning_id: int) -> HazardWarning | None:
    return session.get(HazardWarning, warning_id)


def message(session: Session, sender: str, identifier: str) -> WarningMessage | None:
    return session.scalar(
        select(WarningMessage).where(WarningMessage.sender == sender, WarningMessage.identifier == identifier)
    )


def messages_of(session: Session, warning_ids: Sequence[int]) -> dict[int, list[WarningMessage]]:
    """Each warning's messages, oldest first."""
    found: dict[int, list[WarningMessage]] = {i: [] for i in warning_ids}
    if not warning_ids:
        return found
    for row in session.scalars(
        select(WarningMessage)
        .where(WarningMessage.warning_id.in_(warning_ids))
        .order_by(WarningMessage.warning_id, WarningMessage.id)
    ):
        found[row.warning_id].append(row)
    return found


def latest_message(session: Session, warning_id: int) -> WarningMessage | None:
    return session.scalar(
        select(WarningMessage)
        .where(WarningMessage.warning_id == warning_id)
        .order_by(WarningMessage.id.desc())
        .limit(1)
    )


def warning_referenced(session: Session, references: Iterable[tuple[str, str]]) -> HazardWarning | None:
    """The warning one of the (sender, identifier) pairs names a message of (the newest such)."""
    pairs = list(references)
    if not pairs:
        return None
    return session.scalar(
        select(HazardWarning)
        .join(WarningMessage, WarningMessage.warning_id == HazardWarning.id)
        .where(tuple_(WarningMessage.sender, WarningMessage.identifier).in_(pairs))
        .order_by(WarningMessage.id.desc())
        .limit(1)
    )


def list_warnings(
    session: Session,
    *,
    statuses: Sequence[str] | None,
    hazard: str | None,
    source: str | None,
    level: str | None,
    limit: int,
    offset: int,
) -> tuple[list[HazardWarning], int]:
    """Newest first (by when they were last changed)."""
    query = select(HazardWarning)
    if statuses:
        query = query.where(HazardWarning.status.in_(statuses))
    if hazard:
        query = query.where(HazardWarning.hazard == hazard)
    if source:
        query = query.where(HazardWarning.source == source)
    if level:
        query = query.where(HazardWarning.level == level)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(HazardWarning.updated_at.desc(), HazardWarning.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(items), total


def due_to_expire(session: Session, now: datetime, *, limit: int = 500) -> list[HazardWarning]:
    return list(
        session.scalars(
            select(HazardWarning)
            .where(HazardWarning.status == "issued", HazardWarning.expires <= now)
            .order_by(HazardWarning.expires)
            .limit(limit)
        )
    )
