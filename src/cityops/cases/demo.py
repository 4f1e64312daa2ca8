"""Synthetic cases for the demo, and the synthetic history every generator of cases shares.

The cases generator reports cases at random points of the city over the last three years (small: 300,
full: 1,000; the disputes and grid visits generators add their own). Every case goes through intake
and is then taken along its workflow by the service, as the people who would act: the operator of the
centre at the case's level, the handler of the department that owns its category, or the system when
nobody took the case up by its deadline (as the deadline sweep does). What becomes of a case is drawn
from FATES: most are handled on time at the level they were reported to; some late (the unit they were
dispatched to came after the deadline); some escalated by the sweep or by the centre and handled one
level up; some rejected; a few wait on the reporter. Moves planned after now are not made, so the
newest cases are still open. A share of closed cases has the reporter's rating from the centre's
call-back (a low one reopens the case, which is handled again), and a few carry a photo.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.cases import attachments, feedback, routing, service
from cityops.cases import types as case_types
from cityops.cases.models import Case
from cityops.cases.schemas import ActionRequest, CaseCreate
from cityops.cases.workflow import WORKFLOWS
from cityops.core.auth.models import OrgUnit, User
from cityops.core.db import Database
from cityops.core.seeding import Generator, Scale, SeedContext
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

COUNTS = {"small": 300, "full": 1_000}
# The newest reports, made in the last hours and still waiting for their centre.
NEW = {"small": 4, "full": 10}
HISTORY_DAYS = 3 * 365
BATCH = 500
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文"
TITLES = {
    "dispute": ("{name}与邻居因{what}发生争执", ("宅基地边界", "排水沟", "占用通道", "树木遮光", "噪声")),
    "urban": ("{place}附近{what}", ("垃圾堆放未清运", "占道经营", "路面坑洼", "路灯不亮", "下水道堵塞")),
    "hazard": ("{place}发现{what}", ("私拉电线", "燃气管道老化", "墙体开裂", "消防通道堵塞", "违规动火")),
}
PLACES = ("村委会", "菜市场", "学校门口", "十字路口", "小区东门", "卫生院", "文化广场", "老街")

Fate = Literal["on_time", "late", "auto", "escalate", "reject", "waiting"]
# What becomes of a case (weights): handled at its level on time or late, escalated by the deadline
# sweep ("auto") or by the centre and handled one level up, rejected, or waiting on the reporter.
FATES: dict[Fate, int] = {"on_time": 81, "late": 7, "auto": 5, "escalate": 3, "reject": 3, "waiting": 1}
# Closed cases whose reporter the centre calls back for a rating, and the ratings they give (5 to 1).
RATED_SHARE = 0.2
RATINGS = (55, 28, 11, 4, 2)
COMMENTS = {5: "处理及时，很满意", 4: "基本满意", 3: "处理一般", 2: "处理太慢", 1: "问题没有解决"}
# Every so many closed cases, one gets a photo of the finished work.
PHOTO_EVERY = {"small": 8, "full": 40}
# States of a case that has just arrived at its level (the standard workflow accepts it first).
ARRIVED = frozenset({"reported", "escalated", "delegated", "reopened"})


# --- who acts, and what a generator shares ------------------------------------------------------


@dataclass(frozen=True)
class Staff:
    """Who acts in the synthetic history: the operator of each centre by its division code and the
    handler of each department by its org unit id (demo accounts; without them the system acts)."""

    operators: Mapping[str, User]
    handlers: Mapping[int, User]

    def centre(self, case: Case) -> User | None:
        return self.operators.get(routing.division_at(case.village_code, case.level))

    def handler(self, case: Case) -> User | None:
        return self.handlers.get(case.org_unit_id or 0) or self.centre(case)


def load_staff(session: Session) -> Staff:
    users = session.scalars(select(User).where(
        User.is_demo.is_(True), User.is_active.is_(True),
        User.role.in_(("centre_operator", "department_handler"))).order_by(User.id)).all()
    for user in users:
        session.expunge(user)
    return Staff(
        operators={u.scope_code: u for u in users if u.role == "centre_operator" and u.scope_code},
        handlers={u.org_unit_id: u for u in users if u.role == "department_handler" and u.org_unit_id},
    )


@dataclass
class History:
    """What a generator of synthetic history needs: the places, the staff, the moment history ends,
    where files go, and the unit ids its sessions share."""

    index: PlaceIndex
    staff: Staff
    now: datetime
    files_root: Path
    scale: Scale
    units: dict[str, OrgUnit | None] = field(default_factory=dict)
    # Closed cases so far, for PHOTO_EVERY.
    closed: int = 0

    @classmethod
    def load(cls, ctx: SeedContext) -> History:
        with ctx.db.session() as session:
            return cls(index=places_service.build_index(session), staff=load_staff(session), now=ctx.now,
                       files_root=ctx.files_root, scale=ctx.scale)

    @contextmanager
    def batch(self, db: Database) -> Iterator[Session]:
        """A unit of work for a batch of records, sharing the unit ids looked up so far."""
        with db.session() as session:
            routing.share_unit_cache(session, self.units)
            yield session


# --- one case's life ----------------------------------------------------------------------------


def _workflow(case: Case) -> str:
    return case_types.registry().find(case.type_code).workflow


def allows(case: Case, action: str) -> bool:
    """Whether the case's workflow has this move in its state at its level."""
    transition = WORKFLOWS[_workflow(case)].get((case.status, action))
    return transition is not None and case.level in transition.levels


