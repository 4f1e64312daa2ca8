"""Synthetic duty rosters and village contacts for the demo, set through the centres service: a
roster for today and the next 6 days of every centre, and for every village its police officer, legal
adviser and mediation organisation. "small" covers a handful of centres (the city, the counties and
two townships with three villages each). People and phones are made up and labelled synthetic."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from cityops.core.auth.models import OrgUnit
from cityops.core.db import Database
from cityops.core.seeding import Generator, SeedContext
from cityops.governance.centres import service
from cityops.governance.centres.schemas import ContactIn, DutyIn, RosterSet, TrioSet

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌宇浩凯鹏辉"
LAW_FIRMS = ("河南淇河律师事务所", "鹤壁朝歌律师事务所", "河南浚州律师事务所", "鹤壁山城律师事务所")
BATCH = 200


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"


def _short(unit: OrgUnit) -> str:
    return unit.name.removesuffix("综治中心")


def _centres(ctx: SeedContext) -> list[OrgUnit]:
    with ctx.db.sessions() as session:
        units = list(
            session.scalars(select(OrgUnit).where(OrgUnit.kind == "centre").order_by(OrgUnit.division_code))
        )
        session.expunge_all()
    if ctx.scale == "full":
        return units
    townships = [u for u in units if u.level == "township"][:2]
    villages = [
        v
        for t in townships
        for v in [u for u in units if u.level == "village" and u.division_code.startswith(t.division_code)][
            :3
        ]
    ]
    return [u for u in units if u.level in ("city", "county")] + townships + villages


def run(ctx: SeedContext) -> None:
    rng = ctx.rng("centres")
    units = _centres(ctx)
    by_code = {u.division_code: u for u in units}
    advance = ctx.task("centres: duty rosters and village contacts", total=len(units))
    day = service.today()
    shifts = ("day", "night") if ctx.scale == "full" else ("day",)
    for start in range(0, len(units), BATCH):
        with ctx.db.session() as session:
            for unit in units[start : start + BATCH]:
                entries = [
                    DutyIn(
                        duty_date=day + timedelta(days=i),
                        shift=shift,
                        person_name=_name(rng),
                        phone=_phone(rng),
                    )
                    for i in range(service.ROSTER_DAYS)
                    for shift in shifts
                ]
                service.set_roster(
                    session,
                    viewer=None,
                    code=unit.division_code,
                    data=RosterSet(entries=entries),
                    synthetic=True,
                )
                if unit.level != "village":
                    continue
                township = by_code.get(unit.division_code[:9])
                station = f"{_short(township)}派出所" if township else "辖区派出所"
                service.set_trio(
                    session,
                    viewer=None,
                    code=unit.division_code,
                    synthetic=True,
                    data=TrioSet(
                        police=ContactIn(name=_name(rng), phone=_phone(rng), organisation=station),
                        legal=ContactIn(
                            name=_name(rng), phone=_phone(rng), organisation=rng.choice(LAW_FIRMS)
                        ),
                        mediation=ContactIn(
                            name=_name(rng), phone=_phone(rng), organisation=f"{_short(unit)}人民调解委员会"
                        ),
                    ),
                )
        advance(min(BATCH, len(units) - start))


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.count_duties(session) > 0


GENERATOR = Generator(name="centres", run=run, is_seeded=is_seeded)
