from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

import pytest

from cityops.cases import types
from cityops.cases.models import Case
from cityops.cases.sla import (
    deadline_for,
    pause_clock,
    remaining_seconds,
    resume_clock,
    sweep_overdue,
)
from cityops.cases.types import Level, Sla
from cityops.core.db import Database
from cityops.core.errors import ValidationFailed

BEIJING = ZoneInfo("Asia/Shanghai")
HOUR = 3600.0
_numbers = count(1)


def bj(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BEIJING).astimezone(UTC)


def make_case(*, status: str = "dispatched", level: str = "village", deadline_at: datetime | None = None,
              paused_at: datetime | None = None) -> Case:
    return Case(
        number=f"HB-2024-{next(_numbers):06d}", type_code="dispute", category="noise", title="噪声扰民",
        status=status, level=level, division_code="410602001001", village_code="410602001001",
        lon=114.3, lat=35.7, deadline_at=deadline_at, paused_at=paused_at,
    )


def test_deadline_from_the_shipped_dispute_sla_skips_national_day() -> None:
    sla = types.load().get("dispute").sla
    start = bj(2024, 9, 30, 9)
    village = sla["village"]
    assert village.days is not None
    deadline = deadline_for(sla, "village", start)
    # 30 Sep, then the holiday week, then the working days from 8 Oct.
    assert deadline == bj(2024, 10, 7 + village.days, 9)
    assert deadline_for(sla, "township", start) > deadline


def test_deadline_in_working_hours_and_below_the_intake_level() -> None:
    sla: dict[Level, Sla] = {"township": Sla(hours=24), "county": Sla(days=2)}
    friday_evening = bj(2024, 11, 8, 17)
    # 1 h on Friday, then 7 + 7 + 7 h, then 2 h into Thursday morning.
    assert deadline_for(sla, "township", friday_evening) == bj(2024, 11, 14, 10, 30)
    # Delegated down to a village, the case keeps the township's time.
    assert deadline_for(sla, "village", friday_evening) == bj(2024, 11, 14, 10, 30)
    with pytest.raises(ValidationFailed) as info:
        deadline_for(sla, "galaxy", friday_evening)
    assert info.value.field == "level"
    with pytest.raises(ValidationFailed):
        deadline_for(sla, "city", friday_evening)


def test_sweep_finds_only_open_running_cases_past_their_deadline(empty_db: Database) -> None:
    now = bj(2024, 11, 11, 10)
    with empty_db.session() as s:
        late = make_case(deadline_at=now - timedelta(hours=2))
        later = make_case(status="in_progress", deadline_at=now - timedelta(minutes=1))
        escalated = make_case(status="escalated", level="township", deadline_at=now - timedelta(days=3))
        on_time = make_case(deadline_at=now + timedelta(minutes=1))
        no_deadline = make_case(deadline_at=None)
        closed = make_case(status="closed", deadline_at=now - timedelta(days=1))
        resolved = make_case(status="resolved", deadline_at=now - timedelta(days=1))
        merged = make_case(status="merged", deadline_at=now - timedelta(days=1))
        paused = make_case(status="in_progress", deadline_at=now - timedelta(days=1),
                           paused_at=now - timedelta(days=2))
        s.add_all([late, later, escalated, on_time, no_deadline, closed, resolved, merged, paused])
        s.flush()
        assert sweep_overdue(s, now=now) == [escalated.id, late.id, later.id]
        assert sweep_overdue(s, now=now, limit=1) == [escalated.id]
        with pytest.raises(ValueError, match="naive"):
            sweep_overdue(s, now=datetime(2024, 11, 11, 10))


def test_sweep_with_a_controlled_clock_across_the_holiday(empty_db: Database) -> None:
    sla: dict[Level, Sla] = {"village": Sla(days=3), "township": Sla(days=5)}
    reported = bj(2024, 9, 30, 9)
    with empty_db.session() as s:
        case = make_case(deadline_at=deadline_for(sla, "village", reported))
        s.add(case)
        s.flush()
        # Through the National Day week and the next two working days nothing is due.
        assert sweep_overdue(s, now=bj(2024, 10, 7, 23)) == []
        assert sweep_overdue(s, now=bj(2024, 10, 9, 18)) == []
        assert sweep_overdue(s, now=bj(2024, 10, 10, 9, 1)) == [case.id]


def test_pause_stops_the_clock_and_resume_moves_the_deadline(empty_db: Database) -> None:
    with empty_db.session() as s:
        case = make_case(status="in_progress", deadline_at=bj(2024, 11, 11, 10))  # Monday 10:00
        s.add(case)
        s.flush()
        pause_clock(case, now=bj(2024, 11, 8, 17))  # Friday 17:00: 2.5 working hours left
        pause_clock(case, now=bj(2024, 11, 8, 17, 30))  # a second pause keeps the first moment
        s.flush()
        assert remaining_seconds(case, now=bj(2024, 11, 12, 9)) == 2.5 * HOUR
        # Waiting on the reporter over the deadline does not make the case overdue.
        assert sweep_overdue(s, now=bj(2024, 11, 12, 9)) == []

        resume_clock(case, now=bj(2024, 11, 12, 9))  # Tuesday 09:00
        s.flush()
        assert case.paused_at is None
        assert case.deadline_at == bj(2024, 11, 12, 11, 30)
        assert case.paused_seconds == int(8.5 * HOUR)  # Fri 1 h + Mon 7 h + Tue 0.5 h
        assert sweep_overdue(s, now=bj(2024, 11, 12, 11, 29)) == []
        assert sweep_overdue(s, now=bj(2024, 11, 12, 11, 31)) == [case.id]
        assert remaining_seconds(case, now=bj(2024, 11, 12, 14, 30)) == -0.5 * HOUR


def test_a_case_paused_after_its_deadline_stays_overdue(empty_db: Database) -> None:
    with empty_db.session() as s:
        case = make_case(status="in_progress", deadline_at=bj(2024, 11, 11, 10))
        s.add(case)
        s.flush()
        pause_clock(case, now=bj(2024, 11, 11, 11))
        resume_clock(case, now=bj(2024, 11, 12, 9))
        s.flush()
        assert case.deadline_at == bj(2024, 11, 11, 10)
        assert sweep_overdue(s, now=bj(2024, 11, 12, 9)) == [case.id]
