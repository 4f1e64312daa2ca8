"""Working time on the Chinese statutory calendar.

Working days follow `chinese-calendar` (statutory holidays and the adjusted working days, 调休,
such as Sunday 2024-09-29 and Saturday 2024-10-12). Working time is office hours on those days,
by default 08:30–12:00 and 14:30–18:00 Beijing time (7 hours a day).

Every public function takes and returns timezone-aware datetimes (results in UTC) and rejects
naive ones. Durations are counted on the office's wall clock (China has no daylight saving time).
Working-day flags are computed once per year and cached, and arithmetic walks whole day spans, so
a deadline a year away costs a few hundred steps, not one per second.

`chinese-calendar` only knows the years up to its release and raises NotImplementedError for
others; for such a year we fall back to Monday–Friday and log one warning per year, so deadlines
keep working until the package is upgraded with the State Council's new arrangement.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo

import chinese_calendar

logger = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_SPANS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(14, 30), time(18, 0)))

_ZERO = timedelta(0)
_ONE_DAY = timedelta(days=1)
_EPSILON = timedelta(microseconds=1)


@dataclass(frozen=True)
class _Year:
    flags: bytes  # 1 per working day, indexed by day of year - 1
    prefix: tuple[int, ...]  # prefix[i] = working days among the first i days
    from_library: bool


def _library_flags(year: int) -> bytes | None:
    """The statutory flags of a year, or None when the installed chinese-calendar lacks it."""
    start = date(year, 1, 1)
    days = (date(year + 1, 1, 1) - start).days
    try:
        return bytes(chinese_calendar.is_workday(start + timedelta(days=i)) for i in range(days))
    except NotImplementedError:
        return None


@dataclass(frozen=True)
class OfficeHours:
    """Daily office hours as (start, end) wall-clock spans in `timezone`, in order, not overlapping."""

    spans: tuple[tuple[time, time], ...] = DEFAULT_SPANS
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if not self.spans:
            raise ValueError("office hours need at least one span")
        previous_end: time | None = None
        for start, end in self.spans:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("office hours are wall-clock times without a zone; set `timezone`")
            if not start < end:
                raise ValueError(f"office hours span {start:%H:%M}–{end:%H:%M} must start before it ends")
            if previous_end is not None and start < previous_end:
                raise ValueError(f"office hours span starting {start:%H:%M} overlaps the previous one")
            previous_end = end
        ZoneInfo(self.timezone)  # an unknown zone fails here, not at the first deadline

    @property
    def day_length(self) -> timedelta:
        base = date(2000, 1, 1)
        return sum(
            (datetime.combine(base, end) - datetime.combine(base, start) for start, end in self.spans),
            _ZERO,
        )


@dataclass
class WorkingCalendar:
    """Working-time arithmetic for one set of office hours; per-year day flags are cached."""

    hours: OfficeHours = field(default_factory=OfficeHours)
    _years: dict[int, _Year] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._tz = ZoneInfo(self.hours.timezone)
        self._day_length = self.hours.day_length

    # -- working days -------------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._years.get(year)
            if cached is not None:
                return cached
            flags = _library_flags(year)
            from_library = flags is not None
            if flags is None:
                logger.warning(
                    "chinese-calendar %s has no holiday data for %d: counting Monday to Friday as "
                    "working days that year; upgrade chinese-calendar once the arrangement is published",
                    getattr(chinese_calendar, "__version__", "?"), year,
                )
                start = date(year, 1, 1)
                days = (date(year + 1, 1, 1) - start).days
                flags = bytes((start + timedelta(days=i)).weekday() < 5 for i in range(days))
            entry = _Year(flags, (0, *accumulate(flags)), from_library)
            self._years[year] = entry
            return entry

    def is_working_day(self, d: date) -> bool:
        return bool(self._year(d.year).flags[d.timetuple().tm_yday - 1])

    def uses_statutory_data(self, year: int) -> bool:
        """False when `year` is beyond the installed chinese-calendar and the weekday rule applies."""
        return self._year(year).from_library

    def working_days_between(self, first: date, last: date) -> int:
        """Working days in [first, last), counted from the per-year prefix sums."""
        count = 0
        d = first
        while d < last:
            entry = self._year(d.year)
            start = d.timetuple().tm_yday - 1
            end = len(entry.flags) if last.year > d.year else last.timetuple().tm_yday - 1
            count += entry.prefix[end] - entry.prefix[start]
            d = date(d.year + 1, 1, 1)
        return count

    def nth_working_day_after(self, d: date, n: int) -> date:
        """The n-th working day after `d` (n >= 1), found by bisecting the per-year prefix sums."""
        if n < 1:
            raise ValueError("n must be at least 1")
        year, index = d.year, d.timetuple().tm_yday  # index of the day after d in its year
        while True:
            entry = self._year(year)
            ahead = entry.prefix[-1] - entry.prefix[index]
            if n <= ahead:
                position = bisect_left(entry.prefix, entry.prefix[index] + n)
                return date(year, 1, 1) + timedelta(days=position - 1)
            n -= ahead
            year, index = year + 1, 0

    # -- conversions --------------------------------------------------------------------------

    def _local(self, t: datetime, name: str) -> datetime:
        """Naive wall-clock time in the office timezone."""
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"{name} is a naive datetime; pass a timezone-aware (UTC) datetime")
        return t.astimezone(self._tz).replace(tzinfo=None)

    def _utc(self, wall: datetime) -> datetime:
        return wall.replace(tzinfo=self._tz).astimezone(UTC)

    def _spans(self, d: date) -> list[tuple[datetime, datetime]]:
        return [(datetime.combine(d, s), datetime.combine(d, e)) for s, e in self.hours.spans]

    # -- wall-clock kernel --------------------------------------------------------------------

    def _next_moment(self, wall: datetime) -> datetime:
        d = wall.date()
        while True:
            if self.is_working_day(d):
                for start, end in self._spans(d):
                    if wall < end:
                        return max(wall, start)
            d += _ONE_DAY
            wall = datetime.combine(d, time.min)

    def _add_days(self, wall: datetime, days: int) -> datetime:
        # `wall` is already inside office hours, so the same clock time on a working day is too.
        return datetime.combine(self.nth_working_day_after(wall.date(), days), wall.time())

    def _add_duration(self, wall: datetime, remaining: timedelta) -> datetime:
        d = wall.date()
        while True:
            if self.is_working_day(d):
                for start, end in self._spans(d):
                    if end <= wall:
                        continue
                    begin = max(wall, start)
                    available = end - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            # Jump over the whole working days in between, keeping some time for the last day.
            whole = (remaining - _EPSILON) // self._day_length
            if whole:
                d = self.nth_working_day_after(d, whole)
                remaining -= self._day_length * whole
            d += _ONE_DAY
            wall = datetime.combine(d, time.min)

    def _between(self, a: datetime, b: datetime) -> timedelta:
        """Working time in [a, b) for wall-clock a <= b: partial first/last days, whole days between."""
        total = _ZERO
        first, last = a.date(), b.date()
        for d in {first, last}:
            if self.is_working_day(d):
                for start, end in self._spans(d):
                    lo, hi = max(start, a), min(end, b)
                    if hi > lo:
                        total += hi - lo
        if last > first + _ONE_DAY:
            total += self._day_length * self.working_days_between(first + _ONE_DAY, last)
        return total

    # -- public API ---------------------------------------------------------------------------

    def next_working_moment(self, t: datetime) -> datetime:
        """`t` itself during office hours, else the start of the next office-hours span."""
        return self._utc(self._next_moment(self._local(t, "t")))

    def add_working_time(self, start: datetime, *, hours: float = 0, days: int = 0) -> datetime:
        """The moment `days` working days and then `hours` working hours after `start`.

        A start outside office hours counts from the next working moment. Whole days keep the clock
        time: 3 working days from Monday 09:00 before a holiday week is 09:00 on the third working
        day after it.
        """
        if hours < 0 or days < 0:
            raise ValueError("hours and days must not be negative")
        wall = self._next_moment(self._local(start, "start"))
        if days:
            wall = self._add_days(wall, days)
        if hours:
            wall = self._add_duration(wall, timedelta(hours=hours))
        return self._utc(wall)

    def working_seconds_between(self, a: datetime, b: datetime) -> float:
        """Working seconds from `a` to `b`; negative when `b` is before `a` (time overdue)."""
        wa, wb = self._local(a, "a"), self._local(b, "b")
        if wb < wa:
            return -self._between(wb, wa).total_seconds()
        return self._between(wa, wb).total_seconds()


DEFAULT_CALENDAR = WorkingCalendar()


def is_working_day(d: date, *, calendar: WorkingCalendar | None = None) -> bool:
    """True on statutory working days, including weekend days that are 调休 working days."""
    return (calendar or DEFAULT_CALENDAR).is_working_day(d)


def next_working_moment(t: datetime, *, calendar: WorkingCalendar | None = None) -> datetime:
    return (calendar or DEFAULT_CALENDAR).next_working_moment(t)


def add_working_time(
    start: datetime, *, hours: float = 0, days: int = 0, calendar: WorkingCalendar | None = None
) -> datetime:
    return (calendar or DEFAULT_CALENDAR).add_working_time(start, hours=hours, days=days)


def working_seconds_between(a: datetime, b: datetime, *, calendar: WorkingCalendar | None = None) -> float:
    return (calendar or DEFAULT_CALENDAR).working_seconds_between(a, b)
