"""Demo accounts for synthetic Hebi: the 46 city departments, a governance centre (综治中心) for every
division from village to city, and accounts for every role at several levels.

Every account is `is_demo` and shares one documented password (printed by `cityops users list --demo`).
argon2 is slow by design, so the password is hashed once and the hash reused. Demo accounts are never
created in production.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session
from stdnum.cn import ric

from cityops.accounts import service
from cityops.config import get_settings
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.security import hash_password
from cityops.core.db import Database, utcnow
from cityops.core.seeding import Generator, SeedContext
from cityops.places import service as places_service

DEMO_PASSWORD = "hebi-demo-2024"
CITY_NAME = "鹤壁市"

# (code suffix, Chinese name, English name): the city's departments as the seed counts them (46).
DEPARTMENTS: tuple[tuple[str, str, str], ...] = (
    ("drc", "鹤壁市发展和改革委员会", "Hebi Development and Reform Commission"),
    ("education", "鹤壁市教育局", "Hebi Education Bureau"),
    ("science", "鹤壁市科学技术局", "Hebi Science and Technology Bureau"),
    ("industry", "鹤壁市工业和信息化局", "Hebi Industry and Information Technology Bureau"),
    ("police", "鹤壁市公安局", "Hebi Public Security Bureau"),
    ("civil-affairs", "鹤壁市民政局", "Hebi Civil Affairs Bureau"),
    ("justice", "鹤壁市司法局", "Hebi Justice Bureau"),
    ("finance", "鹤壁市财政局", "Hebi Finance Bureau"),
    ("hrss", "鹤壁市人力资源和社会保障局", "Hebi Human Resources and Social Security Bureau"),
    ("planning", "鹤壁市自然资源和规划局", "Hebi Natural Resources and Planning Bureau"),
    ("environment", "鹤壁市生态环境局", "Hebi Ecology and Environment Bureau"),
    ("housing", "鹤壁市住房和城乡建设局", "Hebi Housing and Urban-Rural Development Bureau"),
    ("urban", "鹤壁市城市管理局", "Hebi Urban Management Bureau"),
    ("transport", "鹤壁市交通运输局", "Hebi Transport Bureau"),
    ("water", "鹤壁市水利局", "Hebi Water Resources Bureau"),
    ("agriculture", "鹤壁市农业农村局", "Hebi Agriculture and Rural Affairs Bureau"),
    ("commerce", "鹤壁市商务局", "Hebi Commerce Bureau"),
    ("culture", "鹤壁市文化广电和旅游局", "Hebi Culture, Radio, Television and Tourism Bureau"),
    ("health", "鹤壁市卫生健康委员会", "Hebi Health Commission"),
    ("veterans", "鹤壁市退役军人事务局", "Hebi Veterans Affairs Bureau"),
    ("emergency", "鹤壁市应急管理局", "Hebi Emergency Management Bureau"),
    ("audit", "鹤壁市审计局", "Hebi Audit Bureau"),
    ("sasac", "鹤壁市人民政府国有资产监督管理委员会", "Hebi State-owned Assets Supervision Commission"),
    ("market", "鹤壁市市场监督管理局", "Hebi Market Supervision Administration"),
    ("sports", "鹤壁市体育局", "Hebi Sports Bureau"),
    ("statistics", "鹤壁市统计局", "Hebi Statistics Bureau"),
    ("medical-security", "鹤壁市医疗保障局", "Hebi Healthcare Security Bureau"),
    ("petitions", "鹤壁市信访局", "Hebi Letters and Calls Bureau"),
    ("big-data", "鹤壁市政务服务和大数据管理局", "Hebi Government Services and Big Data Bureau"),
    ("offices", "鹤壁市机关事务管理局", "Hebi Government Offices Administration"),
    ("finance-regulation", "鹤壁市地方金融监督管理局", "Hebi Local Financial Supervision Bureau"),
    ("civil-defence", "鹤壁市人民防空办公室", "Hebi Civil Air Defence Office"),
    ("ethnic-religious", "鹤壁市民族宗教事务局", "Hebi Ethnic and Religious Affairs Bureau"),
    ("grain", "鹤壁市粮食和物资储备局", "Hebi Grain and Material Reserves Bureau"),
    ("rural", "鹤壁市乡村振兴局", "Hebi Rural Revitalisation Bureau"),
    ("provident-fund", "鹤壁市住房公积金管理中心", "Hebi Housing Provident Fund Management Centre"),
    ("supply-coop", "鹤壁市供销合作社", "Hebi Supply and Marketing Cooperative"),
    ("fire", "鹤壁市消防救援支队", "Hebi Fire and Rescue Detachment"),
    ("weather", "鹤壁市气象局", "Hebi Meteorological Bureau"),
    ("tax", "国家税务总局鹤壁市税务局", "Hebi Taxation Bureau"),
    ("trading", "鹤壁市公共资源交易中心", "Hebi Public Resources Trading Centre"),
    ("archives", "鹤壁市档案馆", "Hebi Archives"),
    ("court", "鹤壁市中级人民法院", "Hebi Intermediate People's Court"),
    ("procuratorate", "鹤壁市人民检察院", "Hebi People's Procuratorate"),
    ("women", "鹤壁市妇女联合会", "Hebi Women's Federation"),
    ("unions", "鹤壁市总工会", "Hebi Federation of Trade Unions"),
)
assert len(DEPARTMENTS) == 46

# Preferred places for the documented accounts (real NBS codes); the first division available is
# used instead when a smaller places set lacks one.
PREFERRED = {
    "county": "410611",        # 淇滨区
    "county2": "410621",       # 浚县
    "township": "410611100",   # 大赉店镇
    "township2": "410611101",  # 钜桥镇
}

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌宇浩凯鹏辉晶婷雪琳丹颖"


# The documented accounts, in the order `cityops users list --demo` prints them, with what each is for.
DEMO_NOTES: dict[str, str] = {
    "admin": "administrator, whole city",
    "leader": "city leader (dashboards)",
    "city.operator": "city governance centre",
    "duty.officer": "duty officer of the city (warnings: issue, confirm stations)",
    "county.operator": "county governance centre",
    "county2.operator": "another county's centre",
    "township.operator": "township centre; village 1 lies inside, village 2 not",
    "village1.operator": "village 1 centre",
    "village1.grid": "grid worker in village 1",
    "village2.operator": "village 2 centre (another township)",
    "village2.grid": "grid worker in village 2",
    "police.handler": "Public Security Bureau",
    "housing.handler": "Housing and Urban-Rural Development Bureau",
    "emergency.handler": "Emergency Management Bureau",
    "inspector": "market regulation inspector, whole city",
    "enterprise": "an enterprise's account",
    "citizen": "a resident",
}
DEMO_USERNAMES = tuple(DEMO_NOTES)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    org_unit_code: str | None
    scope_code: str | None


def dept_code(slug: str) -> str:
    return f"dept-{slug}"


def centre_code(division_code: str) -> str:
    return f"centre-{division_code}"


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def mobile(rng: random.Random) -> str:
    return rng.choice(("139", "138", "137", "186", "158")) + f"{rng.randrange(10**8):08d}"


def resident_id(rng: random.Random, area: str) -> str:
    """A well-formed synthetic resident ID number: valid birth date, check digit and a region code
    that existed in the birth year (else the city's own code, valid in every year)."""
    born = date(1965, 1, 1) + timedelta(days=rng.randrange(365 * 35))
    sequence = rng.randrange(1, 999)
    for region in (area[:6], "410600"):
        body = f"{region}{born:%Y%m%d}{sequence:03d}"
        number = body + ric.calc_check_digit(body + "0")  # the function ignores the last character
        if service.is_valid_id_number(number):
            return number
    raise ValueError(f"cannot make a resident ID number for area {area}")


def _first(codes: Sequence[str], preferred: str | None = None, *, exclude: Sequence[str] = ()) -> str:
    if preferred is not None and preferred in codes and preferred not in exclude:
        return preferred
    for code in codes:
        if code not in exclude:
            return code
    raise LookupError("places has too few divisions for the demo accounts")


def demo_accounts(divisions: Sequence[Any], grids_by_village: dict[str, list[str]]) -> list[DemoAccount]:
    """The documented accounts, placed in the divisions available."""
    by_level: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for d in divisions:
        by_level.setdefault(d.level, []).append(d.code)
        if d.parent_code:
            children.setdefault(d.parent_code, []).append(d.code)
    city = by_level["city"][0]
    county = _first(by_level["county"], PREFERRED["county"])
    county2 = _first(by_level["county"], PREFERRED["county2"], exclude=[county])
    townships = [t for t in by_level["township"] if t.startswith(county) and children.get(t)]
    township = _first(townships, PREFERRED["township"])
    township2 = _first(townships, PREFERRED["township2"], exclude=[township])
    village1 = sorted(children[township])[0]
    village2 = sorted(children[township2])[0]
    grid1 = (grids_by_village.get(village1) or [village1])[0]
    grid2 = (grids_by_village.get(village2) or [village2])[0]
    return [
        DemoAccount("admin", "admin", centre_code(city), city),
        DemoAccount("leader", "leader", centre_code(city), city),
        DemoAccount("city.operator", "centre_operator", centre_code(city), city),
        DemoAccount("duty.officer", "duty_officer", centre_code(city), city),
        DemoAccount("county.operator", "centre_operator", centre_code(county), county),
        DemoAccount("county2.operator", "centre_operator", centre_code(county2), county2),
        DemoAccount("township.operator", "centre_operator", centre_code(township), township),
        DemoAccount("village1.operator", "centre_operator", centre_code(village1), village1),
        DemoAccount("village1.grid", "grid_worker", centre_code(village1), grid1),
        DemoAccount("village2.operator", "centre_operator", centre_code(village2), village2),
        DemoAccount("village2.grid", "grid_worker", centre_code(village2), grid2),
        DemoAccount("police.handler", "department_handler", dept_code("police"), None),
        DemoAccount("housing.handler", "department_handler", dept_code("housing"), None),
        DemoAccount("emergency.handler", "department_handler", dept_code("emergency"), None),
        DemoAccount("inspector", "inspector", dept_code("market"), city),
        DemoAccount("enterprise", "enterprise_user", None, None),
        DemoAccount("citizen", "citizen", None, None),
    ]


def demo_accounts_in(session: Session) -> list[User]:
    """The documented demo accounts present in the database, in documented order."""
    found = {u.username: u for u in session.scalars(
        select(User).where(User.username.in_(DEMO_USERNAMES), User.is_demo.is_(True)))}
    return [found[name] for name in DEMO_USERNAMES if name in found]


def _seed_org_units(session: Session, divisions: Sequence[Any]) -> dict[str, int]:
    """Departments plus one governance centre per division, parents before children."""
    now = utcnow()
    city = next(d for d in divisions if d.level == "city")
    session.execute(insert(OrgUnit), [
        {"code": dept_code(slug), "name": zh, "name_en": en, "kind": "department", "level": "city",
         "division_code": city.code, "parent_id": None, "created_at": now}
        for slug, zh, en in DEPARTMENTS])
    ids: dict[str, int] = {}
    order = {"city": 0, "county": 1, "township": 2, "village": 3}
    for level in sorted(order, key=order.__getitem__):
        rows = [{"code": centre_code(d.code), "name": f"{d.name}综治中心",
                 "name_en": f"{d.name_en or d.code} governance centre", "kind": "centre", "level": level,
                 "division_code": d.code, "parent_id": ids.get(centre_code(d.parent_code or "")),
                 "created_at": now}
                for d in divisions if d.level == level]
        if rows:
            session.execute(insert(OrgUnit), rows)
        ids.update({code: id_ for code, id_ in session.execute(
            select(OrgUnit.code, OrgUnit.id).where(OrgUnit.level == level, OrgUnit.kind == "centre"))})
    ids.update({code: id_ for code, id_ in session.execute(
        select(OrgUnit.code, OrgUnit.id).where(OrgUnit.kind == "department"))})
    return ids


def _staff_rows(rng: random.Random, password_hash: str, unit_ids: dict[str, int], divisions: Sequence[Any],
                grids_by_village: dict[str, list[str]], taken: set[str]) -> list[dict[str, Any]]:
    """One operator per centre, one handler per department and a grid worker for each grid given."""
    now = utcnow()
    rows: list[dict[str, Any]] = []

    def add(username: str, role: str, unit: str, scope: str | None, area: str) -> None:
        if username in taken:
            return
        rows.append({"username": username, "display_name": person_name(rng), "password_hash": password_hash,
                     "role": role, "org_unit_id": unit_ids[unit], "scope_code": scope, "phone": mobile(rng),
                     "id_number": resident_id(rng, area), "locale": "zh", "is_active": True, "is_demo": True,
                     "created_at": now, "password_changed_at": now})

    for d in divisions:
        add(f"op.{d.code}", "centre_operator", centre_code(d.code), d.code, d.code)
        for grid in grids_by_village.get(d.code, []):
            add(f"grid.{grid}", "grid_worker", centre_code(d.code), grid, d.code)
    city = next(d.code for d in divisions if d.level == "city")
    for slug, _zh, _en in DEPARTMENTS:
        add(f"handler.{slug}", "department_handler", dept_code(slug), None, city)
    return rows


def seed_accounts(session: Session, *, rng: random.Random, divisions: Sequence[Any],
                  grids_by_village: dict[str, list[str]], with_users: bool) -> int:
    """Create the org units and (unless `with_users` is False) the demo accounts; returns accounts made."""
    unit_ids = _seed_org_units(session, divisions)
    if not with_users:
        return 0
    password_hash = hash_password(DEMO_PASSWORD)
    accounts = demo_accounts(divisions, grids_by_village)
    for account in accounts:
        area = account.scope_code or next(d.code for d in divisions if d.level == "city")
        staff = account.org_unit_code is not None
        service.create_user(
            session, username=account.username, display_name=person_name(rng), role=account.role,
            password_hash=password_hash, org_unit_code=account.org_unit_code, scope_code=account.scope_code,
            phone=mobile(rng), id_number=resident_id(rng, area if staff else "410611"), is_demo=True)
    rows = _staff_rows(rng, password_hash, unit_ids, divisions, grids_by_village,
                       {a.username for a in accounts})
    for start in range(0, len(rows), 1000):
        session.execute(insert(User), rows[start:start + 1000])
    return len(accounts) + len(rows)


def _load_places(session: Session) -> tuple[list[Any], dict[str, list[str]]]:
    """Every division, and the grids of the villages the documented accounts work in."""
    divisions: list[Any] = []
    while True:
        page = places_service.list_divisions(session, limit=1000, offset=len(divisions))
        divisions += page.items
        if not page.items or len(divisions) >= page.total:
            break
    divisions.sort(key=lambda d: d.code)
    grids: dict[str, list[str]] = {}
    for account in demo_accounts(divisions, {}):
        if account.role == "grid_worker" and account.scope_code:
            village = account.scope_code
            grids[village] = sorted(g.code for g in places_service.get_division(session, code=village).grids)
    return divisions, grids


def run(ctx: SeedContext) -> None:
    production = get_settings().environment == "production"
    advance = ctx.task("accounts: org units and demo users", total=2)
    with ctx.db.session() as session:
        divisions, grids = _load_places(session)
        advance(1)
        seed_accounts(session, rng=ctx.rng("accounts"), divisions=divisions, grids_by_village=grids,
                      with_users=not production)
        advance(1)
    if production:
        ctx.progress.console.print("production: org units created, demo accounts refused")


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return bool(session.scalar(select(exists().where(OrgUnit.id.is_not(None)))))


GENERATOR = Generator(name="accounts", run=run, is_seeded=is_seeded)
