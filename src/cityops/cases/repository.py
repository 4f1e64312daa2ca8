"""Queries on cases, their timeline and the number counter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy import text as sql
from sqlalchemy.orm import Session

from cityops.cases.models import OPEN_CONDITION, Case, CaseCounter, CaseEvent
from cityops.cases.sla import RUNNING_STATES
from cityops.core.auth.models import OrgUnit
from cityops.core.db import table_of


def next_numbers(session: Session, *, prefix: str, year: int, count: int = 1) -> list[str]:
    """The next `count` case numbers of the year, e.g. HB-2024-000001 (the counter row is locked by
    the UPDATE until commit, so concurrent intakes never share a number; a batch takes its numbers
    with one UPDATE)."""
    counters = table_of(CaseCounter).c
    # Core on the session's connection: an ORM UPDATE would look through every object in the session.
    last = session.connection().execute(
        update(table_of(CaseCounter)).where(counters.year == year).values(last=counters.last + count)
        .returning(counters.last)
    ).scalar()
    if last is None:
        session.add(CaseCounter(year=year, last=count))
        session.flush()
        last = count
    return [f"{prefix}-{year}-{n:06d}" for n in range(last - count + 1, last + 1)]


def get(session: Session, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


SORTS = ("newest", "oldest", "deadline")
COUNT_CAP = 10_000


def list_query(*, condition: ColumnElement[bool], status: Sequence[str] = (), type_code: str | None = None,
               level: str | None = None, text: ColumnElement[bool] | None = None,
               assignee_id: int | None = None, org_unit_id: int | None = None, open_only: bool = False,
               overdue_at: datetime | None = None) -> Select[Any]:
    """Cases matching the filters. `text`: a full-text condition (cases/search.py); `overdue_at`: only
    running cases whose deadline passed by then."""
    query = select(Case).where(condition)
    if status:
        query = query.where(Case.status.in_(status))
    elif open_only:
        query = query.where(sql(OPEN_CONDITION))
    if type_code:
        query = query.where(Case.type_code == type_code)
    if level:
        query = query.where(Case.level == level)
    if assignee_id is not None:
        query = query.where(Case.assignee_id == assignee_id)
    if org_unit_id is not None:
        query = query.where(Case.org_unit_id == org_unit_id)
    if overdue_at is not None:
        query = query.where(sql(OPEN_CONDITION), Case.status.in_(RUNNING_STATES), Case.paused_at.is_(None),
                            Case.deadline_at < overdue_at)
    if text is not None:
        query = query.where(text)
    return query


def count(session: Session, query: Select[Any], *, cap: int | None = None) -> int:
    counted = query.order_by(None)
    if cap is not None:
        counted = counted.limit(cap)
    return session.scalar(select(func.count()).select_from(counted.subquery())) or 0


def page(session: Session, query: Select[Any], *, limit: int, offset: int,
         sort: str = "newest") -> tuple[list[Case], int]:
    # Counting a city's million cases costs more than the page itself: count up to COUNT_CAP + 1,
    # and the list says "more than COUNT_CAP".
    total = count(session, query, cap=COUNT_CAP + 1)
    if sort == "deadline":
        return _by_deadline(session, query, limit=limit, offset=offset), total
    order = {"newest": (Case.created_at.desc(), Case.id.desc()), "oldest": (Case.created_at, Case.id)}[sort]
    rows = session.scalars(query.order_by(*order).limit(limit).offset(offset)).all()
    return list(rows), total


def _by_deadline(session: Session, query: Select[Any], *, limit: int, offset: int) -> list[Case]:
    """Soonest deadline first, cases without one last. The two parts are read separately so the
    first walks the (deadline, id) index instead of sorting every match."""
    dated = query.where(Case.deadline_at.is_not(None))
    rows = list(session.scalars(dated.order_by(Case.deadline_at, Case.id).limit(limit).offset(offset)))
    if len(rows) < limit:
        skip = max(0, offset - count(session, dated)) if not rows else 0
        undated = query.where(Case.deadline_at.is_(None)).order_by(Case.id)
        rows += session.scalars(undated.limit(limit - len(rows)).offset(skip))
    return rows


def events(session: Session, case_id: int) -> list[CaseEvent]:
    return list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                .order_by(CaseEvent.at, CaseEvent.id)))


def events_of(session: Session, case_ids: Sequence[int]) -> list[CaseEvent]:
    """The timeline lines of several cases, by case, oldest first."""
    if not case_ids:
        return []
    return list(session.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(case_ids))
                                .order_by(CaseEvent.case_id, CaseEvent.at, CaseEvent.id)))


def org_units_by_code(session: Session) -> dict[str, OrgUnit]:
    """Every org unit, by code (a bulk intake routes to hundreds of them: one query instead)."""
    return {u.code: u for u in session.scalars(select(OrgUnit))}


def org_units(session: Session, ids: Iterable[int | None]) -> dict[int, OrgUnit]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(OrgUnit).where(OrgUnit.id.in_(wanted)))}
