"""The demo seed's cases: made through the service, so each has a routed unit and a timeline."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from cityops.cases.demo import COUNTS
from cityops.cases.models import Case, CaseEvent
from cityops.core.db import Database


def test_the_small_seed_has_routed_cases_in_many_states_with_timelines(db: Database) -> None:
    with db.sessions() as session:
        cases = session.scalars(select(Case)).all()
        events = Counter(session.scalars(select(CaseEvent.case_id)).all())
        reports = session.scalar(select(func.count()).where(CaseEvent.action == "report"))
    # The cases generator makes COUNTS; disputes and grid visits add cases of their own.
    assert len(cases) == reports >= COUNTS["small"]
    assert len({c.number for c in cases}) == len(cases)
    statuses = Counter(c.status for c in cases)
    assert statuses["closed"] > len(cases) / 3
    assert {"reported", "in_progress", "rejected"} <= set(statuses)
    assert {c.level for c in cases} >= {"village", "township"}
    assert all(c.org_unit_id is not None for c in cases)
    # One timeline line per version: the intake plus every action.
    assert all(events[c.id] == c.version for c in cases)
    assert all((c.closed_at is not None) == (c.status in ("closed", "rejected")) for c in cases)
