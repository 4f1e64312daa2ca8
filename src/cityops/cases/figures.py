"""Figures per unit and period, computed from the timeline and never stored.

A unit is a division (its code's prefix covers everything below it); a period is a range of
Beijing calendar days. The timeline carries every hop: the level of each event, and each deadline
on the event that set it (report, escalate, delegate, resume, reopen). So "resolved at which level"
is the level of the resolve event, and "on time at that level" compares the resolve moment with the
deadline in force at that moment (while paused, the moment the clock stopped counts).

Every figure names the cases behind it: `case_ids` gives the same sets the counts are made of, so
the drill-down list is exactly the figure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from cityops.cases.models import Case, CaseEvent
from cityops.cases.workflow import LEVELS
from cityops.core.auth.models import User
from cityops.core.auth.scope import in_scope, scope_filter, scope_prefix, sees_everything
from cityops.core.errors import NotFound, ValidationFailed

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MAX_DAYS = 3 * 366 + 1
FigureName = Literal["reported", "resolved", "escalated", "escalated_auto", "resolved_at_level",
                     "on_time", "late", "rated"]
FIGURES: tuple[str, ...] = FigureName.__args__  # type: ignore[attr-defined]
LEVEL_FIGURES = frozenset({"resolved_at_level", "on_time", "late"})


@dataclass(frozen=True)
class Period:
    division: str
    start: date
    end: date  # inclusive

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), LOCAL_TZ)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), LOCAL_TZ)


@dataclass
class Tally:
    """The case ids behind each figure."""

    reported: set[int] = field(default_factory=set)
    escalated: set[int] = field(default_factory=set)
    escalated_auto: set[int] = field(default_factory=set)
    # case id -> (level, on time or None when no deadline was known) of its last resolve in the period
    resolutions: dict[int, tuple[str, bool | None]] = field(default_factory=dict)
    # case id -> the reporter's ratings given in the period (one per closing; see cases/feedback.py)
    ratings: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))

    def ids(self, figure: str, level: str | None = None) -> set[int]:
        if figure == "reported":
            return self.reported
        if figure == "escalated":
            return self.escalated
        if figure == "escalated_auto":
            return self.escalated_auto
        if figure == "resolved":
            return set(self.resolutions)
        if figure == "rated":
            return set(self.ratings)
        rows = {cid: v for cid, v in self.resolutions.items() if v[0] == level}
        if figure == "resolved_at_level":
            return set(rows)
        if figure == "on_time":
            return {cid for cid, (_lv, ok) in rows.items() if ok is True}
        if figure == "late":
            return {cid for cid, (_lv, ok) in rows.items() if ok is False}
        raise ValidationFailed(f"unknown figure {figure!r}; known: {', '.join(FIGURES)}", field="figure")


def period(viewer: User, *, division: str | None, start: date | None, end: date | None,
           today: date | None = None) -> Period:
    """Check the unit and period: a division outside the viewer's scope answers 404, like a missing
    one; the default is the viewer's own scope and the current month up to today."""
    code = division or viewer.scope_code
    if not code:
        raise ValidationFailed("give a division code", field="division")
    try:
        scope_prefix(code)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="division") from None
    if not (sees_everything(viewer) or in_scope(viewer.scope_code, code)):
        raise NotFound(f"division {code} not found")
    today = today or datetime.now(LOCAL_TZ).date()
    end = end or today
    start = start or end.replace(day=1)
    if start > end:
        raise ValidationFailed("start must be on or before end", field="start")
    if (end - start).days > MAX_DAYS:
        raise ValidationFailed(f"a period is at most {MAX_DAYS} days", field="end")
    return Period(code, start, end)


def unit_condition(viewer: User, where: Period) -> ColumnElement[bool]:
    return and_(Case.division_code.startswith(scope_prefix(where.division), autoescape=True),
                scope_filter(viewer, Case.division_code, Case.org_unit_id, Case.reporter_user_id))


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def tally(session: Session, *, viewer: User, where: Period) -> Tally:
    """Walk the timelines of the unit's cases with any event in the period (and their earlier events,
    for the deadline in force)."""
    since, until = where.since, where.until
    active = (select(CaseEvent.case_id).join(Case, Case.id == CaseEvent.case_id)
              .where(unit_condition(viewer, where), CaseEvent.at >= since, CaseEvent.at < until)
              .distinct())
    rows = session.execute(
        select(CaseEvent.case_id, CaseEvent.action, CaseEvent.level, CaseEvent.at, CaseEvent.data)
        .where(CaseEvent.case_id.in_(active), CaseEvent.at < until)
        .order_by(CaseEvent.case_id, CaseEvent.at, CaseEvent.id))
    result = Tally()
    deadlines: dict[int, datetime | None] = defaultdict(lambda: None)
    paused: dict[int, datetime | None] = defaultdict(lambda: None)
    for case_id, action, level, at, data in rows:
        data = data or {}
        new_deadline = _moment(data.get("deadline_at"))
        if new_deadline is not None and action != "overdue":
            deadlines[case_id] = new_deadline
        if action == "pause":
            paused[case_id] = paused[case_id] or at
        elif action in ("resume", "escalate", "delegate", "reopen"):
            paused[case_id] = None
        if at < since:
            continue
        if action == "report":
            result.reported.add(case_id)
        elif action == "escalate":
            result.escalated.add(case_id)
            if data.get("auto"):
                result.escalated_auto.add(case_id)
        elif action == "resolve":
            deadline = deadlines[case_id]
            moment = paused[case_id] or at
            result.resolutions[case_id] = (level, None if deadline is None else moment <= deadline)
        elif action == "feedback" and isinstance(data.get("rating"), int):
            result.ratings[case_id].append(data["rating"])
    return result


@dataclass(frozen=True)
class Figure:
    name: str
    level: str | None
    value: float
    # The cases behind the figure (for a rate: the resolved cases it is taken over).
    drill: str
    drill_level: str | None


def figures(tallied: Tally) -> list[Figure]:
    """The figures in display order; a level nobody resolved at has no rows (no empty rates)."""
    out = [Figure("reported", None, len(tallied.reported), "reported", None),
           Figure("resolved", None, len(tallied.resolutions), "resolved", None),
           Figure("escalated", None, len(tallied.escalated), "escalated", None),
           Figure("escalated_auto", None, len(tallied.escalated_auto), "escalated_auto", None)]
    ratings = [r for given in tallied.ratings.values() for r in given]
    if ratings:
        # Satisfaction: the average rating (1-5) over the ratings given in the period, and their number.
        out.append(Figure("rated", None, len(ratings), "rated", None))
        out.append(Figure("satisfaction", None, round(sum(ratings) / len(ratings), 2), "rated", None))
    for level in LEVELS:
        resolved = tallied.ids("resolved_at_level", level)
        if not resolved:
            continue
        on_time = len(tallied.ids("on_time", level))
        late = len(tallied.ids("late", level))
        out.append(Figure("resolved_at_level", level, len(resolved), "resolved_at_level", level))
        out.append(Figure("on_time", level, on_time, "on_time", level))
        out.append(Figure("late", level, late, "late", level))
        if on_time + late:
            out.append(Figure("on_time_rate", level, round(on_time / (on_time + late), 4),
                              "resolved_at_level", level))
    return out
