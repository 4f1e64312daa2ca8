"""Joint inspection (进一次门, 查多项事): a year's drawn tasks merged into one visit per entity, put on a
route and scheduled into the inspectors' calendars.

The route is a documented heuristic rather than OR-Tools: a vehicle-routing model of some 30,000 visits
whose teams must meet would not be solved in the plan's 30 s budget, and the teams are fixed by the
random draw anyway. So:
1. visits are grouped by township (the first 9 digits of the village code; the division code when the
   village is unknown), townships taken in code order, which keeps a county's townships together;
2. within a township the route starts at the westernmost visit and always goes on to the nearest one
   not yet taken (equirectangular distance); visits without coordinates close the township, by id;
3. the year sweeps that route: the i-th of n visits starts no earlier than working day i * days // n, so
   each township gets its own weeks instead of every visit crowding into January;
4. from there a visit takes the first working day (core.calendar: statutory holidays skipped, adjusted
   weekend working days kept) on which every member of its team has fewer than `capacity` visits;
   when the year has no such day left the visit stays unscheduled and is counted as such.
An inspector's day thus holds neighbouring visits of the route, in route order."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from cityops.core.calendar import is_working_day


@dataclass(frozen=True)
class Stop:
    """A visit's place: where the entity is, and the township and grid it counts under."""

    entity_id: int
    township: str
    grid: str
    lon: float | None
    lat: float | None


def working_days(start: date, end: date) -> list[date]:
    """The working days in [start, end] on the Chinese statutory calendar."""
    days = []
    d = start
    while d <= end:
        if is_working_day(d):
            days.append(d)
        d += timedelta(days=1)
    return days


def _tour(points: np.ndarray, start: tuple[float, float] | None) -> list[int]:
    """A nearest-neighbour tour of (x, y) points, from the one nearest `start` (else the westernmost)."""
    n = len(points)
    if n == 0:
        return []
    left = np.ones(n, dtype=bool)
    if start is None:
        current = int(np.argmin(points[:, 0]))
    else:
        current = int(np.argmin(((points - np.array(start)) ** 2).sum(axis=1)))
    order = [current]
    left[current] = False
    for _ in range(n - 1):
        remaining = np.flatnonzero(left)
        d2 = ((points[remaining] - points[current]) ** 2).sum(axis=1)
        current = int(remaining[np.argmin(d2)])
        order.append(current)
        left[current] = False
    return order


def _xy(stops: Sequence[Stop], members: Sequence[int], lat0: float) -> np.ndarray:
    return np.array([((stops[i].lon or 0.0) * math.cos(lat0), stops[i].lat or 0.0) for i in members])


def route_order(stops: Sequence[Stop]) -> list[int]:
    """The indices of `stops` in route order (see the module doc): township by township; in a township
    grid by grid, the grids in nearest-neighbour order of their centres; in a grid, nearest neighbour
    from the stop closest to where the previous grid ended."""
    placed = [s for s in stops if s.lat is not None]
    lat0 = math.radians(sum(s.lat or 0.0 for s in placed) / len(placed)) if placed else 0.0
    by_township: dict[str, dict[str, list[int]]] = {}
    for i, stop in enumerate(stops):
        by_township.setdefault(stop.township, {}).setdefault(stop.grid, []).append(i)
    order: list[int] = []
    for township in sorted(by_township):
        grids = by_township[township]
        unplaced: list[int] = []
        located: dict[str, list[int]] = {}
        for grid, members in grids.items():
            for i in members:
                if stops[i].lon is None or stops[i].lat is None:
                    unplaced.append(i)
                else:
                    located.setdefault(grid, []).append(i)
        names = sorted(located)
        centres = (
            np.array([_xy(stops, located[g], lat0).mean(axis=0) for g in names])
            if names
            else np.empty((0, 2))
        )
        last: tuple[float, float] | None = None
        for k in _tour(centres, None):
            members = located[names[k]]
            xy = _xy(stops, members, lat0)
            tour = _tour(xy, last)
            order.extend(members[j] for j in tour)
            last = (float(xy[tour[-1], 0]), float(xy[tour[-1], 1]))
        order.extend(sorted(unplaced, key=lambda i: stops[i].entity_id))
    return order


def schedule(teams: Sequence[Collection[int]], days: int, capacity: int) -> list[int | None]:
    """The working day (an index into the year's working days) of each visit, taken in route order, or
    None when no day is left with room for the whole team.

    Each inspector's full days are skipped through a "next free day" pointer with path compression, so
    a visit costs about one look per team member even late in a crowded year."""
    if capacity < 1:
        raise ValueError("capacity must be at least 1 visit per inspector and day")
    n = len(teams)
    load: dict[int, bytearray] = {}
    nxt: dict[int, list[int]] = {}  # nxt[u][d]: a day >= d that may be free for u (d itself if free)

    def free(user: int, day: int) -> int:
        pointers = nxt[user]
        root = day
        while root < days and pointers[root] != root:
            root = pointers[root]
        while day < days and pointers[day] != day:  # compress the path
            pointers[day], day = root, pointers[day]
        return root

    out: list[int | None] = []
    for i, team in enumerate(teams):
        for user in team:
            if user not in load:
                load[user] = bytearray(days)
                nxt[user] = list(range(days + 1))
        day = i * days // n if n else 0
        while day < days:
            latest = max(free(user, day) for user in team)
            if latest == day:
                break
            day = latest
        if day >= days:
            out.append(None)
            continue
        for user in team:
            load[user][day] += 1
            if load[user][day] >= capacity:
                nxt[user][day] = day + 1
        out.append(day)
    return out
