"""The live simulator of `./run demo`: new citizen reports, grid workers' visits that find an issue,
and problems reported on the spot, at a steady rate, through the same service functions as real
input. Each makes one case; everything is labelled synthetic (the visits and issues by their flag, the
citizen reports by 【模拟】 in the title).

The rate is kept by a schedule (event k is due at start + k / rate), not by sleeping a fixed time
after each event, so slow events do not slow the rate down. A stop request (Ctrl-C, SIGTERM or
`stop()`) lets the event under way commit, then ends the run.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from cityops.cases import service as cases_service
from cityops.cases.schemas import CaseCreate
from cityops.core.auth.models import User
from cityops.core.db import Database, utcnow
from cityops.core.errors import CityopsError
from cityops.governance.visits import demo as visits_demo
from cityops.governance.visits import service as visits_service
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

log = logging.getLogger(__name__)
LABEL = "【模拟】"
# What a citizen reports, as (type, category, title, fields).
CITIZEN_REPORTS: tuple[tuple[str, str, str, dict[str, object]], ...] = (
    ("urban", "garbage", "小区门口垃圾无人清运", {}),
    ("urban", "stall", "路口占道经营影响通行", {}),
    ("urban", "roads", "路面塌陷出现大坑", {}),
    ("urban", "lighting", "整条街路灯不亮", {}),
    ("urban", "water", "下水道堵塞污水外溢", {}),
    ("dispute", "noise", "楼上夜间噪声扰民", {"parties": 2}),
    ("hazard", "other", "空置房屋门窗破损有安全隐患", {"immediate_danger": False}),
)
# Kinds of event and their weights.
KINDS = ("citizen_report", "visit", "grid_report")
WEIGHTS = (5, 3, 2)


@dataclass
class Report:
    events: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    failures: int = 0


class Simulator:
    """Adds one event every 1/rate seconds for `duration` seconds (None: until stopped).

    `clock` and `wait` are injectable so a test can run the schedule without real time passing:
    `wait(seconds)` returns True when a stop was requested meanwhile."""

    def __init__(
        self,
        db: Database,
        *,
        rate: float,
        duration: float | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError("rate must be a positive number of events per second")
        if duration is not None and duration < 0:
            raise ValueError("duration must not be negative")
        self.db = db
        self.rate = rate
        self.duration = duration
        self.rng = random.Random(seed)
        self.clock = clock
        self._stop = threading.Event()
        self.wait = wait or self._stop.wait
        self.index: PlaceIndex | None = None
        self.workers: dict[str, User] = {}

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _prepare(self) -> None:
        with self.db.sessions() as session:
            self.index = places_service.build_index(session)
            self.workers = visits_service.recorders(session)
        if len(self.index.polygons) == 0:
            raise RuntimeError("no places in the database; run `cityops seed` first")

    def citizen_report(self) -> bool:
        assert self.index is not None
        type_code, category, title, fields = self.rng.choice(CITIZEN_REPORTS)
        lon, lat = places_service.random_point(self.rng, self.index)
        name = visits_demo.person_name(self.rng)
        data = CaseCreate(
            type_code=type_code,
            category=category,
            title=LABEL + title,
            description=f"{title}，请尽快处理。（演示模拟数据）",
            lon=lon,
            lat=lat,
            reporter_name=name,
            reporter_phone=visits_demo.mobile(self.rng),
            source=self.rng.choice(("web", "open311")),
            fields=dict(fields),
        )
        with self.db.session() as session:
            cases_service.report_case(session, data=data, index=self.index)
        return True

    def visit(self) -> bool:
        assert self.index is not None
        with self.db.session() as session:
            return visits_demo.make_visit_with_issue(
                session, self.rng, self.index, self.workers, now=utcnow()
            )

    def grid_report(self) -> bool:
        assert self.index is not None
        with self.db.session() as session:
            return visits_demo.make_problem_report(session, self.rng, self.index, self.workers, now=utcnow())

    def event(self) -> str | None:
        """One event of a random kind; the kind made, or None when nothing could be made."""
        kind = self.rng.choices(KINDS, weights=WEIGHTS)[0]
        made = {"citizen_report": self.citizen_report, "visit": self.visit, "grid_report": self.grid_report}[
            kind
        ]()
        if not made and kind != "citizen_report":  # no recorder where the dice fell: a citizen reports
            kind, made = "citizen_report", self.citizen_report()
        return kind if made else None

    def run(self) -> Report:
        self._prepare()
        report = Report()
        start = self.clock()
        end = None if self.duration is None else start + self.duration
        k = 0
        while not self.stopping:
            due = start + k / self.rate
            if end is not None and due >= end:
                break
            delay = due - self.clock()
            if delay > 0 and self.wait(delay):
                break
            try:
                kind = self.event()
            except CityopsError as exc:  # e.g. a place without a route: skip it, keep the rate
                log.warning("simulator event failed: %s", exc.message)
                report.failures += 1
                kind = None
            if kind is not None:
                report.events += 1
                report.by_kind[kind] += 1
            k += 1
        return report
