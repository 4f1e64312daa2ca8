"""SLA deadlines of cases on the Chinese working calendar, the pause clock and the overdue sweep.

Contract with the case service: `deadline_at` is always the effective deadline of the current
level. While a case waits on its reporter (`paused_at` set) the sweep skips it; on resume the
deadline moves out by the working time the case had left when it paused, so the sweep stays one
indexed SQL query and never recomputes calendars per case. `paused_seconds` adds up the working
seconds spent paused, for the figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.cases.models import Case
from cityops.cases.types import Level, Sla
from cityops.cases.workflow import FINAL_STATES, LEVELS, STATES
from cityops.core.calendar import WorkingCalendar, add_working_time, working_seconds_between
from cityops.core.errors import ValidationFailed

# The clock runs while a centre still owes work; a resolved or verified case waits on checking,
# not on handling, so it cannot breach its handling deadline.
CLOCK_STOPPED_STATES = FINAL_STATES | {"resolved", "verified"}
RUNNING_STATES = tuple(s for s in STATES if s not in CLOCK_STOPPED_STATES)


def _aware(t: datetime, name: str) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime; pass a timezone-aware (UTC) datetime")
    return t.astimezone(UTC)


def sla_at_level(case_type_sla: Mapping[Level, Sla], level: str) -> Sla:
    """The SLA of `level`; a level the type has none for (a case delegated below the type's intake
    level) keeps the SLA of the nearest level above, the one that handed it down."""
    if level not in LEVELS:
        raise ValidationFailed(f"unknown level {level!r}; known: {', '.join(LEVELS)}", field="level")
    for candidate in LEVELS[LEVELS.index(level):]:
        sla = case_type_sla.get(cast(Level, candidate))
        if sla is not None:
            return sla
    raise ValidationFailed(f"the case type has no SLA at level {level!r} or above", field="level")


def deadline_for(
    case_type_sla: Mapping[Level, Sla],
    level: str,
    start: datetime,
    *,
    calendar: WorkingCalendar | None = None,
) -> datetime:
    """The deadline (UTC) of a case arriving at `level` at `start`, in working hours or days."""
    sla = sla_at_level(case_type_sla, level)
    return add_working_time(_aware(start, "start"), hours=sla.hours or 0, days=sla.days or 0,
                            calendar=calendar)


def pause_clock(case: Case, *, now: datetime) -> None:
    """Stop the SLA clock (waiting on the reporter); pausing twice keeps the first moment."""
    if case.paused_at is None:
        case.paused_at = _aware(now, "now")


def resume_clock(case: Case, *, now: datetime, calendar: WorkingCalendar | None = None) -> None:
    """Restart the clock: the deadline moves out so the working time left at pausing is left again."""
    paused_at = case.paused_at
    if paused_at is None:
        return
    now = _aware(now, "now")
    spent = max(working_seconds_between(paused_at, now, calendar=calendar), 0.0)
    case.paused_seconds = (case.paused_seconds or 0) + round(spent)
    if case.deadline_at is not None:
        left = working_seconds_between(paused_at, case.deadline_at, calendar=calendar)
        # Already overdue when paused: the breach stands, the pause does not excuse it.
        if left > 0:
            case.deadline_at = add_working_time(now, hours=left / 3600, calendar=calendar)
    case.paused_at = None


def remaining_seconds(case: Case, *, now: datetime, calendar: WorkingCalendar | None = None) -> float | None:
    """Working seconds until the deadline (negative once overdue) for countdowns; None without one.
    A paused case shows the time it had left when it paused."""
    if case.deadline_at is None:
        return None
    moment = case.paused_at or _aware(now, "now")
    return working_seconds_between(moment, case.deadline_at, calendar=calendar)


def sweep_overdue(session: Session, *, now: datetime, limit: int | None = None) -> list[int]:
    """Ids of open, running (not paused) cases whose deadline has passed, earliest deadline first.

    One query on the deadline index; no per-case Python work.
    """
    query = (
        select(Case.id)
        .where(
            Case.deadline_at < _aware(now, "now"),
            Case.status.in_(RUNNING_STATES),
            Case.paused_at.is_(None),
        )
        .order_by(Case.deadline_at, Case.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