class Timeline:
    """One case taken along its workflow at given moments. A move planned after the end of history is
    not made, nor anything after it."""

    def __init__(self, session: Session, case: Case, history: History) -> None:
        self.session = session
        self.case = case
        self.history = history
        self.at = case.created_at
        self.stopped = False

    def move(self, action: str, at: datetime, *, by: Literal["centre", "handler", "system"] = "centre",
             reason: str | None = None, result: str | None = None) -> None:
        if self.stopped or at >= self.history.now:
            self.stopped = True
            return
        staff = self.history.staff
        if by == "system":
            actor = None
        elif by == "handler":
            actor = staff.handler(self.case)
        else:
            actor = staff.centre(self.case)
        at = max(at, self.at)
        self.case = service.act(self.session, actor=actor, case_id=self.case.id, action=action, now=at,
                                body=ActionRequest(version=self.case.version, reason=reason, result=result))
        self.at = at

    def window(self) -> timedelta:
        """From the timeline's last moment to the case's deadline (at least half an hour)."""
        deadline = self.case.deadline_at or self.at + timedelta(days=1)
        return max(deadline - self.at, timedelta(minutes=30))


def spread(rng: random.Random, start: datetime, span: timedelta, count: int) -> list[datetime]:
    """`count` increasing moments within `span` after `start`."""
    return [start + span * f for f in sorted(rng.uniform(0.02, 1) for _ in range(count))]


def work(t: Timeline, rng: random.Random, *, late: bool = False, pause: bool = False) -> None:
    """Handle the case at its level: taken up (the standard workflow accepts, then the centre or the
    department that owns the category starts; the report workflow dispatches), started and resolved
    before the deadline. Late: dispatched in time, but the unit comes after the deadline and resolves
    the case on the spot (the sweep escalates a started case past its deadline, not a dispatched one).
    `pause`: started, then waiting on the reporter (the sweep leaves paused cases alone)."""
    standard = _workflow(t.case) == "standard"
    steps = ["accept"] if standard and t.case.status in ARRIVED else []
    if not standard or late:
        steps.append("dispatch")
    window = t.window()
    done = t.at + window * rng.uniform(0.25, 0.95)
    if late:
        for step, at in zip(steps, spread(rng, t.at, window * 0.5, len(steps)), strict=True):
            t.move(step, at)
        start = t.at + window * rng.uniform(1.05, 2.0)
        t.move("start", start, by="handler")
        t.move("resolve", start + timedelta(seconds=rng.uniform(10, 50)), by="handler", result="已处置完毕")
        return
    moments = spread(rng, t.at, done - t.at, len(steps) + 1)
    for step, at in zip(steps, moments, strict=False):
        t.move(step, at)
    t.move("start", moments[-1], by="handler")
    if pause:
        t.move("pause", done, by="handler", reason="等待反映人补充情况")
    else:
        t.move("resolve", done, by="handler", result="已处置完毕")


def close(t: Timeline, rng: random.Random) -> None:
    """A resolved case checked (standard workflow) and closed by its centre."""
    if t.case.status != "resolved":
        return
    if _workflow(t.case) == "standard":
        t.move("verify", t.at + timedelta(hours=rng.uniform(1, 48)))
    t.move("close", t.at + timedelta(hours=rng.uniform(0.2, 24)))


def escalate(t: Timeline, rng: random.Random, *, auto: bool) -> None:
    """One level up: by the sweep just after the deadline of a case nobody took up, or by the centre
    that took it up and cannot handle it."""
    if auto:
        if allows(t.case, "escalate") and t.case.deadline_at is not None:
            t.move("escalate", t.case.deadline_at + timedelta(seconds=rng.uniform(1, 59)), by="system",
                   reason=service.AUTO_REASON)
        return
    window = t.window()
    if _workflow(t.case) == "standard":
        t.move("accept", t.at + window * rng.uniform(0.02, 0.2))
    if allows(t.case, "escalate"):
        t.move("escalate", t.at + window * rng.uniform(0.1, 0.5), reason="本级无法处置，请上级协调")


def live(t: Timeline, rng: random.Random, fate: Fate) -> None:
    """Take a newly reported case along the path of its fate, closing what was resolved."""
    if fate == "reject":
        t.move("reject", t.at + t.window() * rng.uniform(0.02, 0.3), reason="不属于受理范围")
        return
    if fate in ("auto", "escalate"):
        escalate(t, rng, auto=fate == "auto")
    work(t, rng, late=fate == "late", pause=fate == "waiting")
    close(t, rng)


