"""The demo seed's cases: made through the service, so each has a routed unit and a timeline, handled
on time or late, escalated by the sweep or by people, rated and photographed like real ones."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.cases.demo import COUNTS, HISTORY_DAYS
from cityops.cases.models import Case, CaseAttachment, CaseEvent
from cityops.core import files
from cityops.core.db import Database
from tests.accounts.helpers import login

# Timeline lines that record something about a case without moving it.
NOT_MOVES = ("attach", "feedback")


def test_the_small_seed_has_routed_cases_in_many_states_with_timelines(db: Database) -> None:
    with db.sessions() as session:
        cases = session.scalars(select(Case)).all()
        moves = Counter(session.scalars(select(CaseEvent.case_id).where(CaseEvent.action.not_in(NOT_MOVES))))
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
    assert all(moves[c.id] == c.version for c in cases)
    assert all((c.closed_at is not None) == (c.status in ("closed", "rejected")) for c in cases)


def test_the_small_seeds_figures_show_escalations_late_cases_and_satisfaction(
    client: TestClient, db: Database
) -> None:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    login(client, "admin")
    response = client.get("/api/cases/figures", params={
        "start": (today - timedelta(days=HISTORY_DAYS + 1)).isoformat(), "end": today.isoformat()})
    assert response.status_code == 200, response.text
    figures = {(f["name"], f["level"]): f["value"] for f in response.json()["figures"]}
    # The sweep escalated some cases nobody took up; centres escalated others themselves.
    assert 0 < figures[("escalated_auto", None)] < figures[("escalated", None)]
    # Most are handled on time at the level they were reported to, some late, a few a level up.
    assert figures[("on_time", "village")] > 5 * figures[("late", "village")] > 0
    assert figures[("resolved_at_level", "village")] > figures[("resolved_at_level", "county")] > 0
    assert figures[("rated", None)] > 0 and 3 < figures[("satisfaction", None)] < 5


def test_a_few_closed_demo_cases_carry_a_photo_stored_by_its_hash(db: Database, template_db: Path) -> None:
    with db.sessions() as session:
        photos = session.scalars(select(CaseAttachment)).all()
        closed = session.scalar(select(func.count()).select_from(Case).where(Case.status == "closed")) or 0
        lines = session.scalar(select(func.count()).where(CaseEvent.action == "attach"))
    assert 0 < len(photos) < closed / 4 and lines == len(photos)
    for photo in photos:
        stored = files.open_path(template_db.parent / "files", photo.sha256).read_bytes()
        assert photo.media_type == "image/png" and stored.startswith(b"\x89PNG") and len(stored) == photo.size
