"""Queries on visits, patrols and grid issues.

Case numbers and states are read straight from the cases table for the issue links (as the police
transfers do): these are rows the viewer already reached through a visit in scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, cast, func, select
from sqlalchemy.orm import Session

from cityops.cases.models import Case
from cityops.core.auth.models import User
from cityops.governance.visits.models import GridIssue, Patrol, Visit


def visit_query(
    *,
    condition: ColumnElement[bool],
    village: str | None = None,
    worker_id: int | None = None,
    kind: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    case_id: int | None = None,
) -> Select[Any]:
    query = select(Visit).where(condition)
    if village:
        query = query.where(Visit.division_code.like(village + "%"))
    if worker_id is not None:
        query = query.where(Visit.worker_id == worker_id)
    if kind:
        # kinds is a short JSON list; a LIKE on its text is portable across SQLite and PostgreSQL.
        query = query.where(cast(Visit.kinds, Text).like(f'%"{kind}"%'))
    if start is not None:
        query = query.where(Visit.visited_at >= start)
    if end is not None:
        query = query.where(Visit.visited_at < end)
    if case_id is not None:
        query = query.where(Visit.id.in_(select(GridIssue.visit_id).where(GridIssue.case_id == case_id)))
    return query


def page_visits(session: Session, query: Select[Any], *, limit: int, offset: int) -> tuple[list[Visit], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(
        query.order_by(Visit.visited_at.desc(), Visit.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def patrol_query(
    *, condition: ColumnElement[bool], worker_id: int | None = None, open_only: bool = False
) -> Select[Any]:
    query = select(Patrol).where(condition)
    if worker_id is not None:
        query = query.where(Patrol.worker_id == worker_id)
    if open_only:
        query = query.where(Patrol.ended_at.is_(None))
    return query


def page_patrols(
    session: Session, query: Select[Any], *, limit: int, offset: int
) -> tuple[list[Patrol], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(
        query.order_by(Patrol.started_at.desc(), Patrol.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def open_patrol(session: Session, worker_id: int) -> Patrol | None:
    return session.scalar(
        select(Patrol)
        .where(Patrol.worker_id == worker_id, Patrol.ended_at.is_(None))
        .order_by(Patrol.id.desc())
    )


def issues_of(
    session: Session, *, visit_ids: Iterable[int] = (), patrol_ids: Iterable[int] = ()
) -> list[tuple[GridIssue, str, str]]:
    """(issue, case number, case status) of the given visits and patrols."""
    visits, patrols = list(visit_ids), list(patrol_ids)
    if not visits and not patrols:
        return []
    query = select(GridIssue, Case.number, Case.status).join(Case, Case.id == GridIssue.case_id)
    if visits:
        query = query.where(GridIssue.visit_id.in_(visits))
    else:
        query = query.where(GridIssue.patrol_id.in_(patrols))
    return [(i, n, s) for i, n, s in session.execute(query.order_by(GridIssue.id))]


def case_ref(session: Session, case_id: int) -> tuple[str, str]:
    row = session.execute(select(Case.number, Case.status).where(Case.id == case_id)).one()
    return row[0], row[1]


def count_visits(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Visit)) or 0


def count_issues(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(GridIssue)) or 0


def visit_cases(session: Session, visit_id: int) -> list[Case]:
    return list(
        session.scalars(
            select(Case)
            .join(GridIssue, GridIssue.case_id == Case.id)
            .where(GridIssue.visit_id == visit_id)
            .order_by(Case.id)
        )
    )


def recorders(session: Session) -> list[User]:
    """Active grid workers and centre operators with an area, by id."""
    return list(
        session.scalars(
            select(User)
            .where(
                User.role.in_(("grid_worker", "centre_operator")),
                User.is_active.is_(True),
                User.scope_code.is_not(None),
            )
            .order_by(User.id)
        )
    )