def call_back(t: Timeline, rng: random.Random) -> None:
    """The centre calls the reporter of a closed case back and records their rating; a low rating
    reopens the case, which is then handled again."""
    viewer = t.history.staff.centre(t.case)
    at = t.at + timedelta(hours=rng.uniform(2, 72))
    if t.case.status != "closed" or viewer is None or at >= t.history.now:
        return
    rating = rng.choices((5, 4, 3, 2, 1), weights=RATINGS)[0]
    comment = COMMENTS[rating] if rng.random() < 0.5 else None
    feedback.give(t.session, viewer=viewer, case_id=t.case.id, now=at,
                  body=feedback.FeedbackCreate(rating=rating, comment=comment))
    t.at = at
    if t.case.status == "reopened":
        work(t, rng)
        close(t, rng)


def png(rng: random.Random, width: int = 40, height: int = 30) -> bytes:
    """A small generated picture: a colour gradient crossed by a darker band, different per draw."""
    r, g, b = (rng.randrange(256) for _ in range(3))
    band = rng.randrange(height)
    rows = b"".join(
        b"\x00" + b"".join(bytes(((r + 5 * x) % 256, (g + 7 * y) % 256, b // 3 if abs(y - band) < 3 else b))
                           for x in range(width))
        for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def aftercare(t: Timeline, rng: random.Random, *, photo: str, by: User | None = None) -> None:
    """After the closing: every PHOTO_EVERY-th closed case gets a photo (`photo` is its file name)
    uploaded by `by` (default: the centre), and a share is rated on a call-back."""
    if t.case.status != "closed":
        return
    history = t.history
    history.closed += 1
    uploader = by or history.staff.centre(t.case)
    if uploader is not None and history.closed % PHOTO_EVERY[history.scale] == 1:
        attachments.attach(t.session, viewer=uploader, case_id=t.case.id, root=history.files_root,
                           data=png(rng), media_type="image/png", filename=photo,
                           now=t.at + timedelta(minutes=rng.uniform(1, 30)))
    if rng.random() < RATED_SHARE:
        call_back(t, rng)


# --- the cases generator ------------------------------------------------------------------------


def _fields(rng: random.Random, case_type: case_types.CaseType) -> dict[str, object]:
    values: dict[str, object] = {}
    for spec in case_type.fields:
        if not spec.required and rng.random() < 0.5:
            continue
        if spec.type == "integer":
            low = int(spec.min if spec.min is not None else 0)
            values[spec.name] = rng.randint(low, max(low, min(int(spec.max or 10), low + 5)))
        elif spec.type == "number":
            values[spec.name] = round(rng.uniform(0, 50_000), 2)
        elif spec.type == "boolean":
            values[spec.name] = rng.random() < 0.2
        elif spec.type == "choice" and spec.options:
            values[spec.name] = rng.choice(spec.options)
    return values


def make_case(session: Session, rng: random.Random, history: History, *, reported: datetime,
              fate: Fate | None) -> None:
    """A citizen's report at `reported`, taken along the path of its fate (None: left new)."""
    case_type = rng.choice(case_types.registry().reportable())
    categories = [c for c in case_type.all_categories() if not c.children]
    category = rng.choice(categories)
    pattern, whats = TITLES.get(case_type.code, ("{place}{what}", ("问题",)))
    name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
    title = pattern.format(name=name, place=rng.choice(PLACES), what=rng.choice(whats))
    lon, lat = places_service.random_point(rng, history.index)
    phone = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
    data = CaseCreate(
        type_code=case_type.code, category=category.code, title=title, description=f"{title}，请尽快处理。",
        lon=lon, lat=lat, reporter_name=name, reporter_phone=phone,
        source=rng.choice(("web", "web", "grid_worker", "grid_worker", "police", "open311")),
        fields=_fields(rng, case_type),
    )
    case = service.report_case(session, data=data, index=history.index, now=reported)
    if fate is None:
        return
    t = Timeline(session, case, history)
    live(t, rng, fate)
    aftercare(t, rng, photo="处置后现场.png")


def draw_fate(rng: random.Random, weights: Mapping[Fate, int] = FATES) -> Fate:
    return rng.choices(tuple(weights), weights=tuple(weights.values()))[0]


def run(ctx: SeedContext) -> None:
    total, new = COUNTS[ctx.scale], NEW[ctx.scale]
    rng = ctx.rng("cases")
    advance = ctx.task("cases: synthetic reports and their handling", total=total)
    history = History.load(ctx)
    # Oldest first, so case numbers follow the reporting order within each year; the last few are
    # today's new reports.
    moments = sorted(history.now - timedelta(days=rng.uniform(1, HISTORY_DAYS)) for _ in range(total - new))
    moments += sorted(history.now - timedelta(hours=rng.uniform(0.1, 3)) for _ in range(new))
    for start in range(0, total, BATCH):
        with history.batch(ctx.db) as session:
            for i, reported in enumerate(moments[start:start + BATCH], start):
                make_case(session, rng, history, reported=reported,
                          fate=draw_fate(rng) if i < total - new else None)
        advance(min(BATCH, total - start))


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.count_cases(session) > 0


GENERATOR = Generator(name="cases", run=run, is_seeded=is_seeded)
