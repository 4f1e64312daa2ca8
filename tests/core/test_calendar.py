from __future__ import annotations

import logging
import random
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from cityops.core.calendar import (
    OfficeHours,
    WorkingCalendar,
    add_working_time,
    is_working_day,
    next_working_moment,
    working_seconds_between,
)

BEIJING = ZoneInfo("Asia/Shanghai")
HOUR = 3600.0


def bj(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A Beijing wall-clock moment as the UTC datetime the functions take."""
    return datetime(y, m, d, hh, mm, tzinfo=BEIJING).astimezone(UTC)


# -- working days -------------------------------------------------------------------------------


def test_national_day_2024_holidays_and_adjusted_working_days() -> None:
    assert is_working_day(date(2024, 9, 29))  # Sunday, 调休 working day
    assert all(not is_working_day(date(2024, 10, d)) for d in range(1, 8))
    assert is_working_day(date(2024, 10, 12))  # Saturday, 调休 working day
    assert not is_working_day(date(2024, 10, 13))  # ordinary Sunday
    assert not is_working_day(date(2024, 9, 28))  # ordinary Saturday


def test_year_beyond_the_library_falls_back_to_weekdays_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Why the wrapper exists: chinese-calendar refuses years after its release, and a deadline
    # set in late December reaches into the next year.
    last_year = max(d.year for d in chinese_calendar.holidays)
    future = last_year + 1
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(future, 1, 5))

    cal = WorkingCalendar()
    oct_first = date(future, 10, 1)  # National Day, but the weekday rule cannot know that
    with caplog.at_level(logging.WARNING, logger="cityops.core.calendar"):
        assert cal.is_working_day(oct_first) == (oct_first.weekday() < 5)
        for offset in range(14):
            d = oct_first + timedelta(days=offset)
            assert cal.is_working_day(d) == (d.weekday() < 5)
        assert not cal.uses_statutory_data(future)
        assert cal.uses_statutory_data(last_year)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(future) in warnings[0].getMessage()

    # A deadline crossing New Year into the unknown year still comes out.
    monday = date(future, 1, 1) + timedelta(days=(7 - date(future, 1, 1).weekday()) % 7)
    start = datetime.combine(monday, time(9), tzinfo=BEIJING)
    assert cal.add_working_time(start, days=5) == datetime.combine(
        monday + timedelta(days=7), time(9), tzinfo=BEIJING
    )


# -- deadlines ----------------------------------------------------------------------------------


def test_three_working_days_across_national_day_2024() -> None:
    start = bj(2024, 9, 30, 9)
    # 30 Sep is day 0; 1–7 Oct are holidays; 8, 9, 10 Oct are the three working days.
    assert add_working_time(start, days=3) == bj(2024, 10, 10, 9)
    assert add_working_time(start, hours=21) == bj(2024, 10, 10, 9)  # 3 × 7 working hours
    # Saturday 12 Oct is the fifth working day after 30 Sep, the Sunday after it is not.
    assert add_working_time(start, days=5) == bj(2024, 10, 12, 9)
    assert add_working_time(start, days=6) == bj(2024, 10, 14, 9)


def test_spring_festival_2025() -> None:
    # Holidays 28 Jan – 4 Feb 2025; Sunday 26 Jan and Saturday 8 Feb were working days.
    assert is_working_day(date(2025, 1, 26))
    assert not is_working_day(date(2025, 1, 28))
    assert is_working_day(date(2025, 2, 8))
    start = bj(2025, 1, 27, 16)  # Monday afternoon, last day before the festival
    assert add_working_time(start, days=1) == bj(2025, 2, 5, 16)
    assert add_working_time(start, hours=4) == bj(2025, 2, 5, 10, 30)  # 2 h on the 27th, 2 h after
    assert working_seconds_between(bj(2025, 1, 27, 18), bj(2025, 2, 5, 8, 30)) == 0


def test_lunch_break_is_not_working_time() -> None:
    assert add_working_time(bj(2024, 11, 4, 11), hours=2) == bj(2024, 11, 4, 15, 30)
    assert add_working_time(bj(2024, 11, 4, 11), hours=1) == bj(2024, 11, 4, 12)
    assert working_seconds_between(bj(2024, 11, 4, 11), bj(2024, 11, 4, 15)) == 1.5 * HOUR


def test_start_outside_office_hours_counts_from_next_opening() -> None:
    # Evening report: the clock starts next morning.
    assert add_working_time(bj(2024, 11, 4, 21), hours=1) == bj(2024, 11, 5, 9, 30)
    # Early morning, before opening.
    assert add_working_time(bj(2024, 11, 5, 6), hours=1) == bj(2024, 11, 5, 9, 30)
    # During lunch, whole days keep the opening time of the afternoon.
    assert add_working_time(bj(2024, 11, 4, 13), days=1) == bj(2024, 11, 5, 14, 30)


def test_start_on_a_weekend() -> None:
    saturday = bj(2024, 11, 9, 10)
    assert next_working_moment(saturday) == bj(2024, 11, 11, 8, 30)
    assert add_working_time(saturday, days=1) == bj(2024, 11, 12, 8, 30)
    assert add_working_time(saturday, hours=7) == bj(2024, 11, 11, 18)


def test_next_working_moment() -> None:
    inside = bj(2024, 11, 4, 10, 15)
    assert next_working_moment(inside) == inside
    assert next_working_moment(bj(2024, 11, 4, 12)) == bj(2024, 11, 4, 14, 30)
    assert next_working_moment(bj(2024, 11, 4, 18)) == bj(2024, 11, 5, 8, 30)
    assert next_working_moment(bj(2024, 9, 30, 18, 30)) == bj(2024, 10, 8, 8, 30)
    assert next_working_moment(inside).tzinfo == UTC


def test_working_seconds_exclude_nights_weekends_and_holidays() -> None:
    # A case paused from Friday 17:00 to Monday 09:00 lost one working hour and a half.
    assert working_seconds_between(bj(2024, 11, 8, 17), bj(2024, 11, 11, 9)) == 1.5 * HOUR
    # The whole National Day week plus the weekend around it: only 30 Sep and 8 Oct count.
    assert working_seconds_between(bj(2024, 9, 30, 0), bj(2024, 10, 9, 0)) == 14 * HOUR
    # Overdue time is negative.
    assert working_seconds_between(bj(2024, 11, 4, 10), bj(2024, 11, 4, 9)) == -1 * HOUR
    # A whole year: every statutory working day of 2024 counts 7 hours.
    workdays_2024 = len(chinese_calendar.get_workdays(date(2024, 1, 1), date(2024, 12, 31)))
    assert working_seconds_between(bj(2024, 1, 1), bj(2025, 1, 1)) == workdays_2024 * 7 * HOUR


def test_deadline_a_year_away() -> None:
    # N working days of 7 hours after Tuesday 2 Jan 09:00 is 09:00 on the last working day of 2024.
    n = len(chinese_calendar.get_workdays(date(2024, 1, 3), date(2024, 12, 31)))
    start = bj(2024, 1, 2, 9)
    assert add_working_time(start, hours=7 * n) == bj(2024, 12, 31, 9)
    assert add_working_time(start, days=n) == bj(2024, 12, 31, 9)
    assert add_working_time(start, days=n + 1) == bj(2025, 1, 2, 9)  # New Year's Day is a holiday


def test_round_trip_property() -> None:
    rng = random.Random(20241001)
    base = bj(2024, 1, 1)
    for _ in range(500):
        t = base + timedelta(seconds=rng.randrange(0, 2 * 365 * 86400))
        h = rng.choice([rng.uniform(0, 200), float(rng.randrange(0, 400)) / 4])
        deadline = add_working_time(t, hours=h)
        assert deadline >= t
        assert working_seconds_between(t, deadline) == pytest.approx(h * HOUR, abs=1e-6)


def test_custom_office_hours_and_timezone() -> None:
    cal = WorkingCalendar(OfficeHours(spans=((time(9), time(17)),), timezone="Asia/Urumqi"))
    urumqi = ZoneInfo("Asia/Urumqi")
    start = datetime(2024, 11, 4, 16, tzinfo=urumqi)
    assert cal.add_working_time(start, hours=2) == datetime(2024, 11, 5, 10, tzinfo=urumqi)
    assert cal.add_working_time(start, days=1) == datetime(2024, 11, 5, 16, tzinfo=urumqi)


@pytest.mark.parametrize(
    "spans",
    [(), ((time(12), time(9)),), ((time(8), time(12)), (time(11), time(13)))],
)
def test_bad_office_hours_are_refused(spans: tuple[tuple[time, time], ...]) -> None:
    with pytest.raises(ValueError):
        OfficeHours(spans=spans)


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2024, 11, 4, 9)
    aware = bj(2024, 11, 4, 9)
    with pytest.raises(ValueError, match="naive"):
        add_working_time(naive, hours=1)
    with pytest.raises(ValueError, match="naive"):
        next_working_moment(naive)
    with pytest.raises(ValueError, match="naive"):
        working_seconds_between(aware, naive)
    with pytest.raises(ValueError, match="negative"):
        add_working_time(aware, hours=-1)


def test_other_offsets_are_accepted_and_results_are_utc() -> None:
    plus8 = datetime(2024, 11, 4, 9, tzinfo=timezone(timedelta(hours=8)))
    result = add_working_time(plus8, hours=1)
    assert result.tzinfo == UTC
    assert result == bj(2024, 11, 4, 10)
