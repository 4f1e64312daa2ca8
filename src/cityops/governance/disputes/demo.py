"""Synthetic disputes for the demo: recorded through the dispute service at random places of the city
over the last three years, mediated, and settled in the village, referred up or still open, so the
case timelines behind the figures are real. Every party is made up (names, phones, ID numbers with
valid check digits) and every dispute is labelled synthetic.

Volumes: the seed's 13,000+ disputes in three years are about 4,400 a year for the city. Each dispute
goes through the case service (intake, 3 to 8 workflow steps, about 11 ms), so "full" makes 4,400
spread over the three years (a third of the seed's volume) to keep this generator within a minute;
"small" makes a few dozen for the tests."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import shapely
from sqlalchemy.orm import Session
from stdnum.cn import ric

from cityops.core.db import Database, utcnow
from cityops.core.seeding import Generator, SeedContext
from cityops.governance.disputes import service
from cityops.governance.disputes.schemas import DisputeCreate, OutcomeCreate, PartyIn, SessionCreate
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# The seed's three years would be 13,200: see the module note.
COUNTS = {"small": 36, "full": 4_400}
HISTORY_DAYS = 3 * 365
BATCH = 200
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
# What becomes of a dispute: (weight, referrals before the agreement, or None to stay open).
ENDINGS: tuple[tuple[int, int | None], ...] = ((78, 0), (12, 1), (3, 2), (7, None))


def _point(rng: random.Random, index: PlaceIndex) -> tuple[float, float]:
    polygon = index.polygons[rng.randrange(len(index.polygons))]
    minx, miny, maxx, maxy = polygon.bounds
    for _ in range(30):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if polygon.contains(shapely.Point(x, y)):
            return x, y
    centre = polygon.representative_point()
    return centre.x, centre.y


def _id_number(rng: random.Random) -> str:
    """A synthetic resident ID number with a valid check digit, registered in the city (410600)."""
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
    body = f"410600{born:%Y%m%d}{rng.randrange(1, 999):03d}"
    return str(ric.validate(body + ric.calc_check_digit(body + "0")))


def _party(rng: random.Random) -> PartyIn:
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
    return PartyIn(
        name=name,
        phone=f"1{rng.choice('3578')}{rng.randrange(10**9):09d}",
        id_number=_id_number(rng) if rng.random() < 0.8 else None,
        address=f"鹤壁市{rng.choice(PLACES)}{rng.randrange(1, 99)}号（合成）",
    )


def make_dispute(
    session: Session,
    rng: random.Random,
    index: PlaceIndex,
    *,
    reported: datetime,
    earlier: list[tuple[list[PartyIn], float, float]],
) -> None:
    category = rng.choice(tuple(SUBJECTS))
    subject = rng.choice(SUBJECTS[category])
    if earlier and rng.random() < 0.05:
        # A repeat: the same people again, or the same place again.
        parties, lon, lat = rng.choice(earlier)
        if rng.random() < 0.5:
            parties = [_party(rng), _party(rng)]
        else:
            lon, lat = _point(rng, index)
    else:
        parties = [_party(rng) for _ in range(rng.choice((2, 2, 2, 3)))]
        lon, lat = _point(rng, index)
    earlier.append((parties, lon, lat))
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
    dispute = service.create_dispute(
        session, viewer=None, data=data, index=index, now=reported, synthetic=True
    )
    weights, endings = zip(*ENDINGS, strict=True)
    referrals = rng.choices(endings, weights=weights)[0]
    at, now = reported, utcnow()
    for step in range((referrals or 0) + 1):
        at += timedelta(hours=rng.uniform(4, 60))
        if at >= now:
            return
        held_on = at.astimezone(LOCAL_TZ).date()
        final = referrals is not None and step == referrals
        outcome = "agreement" if final else ("continue" if referrals is None else "referred")
        service.add_session(
            session,
            viewer=None,
            dispute_id=dispute.id,
            now=at,
            data=SessionCreate(
                held_on=held_on, mediator=rng.choice(MEDIATORS), place=rng.choice(PLACES), outcome=outcome
            ),
        )
        if referrals is None:
            return
        if final:
            service.record_outcome(
                session,
                viewer=None,
                dispute_id=dispute.id,
                now=at,
                data=OutcomeCreate(kind="agreement", agreement=rng.choice(AGREEMENTS)),
            )
        else:
            service.record_outcome(
                session,
                viewer=None,
                dispute_id=dispute.id,
                now=at,
                data=OutcomeCreate(kind="referral", reason="本级调解未果，上交上级调处"),
            )


def run(ctx: SeedContext) -> None:
    total = COUNTS[ctx.scale]
    rng = ctx.rng("disputes")
    advance = ctx.task("disputes: synthetic disputes, mediation and outcomes", total=total)
    with ctx.db.session() as session:
        index = places_service.build_index(session)
    now = utcnow()
    reported = sorted(now - timedelta(days=rng.uniform(0, HISTORY_DAYS)) for _ in range(total))
    earlier: list[tuple[list[PartyIn], float, float]] = []
    for start in range(0, total, BATCH):
        with ctx.db.session() as session:
            for at in reported[start : start + BATCH]:
                make_dispute(session, rng, index, reported=at, earlier=earlier)
        advance(min(BATCH, total - start))


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.count_disputes(session) > 0


GENERATOR = Generator(name="disputes", run=run, is_seeded=is_seeded)
