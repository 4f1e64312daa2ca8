"""Synthetic disputes for the demo: recorded by the village centres through the dispute service at
random places of the city over the last three years, mediated, and settled in the village, referred
up to the township or county, escalated by the deadline sweep when the village never took them up, or
still open, so the case timelines behind the figures are real. Most are settled in the village before
the case's deadline, some after it; settled disputes are checked and closed by their centre, a share
rated by the parties on the centre's call-back, and a few carry the scanned agreement. Every party is
made up (names, phones, ID numbers with valid check digits) and every dispute is labelled synthetic.

Volumes: the seed's 13,000+ disputes in three years, about 4,400 a year for the city: "full" makes
13,200; "small" makes a few dozen for the tests."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import shapely
from sqlalchemy.orm import Session
from stdnum.cn import ric

from cityops.cases import demo as cases_demo
from cityops.cases.models import Case
from cityops.core.db import Database
from cityops.core.seeding import Generator, SeedContext, keep_alive
from cityops.governance.disputes import service
from cityops.governance.disputes.schemas import DisputeCreate, OutcomeCreate, PartyIn, SessionCreate
from cityops.places.index import PlaceIndex

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
COUNTS = {"small": 36, "full": 13_200}
HISTORY_DAYS = 3 * 365
BATCH = 500
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌宇浩凯鹏辉"
SUBJECTS = {
    "boundary": ("宅基地边界", "院墙位置", "排水沟走向"),
    "noise": ("夜间施工噪声", "广场舞噪声", "养殖异味噪声"),
    "family": ("赡养老人", "婚姻财产", "继承房屋"),
    "land": ("土地流转费用", "承包地界", "林地权属"),
    "labour": ("拖欠工资", "工伤赔偿", "劳务费结算"),
    "property": ("物业费", "停车位", "电梯维修费用"),
}
PLACES = ("村东头", "村委会旁", "小区3号楼", "集市路口", "学校后街", "文化广场")
MEDIATORS = ("人民调解员", "村法律顾问", "驻村民警", "网格员", "镇司法所调解员")
AGREEMENTS = (
    "双方各让一步，按原界址重砌院墙",
    "一次性补偿到位，双方签字确认",
    "按月支付，三个月内付清",
    "恢复原状，今后互不干扰",
)
Ending = Literal["village", "village_late", "township", "county", "auto", "open"]
# What becomes of a dispute (weights): an agreement in the village before the case's deadline or
# after it, referred up by the mediators once (township) or twice (county), escalated by the deadline
# sweep when the village never took the case up (then settled in the township), or still mediated.
ENDINGS: dict[Ending, int] = {
    "village": 75,
    "village_late": 6,
    "township": 10,
    "county": 3,
    "auto": 4,
    "open": 2,
}
REFERRALS: dict[Ending, int] = {"township": 1, "county": 2}


def _point(rng: random.Random, index: PlaceIndex) -> tuple[float, float, str | None]:
    """A random point of a random grid, and the grid's village."""
    i = rng.randrange(len(index.polygons))
    polygon = index.polygons[i]
    minx, miny, maxx, maxy = polygon.bounds
    for _ in range(30):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if polygon.contains(shapely.Point(x, y)):
            return x, y, index.leaves[i].village_code
    centre = polygon.representative_point()
    return centre.x, centre.y, index.leaves[i].village_code


def _id_number(rng: random.Random) -> str:
    """A synthetic resident ID number with a valid check digit, registered in the city (410600); the
    dispute schema checks it."""
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
    body = f"410600{born:%Y%m%d}{rng.randrange(1, 999):03d}"
    return body + ric.calc_check_digit(body + "0")  # the function ignores the last character


def _party(rng: random.Random) -> PartyIn:
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    return PartyIn(
        name=name,
        phone=f"1{rng.choice('3578')}{rng.randrange(10**9):09d}",
        id_number=_id_number(rng) if rng.random() < 0.8 else None,
        address=f"鹤壁市{rng.choice(PLACES)}{rng.randrange(1, 99)}号（合成）",
    )


