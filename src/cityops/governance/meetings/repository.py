"""Queries of the meetings package."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from cityops.governance.meetings.models import AgendaItem, Meeting


def get(session: Session, meeting_id: int) -> Meeting | None:
    return session.get(Meeting, meeting_id)


def item(session: Session, meeting_id: int, item_id: int) -> AgendaItem | None:
    found = session.get(AgendaItem, item_id)
    return found if found is not None and found.meeting_id == meeting_id else None


def items(session: Session, meeting_id: int) -> list[AgendaItem]:
    return list(
        session.scalars(
            select(AgendaItem)
            .where(AgendaItem.meeting_id == meeting_id)
            .order_by(AgendaItem.position, AgendaItem.id)
        )
    )


def previous(session: Session, meeting: Meeting) -> Meeting | None:
    """The same centre's meeting held at the same level just before this one."""
    return session.scalars(
        select(Meeting)
        .where(
            Meeting.division_code == meeting.division_code,
            Meeting.level == meeting.level,
            Meeting.held_at < meeting.held_at,
            Meeting.id != meeting.id,
        )
        .order_by(Meeting.held_at.desc(), Meeting.id.desc())
    ).first()


def item_counts(session: Session, meeting_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(items, decided) per meeting."""
    ids = list(meeting_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(AgendaItem.meeting_id, func.count(), func.count(AgendaItem.decided_at))
        .where(AgendaItem.meeting_id.in_(ids))
        .group_by(AgendaItem.meeting_id)
    )
    return {mid: (int(n), int(d)) for mid, n, d in rows}


def list_query(
    *, condition: ColumnElement[bool], level: str | None, status: str | None, since: datetime | None = None
) -> Select[Meeting]:
    query = select(Meeting).where(condition)
    if level:
        query = query.where(Meeting.level == level)
    if status:
        query = query.where(Meeting.status == status)
    if since is not None:
        query = query.where(Meeting.held_at >= since)
    return query.order_by(Meeting.held_at.desc(), Meeting.id.desc())


def page(session: Session, query: Select[Meeting], *, limit: int, offset: int) -> tuple[list[Meeting], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    return list(session.scalars(query.limit(limit).offset(offset))), int(total)


def next_position(session: Session, meeting_id: int) -> int:
    return (
        int(
            session.scalar(
                select(func.coalesce(func.max(AgendaItem.position), 0)).where(
                    AgendaItem.meeting_id == meeting_id
                )
            )
            or 0
        )
        + 1
    )


def count_all(session: Session) -> int:
    return int(session.scalar(select(func.count(Meeting.id))) or 0)