class Mediation:
    """The mediation of one dispute on its case's timeline (cityops.cases.demo.Timeline): sessions and
    outcomes recorded by the centre at the case's level, none planned after the end of history."""

    def __init__(self, t: cases_demo.Timeline, dispute_id: int, rng: random.Random) -> None:
        self.t = t
        self.dispute_id = dispute_id
        self.rng = rng

    def _due(self, at: datetime) -> bool:
        if self.t.stopped or at >= self.t.history.now:
            self.t.stopped = True
            return False
        return True

    def meet(self, at: datetime, outcome: Literal["agreement", "continue", "referred"]) -> None:
        if not self._due(at):
            return
        rng = self.rng
        service.add_session(
            self.t.session,
            viewer=self.t.history.staff.centre(self.t.case),
            dispute_id=self.dispute_id,
            now=at,
            data=SessionCreate(
                held_on=at.astimezone(LOCAL_TZ).date(),
                mediator=rng.choice(MEDIATORS),
                place=rng.choice(PLACES),
                outcome=outcome,
            ),
        )
        self.t.at = max(self.t.at, at)

    def settle(self, at: datetime, data: OutcomeCreate) -> None:
        if not self._due(at):
            return
        service.record_outcome(
            self.t.session,
            viewer=self.t.history.staff.centre(self.t.case),
            dispute_id=self.dispute_id,
            now=at,
            data=data,
        )
        self.t.at = max(self.t.at, at)

    def at_level(self, *, refer: bool, late: bool = False, still_open: bool = False) -> None:
        """Mediate at the case's current level: taken up, one or two sessions, then an agreement (or
        a referral up) before the deadline. Late: the mediators were sent early (the case waits
        dispatched, which the sweep does not escalate) and the agreement comes after the deadline.
        Still open: mediation started, then waits on the parties (paused, which the sweep leaves)."""
        t, rng = self.t, self.rng
        window = t.window()
        start = t.at
        t.move("accept", start + window * rng.uniform(0.02, 0.15))
        if late:
            t.move("dispatch", t.at + window * rng.uniform(0.02, 0.1))
        end = start + window * (rng.uniform(1.05, 2.0) if late else rng.uniform(0.3, 0.95))
        sessions = cases_demo.spread(rng, t.at, end - t.at, rng.choice((1, 1, 2)))
        if still_open:
            t.move("start", sessions[0] - timedelta(minutes=5))
            for at in sessions:
                self.meet(at, "continue")
            t.move("pause", t.at + timedelta(minutes=10), reason="等待当事人进一步协商")
            return
        for i, at in enumerate(sessions):
            last = i == len(sessions) - 1
            self.meet(at, ("referred" if refer else "agreement") if last else "continue")
        if refer:
            self.settle(end, OutcomeCreate(kind="referral", reason="本级调解未果，上交上级调处"))
        else:
            self.settle(end, OutcomeCreate(kind="agreement", agreement=rng.choice(AGREEMENTS)))


def make_dispute(
    session: Session,
    rng: random.Random,
    history: cases_demo.History,
    *,
    reported: datetime,
    earlier: list[tuple[list[PartyIn], float, float, str | None]],
    kept: list[Any],
) -> None:
    """A dispute recorded at `reported` by the centre of its village, mediated until its ending.
    `kept`: the session's new objects (cityops.core.seeding.keep_alive), where its case is found."""
    index = history.index
    category = rng.choice(tuple(SUBJECTS))
    subject = rng.choice(SUBJECTS[category])
    if earlier and rng.random() < 0.05:
        # A repeat: the same people again, or the same place again.
        parties, lon, lat, village = rng.choice(earlier)
        if rng.random() < 0.5:
            parties = [_party(rng), _party(rng)]
        else:
            lon, lat, village = _point(rng, index)
    else:
        parties = [_party(rng) for _ in range(rng.choice((2, 2, 2, 3)))]
        lon, lat, village = _point(rng, index)
    earlier.append((parties, lon, lat, village))
    place = rng.choice(PLACES)
    data = DisputeCreate(
        category=category,
        # Titles never carry names: lists show them to roles without pii.view.
        title=f"{place}{subject}纠纷",
        description=f"因{subject}发生争执（合成数据）",
        place=place,
        lon=lon,
        lat=lat,
        parties=parties,
    )
    recorder = history.staff.operators.get(village or "")
    kept.clear()
    dispute = service.create_dispute(
        session, viewer=recorder, data=data, index=index, now=reported, synthetic=True
    )
    ending = rng.choices(tuple(ENDINGS), weights=tuple(ENDINGS.values()))[0]
    case = next(o for o in kept if isinstance(o, Case))
    t = cases_demo.Timeline(session, case, history)
    mediation = Mediation(t, dispute.id, rng)
    if ending == "auto":
        cases_demo.escalate(t, rng, auto=True)
    for _ in range(REFERRALS.get(ending, 0)):
        mediation.at_level(refer=True)
    mediation.at_level(refer=False, late=ending == "village_late", still_open=ending == "open")
    cases_demo.close(t, rng)
    cases_demo.aftercare(t, rng, photo="人民调解协议书.png")


def run(ctx: SeedContext) -> None:
    total = COUNTS[ctx.scale]
    rng = ctx.rng("disputes")
    advance = ctx.task("disputes: synthetic disputes, mediation and outcomes", total=total)
    history = cases_demo.History.load(ctx)
    reported = sorted(history.now - timedelta(days=rng.uniform(0, HISTORY_DAYS)) for _ in range(total))
    earlier: list[tuple[list[PartyIn], float, float, str | None]] = []
    for start in range(0, total, BATCH):
        with history.batch(ctx.db) as session:
            kept = keep_alive(session)
            for at in reported[start : start + BATCH]:
                make_dispute(session, rng, history, reported=at, earlier=earlier, kept=kept)
        advance(min(BATCH, total - start))


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.count_disputes(session) > 0


GENERATOR = Generator(name="disputes", run=run, is_seeded=is_seeded)
