"""Synthetic business entities for the demo, saved through the credit service: at full scale the seed's
178,000 entities in the proportions of a prefecture city (about 27% enterprises, 69% individual
businesses, 3,200 farmers' cooperatives, 1,400 social organisations, and a rural collective economic
organisation for every village and township), "small" makes a few hundred.

Each has a plausible Chinese name (the county, a trade name 字号, an industry word and the legal form:
鹤壁市淇滨区鑫隆商贸有限公司, 浚县丰泽种植专业合作社, 瑞祥便利店), a valid unified social credit code
with the authority and type codes of its kind, its registration authority's division (the county, or
the city for part of the enterprises) and an identifier as registrars issue them (8 digits before the
2015 reform, MA... after, with the GB 11714 check character), an industry, capital, establishment date,
a legal representative, and a point inside a grid with an address naming its divisions. Every entity is
labelled synthetic."""

from __future__ import annotations

import random
from datetime import date, timedelta

import numpy as np
import shapely
from stdnum.cn import ric

from cityops.accounts.demo import person_name
from cityops.core.db import Database
from cityops.core.seeding import Generator, SeedContext
from cityops.credit import codes, service
from cityops.credit import repository as repo
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex
from cityops.places.synthetic import short_village_name

TOTAL = {"full": 178_000, "small": 300}
# Shares of the total; individual businesses are the rest (after the collectives, one per village and
# township at full scale).
SHARES = {"enterprise": 0.275, "cooperative": 3_200 / 178_000, "social_org": 1_400 / 178_000}
SMALL_COLLECTIVES = 8
BATCH = 5_000
REFORM = date(2015, 10, 1)  # codes issued from then on carry new identifiers (MA...)
CITY = "410600"
DEV_ZONE = "410671"  # registered by the city's regulator
NEW_ID_ALPHABET = codes.ALPHABET
# GB/T 2260 county codes of Hebi that resident ID numbers carry (the development zone's people have the
# city's code).
ID_REGIONS = ("410602", "410603", "410611", "410621", "410622")

TRADE_NAME = (
    "鑫隆泰华盛达恒源丰瑞祥宏德信嘉兴利和昌福安康顺旺金豪诚润博创卓越欣晟琪淇鹤宝天中汇邦永佳新腾飞亿万"
)
# (division, weight, words): enterprise industries and the word in the name.
ENTERPRISE_TRADES = (
    ("51", 14, ("商贸", "贸易", "物资")),
    ("52", 14, ("商贸", "百货", "超市")),
    ("13", 3, ("粮油", "面业")),
    ("14", 2, ("食品",)),
    ("30", 3, ("建材", "新型建材")),
    ("33", 3, ("金属制品", "机械")),
    ("36", 2, ("汽车零部件",)),
    ("39", 2, ("电子科技", "电子")),
    ("26", 1, ("化工",)),
    ("38", 1, ("电气",)),
    ("47", 3, ("建筑工程", "建设工程")),
    ("48", 2, ("路桥工程",)),
    ("50", 3, ("装饰工程", "装饰设计")),
    ("72", 10, ("企业管理咨询", "广告", "文化传媒")),
    ("65", 5, ("网络科技", "信息技术")),
    ("74", 3, ("检测技术", "工程设计")),
    ("75", 2, ("农业科技", "科技")),
    ("54", 5, ("物流", "运输")),
    ("59", 1, ("仓储",)),
    ("61", 1, ("酒店管理",)),
    ("62", 3, ("餐饮管理",)),
    ("70", 3, ("房地产开发", "置业")),
    ("80", 2, ("家政服务", "物业服务")),
    ("81", 2, ("汽车服务",)),
    ("01", 4, ("农业开发", "种植")),
    ("03", 2, ("牧业", "养殖")),
    ("88", 1, ("文化发展",)),
    ("89", 1, ("体育发展",)),
    ("84", 1, ("医疗管理",)),
    ("77", 1, ("环保科技",)),
    ("44", 1, ("新能源",)),
)
FORMS = (("有限公司", 80), ("有限责任公司", 16), ("股份有限公司", 2), ("实业有限公司", 2))
INDIVIDUAL_TRADES = (
    ("52", 30, ("便利店", "超市", "烟酒店", "服装店", "五金店", "农资店", "水果店", "日用百货店")),
    ("62", 18, ("烩面馆", "小吃店", "饭店", "烧烤店", "早餐店", "饺子馆")),
    ("80", 10, ("理发店", "美容美发店", "干洗店", "摄影部")),
    ("81", 6, ("汽车修理部", "家电维修部", "手机维修店")),
    ("54", 4, ("货运部",)),
    ("61", 2, ("旅馆",)),
    ("50", 3, ("装饰部",)),
    ("03", 3, ("养殖场",)),
    ("01", 3, ("种植园", "家庭农场")),
    ("13", 2, ("面粉加工坊", "油坊")),
    ("84", 1, ("诊所",)),
    ("90", 1, ("网吧", "棋牌室")),
    ("51", 4, ("批发部",)),
)
COOPERATIVE_TRADES = (
    ("01", 6, ("种植", "蔬菜种植", "小麦种植", "果蔬种植", "花生种植")),
    ("03", 3, ("养殖", "肉牛养殖", "畜禽养殖")),
    ("05", 2, ("农机服务", "植保服务")),
)
# (type code, division, weight, name pattern) of social organisations
SOCIAL = (
    ("1", "95", 5, "{place}{trade}协会"),
    ("1", "95", 2, "{place}{trade}商会"),
    ("2", "83", 4, "{place}{trade}幼儿园"),
    ("2", "83", 2, "{place}{trade}职业培训学校"),
    ("2", "85", 3, "{place}{trade}养老服务中心"),
    ("2", "85", 2, "{place}{trade}社会工作服务中心"),
    ("3", "95", 1, "{place}{trade}教育基金会"),
)
ROADS = (
    "黄河路",
    "淇河路",
    "长江路",
    "华山路",
    "泰山路",
    "兴鹤大街",
    "九州路",
    "朝歌路",
    "黎阳路",
    "卫河路",
    "人民路",
    "建设路",
    "中山路",
    "文化路",
)


def _choose(rng: random.Random, table: tuple[tuple[str, int, tuple[str, ...]], ...]) -> tuple[str, str]:
    division, _weight, words = rng.choices(table, weights=[t[1] for t in table])[0]
    return division, rng.choice(words)


class Namer:
    """Names unique in the city: a longer trade name when a short one is taken."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.taken: set[str] = set()

    def name(self, pattern: str, **parts: str) -> str:
        for length in (2, 2, 2, 3, 3, 3, 4, 4, 4, 4):
            trade = "".join(self.rng.sample(TRADE_NAME, length))
            found = pattern.format(trade=trade, **parts)
            if found not in self.taken:
                self.taken.add(found)
                return found
        raise RuntimeError(f"no free name for {pattern}")


class Identifiers:
    """Unique identifiers (characters 9-17 of a code): 8 digits before the reform, MA + 6 after, each
    with its GB 11714 check character."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.taken: set[str] = set()

    def new(self, established: date) -> str:
        while True:
            if established >= REFORM:
                body = "MA" + "".join(self.rng.choices(NEW_ID_ALPHABET, k=6))
            else:
                body = f"{self.rng.randrange(10**8):08d}"
            identifier = body + codes.organisation_check(body)
            if identifier not in self.taken:
                self.taken.add(identifier)
                return identifier


def plan(total: int, villages: int, townships: int, *, small: bool) -> dict[str, int]:
    """How many entities of each kind (collectives: "other")."""
    collectives = min(SMALL_COLLECTIVES, villages + townships) if small else villages + townships
    counts = {kind: round(total * share) for kind, share in SHARES.items()}
    counts["other"] = collectives
    counts["individual"] = total - sum(counts.values())
    return counts


def _established(rng: random.Random, today: date, *, mean_years: float) -> date:
    """Most entities are young (the register grew fast after the 2014 reform); some are decades old."""
    return today - timedelta(days=min(int(rng.expovariate(1 / (mean_years * 365))) + 30, 40 * 365))


def _place_names(index: PlaceIndex, county: str, township: str, village: str) -> tuple[str, str, str, str]:
    """(name prefix for enterprises, prefix for others, registration division, address head)."""
    county_name = index.names.get(county, "")
    township_name = index.names.get(township, "")
    village_name = short_village_name(index.names.get(village, ""))
    head = f"河南省鹤壁市{county_name}{township_name}{village_name}"
    if county == DEV_ZONE:
        return "鹤壁", "鹤壁市", CITY, f"河南省{county_name}{township_name}{village_name}"
    city_prefix = "鹤壁市" if county_name.endswith("区") else ""
    return f"{city_prefix}{county_name}", f"{city_prefix}{county_name}", county, head


def _entity(
    rng: random.Random,
    kind: str,
    namer: Namer,
    ids: Identifiers,
    index: PlaceIndex,
    hit: tuple[str, str, str],
    point: tuple[float, float],
    today: date,
) -> service.EntityIn:
    county, township, village = hit
    firm_prefix, prefix, registrar, head = _place_names(index, county, township, village)
    capital: int | None
    if kind == "enterprise":
        industry, word = _choose(rng, ENTERPRISE_TRADES)
        form = rng.choices([f for f, _w in FORMS], weights=[w for _f, w in FORMS])[0]
        name = namer.name(f"{rng.choice((firm_prefix, firm_prefix, '河南'))}{{trade}}{word}{form}")
        authority, type_code = "9", "1"
        registrar = CITY if rng.random() < 0.35 else registrar
        capital = (
            rng.choice((10, 30, 50, 100, 100, 200, 300, 500, 500, 1000, 2000, 5000, 10000)) * service.WAN
        )
        established = _established(rng, today, mean_years=7)
    elif kind == "individual":
        industry, word = _choose(rng, INDIVIDUAL_TRADES)
        name = namer.name(f"{rng.choice((prefix, ''))}{{trade}}{word}")
        authority, type_code = "9", "2"
        capital = rng.choice((1, 2, 3, 5, 5, 10, 10, 20, 50)) * service.WAN
        established = _established(rng, today, mean_years=5)
    elif kind == "cooperative":
        industry, word = _choose(rng, COOPERATIVE_TRADES)
        name = namer.name(f"{prefix}{{trade}}{word}专业合作社")
        authority, type_code = "9", "3"
        capital = rng.choice((10, 50, 100, 200, 500)) * service.WAN
        established = _established(rng, today, mean_years=8)
    else:  # social_org
        type_code, industry, _weight, pattern = rng.choices(SOCIAL, weights=[s[2] for s in SOCIAL])[0]
        place = rng.choice(("鹤壁市", prefix))
        name = namer.name(pattern.format(place=place, trade="{trade}"))
        authority = "5"
        registrar = CITY if place == "鹤壁市" else registrar
        capital = (200 if type_code == "3" else rng.choice((3, 5, 10, 30))) * service.WAN
        established = _established(rng, today, mean_years=9)
    code = codes.make(authority, type_code, registrar, ids.new(established))
    return service.EntityIn(
        code=code,
        name=name,
        industry=industry,
        capital=capital,
        capital_currency="CNY",
        established_on=established,
        status=_status(rng),
        lon=point[0],
        lat=point[1],
        address=f"{head}{rng.choice(ROADS)}{rng.randint(1, 399)}号",
        legal_rep_name=person_name(rng),
        legal_rep_id_number=_id_number(rng, county),
    )


def _id_number(rng: random.Random, county: str) -> str:
    """A well-formed resident ID number of someone born in the county (or the city) 1955-2000; made
    directly, as checking each one with the ID-number validator would take most of the seeding time."""
    born = date(1955, 1, 1) + timedelta(days=rng.randrange(45 * 365))
    # The counties' codes are valid for births from 1990 (淇滨区 was created in 1986), the city's always.
    region = county if county in ID_REGIONS and born.year >= 1990 else CITY
    body = f"{region}{born:%Y%m%d}{rng.randrange(1, 999):03d}"
    return body + str(ric.calc_check_digit(body + "0"))  # it ignores the last character


def _status(rng: random.Random) -> str:
    fate = rng.random()
    return (
        "active" if fate < 0.9 else "cancelled" if fate < 0.96 else "revoked" if fate < 0.99 else "moved_out"
    )


def _collectives(
    rng: random.Random, index: PlaceIndex, count: int, ids: Identifiers, today: date
) -> list[service.EntityIn]:
    """A rural collective economic organisation (code N) for each village (股份经济合作社, N2) and
    township (经济联合总社, N3), placed in the village's first grid."""
    first_grid: dict[str, int] = {}
    for i, leaf in enumerate(index.leaves):
        if leaf.village_code:
            first_grid.setdefault(leaf.village_code, i)
    townships = {
        leaf.township_code: i for i, leaf in reversed(list(enumerate(index.leaves))) if leaf.township_code
    }
    places = [("3", code, i) for code, i in sorted(townships.items())] + [
        ("2", code, i) for code, i in sorted(first_grid.items())
    ]
    if count < len(places):
        places = rng.sample(places, count)
    out = []
    for type_code, code, i in places:
        leaf = index.leaves[i]
        centre = index.polygons[i].representative_point()
        assert leaf.county_code and leaf.township_code and leaf.village_code
        _prefix, _other, registrar, head = _place_names(
            index, leaf.county_code, leaf.township_code, leaf.village_code
        )
        established = date(2019, 1, 1) + timedelta(days=rng.randrange(3 * 365))
        name = (
            f"{index.names.get(code, code)}经济联合总社"
            if type_code == "3"
            else f"{short_village_name(index.names.get(code, code))}股份经济合作社"
        )
        out.append(
            service.EntityIn(
                code=codes.make("N", type_code, registrar, ids.new(established)),
                name=name,
                industry="72",
                established_on=min(established, today),
                status="active",
                lon=centre.x,
                lat=centre.y,
                address=f"{head}村委会院内" if type_code == "2" else head,
                legal_rep_name=person_name(rng),
                legal_rep_id_number=_id_number(rng, leaf.county_code),
            )
        )
    return out


def random_points(rng: random.Random, index: PlaceIndex, n: int) -> list[tuple[float, float]]:
    """n points, each uniformly random inside a random grid, as places_service.random_point makes one,
    drawn for all at once."""
    draw = np.random.default_rng(rng.randrange(2**32))
    polygons = index.polygons[draw.integers(len(index.polygons), size=n)]
    bounds = shapely.bounds(polygons)
    x, y = np.empty(n), np.empty(n)
    todo = np.arange(n)
    for _ in range(50):
        if not len(todo):
            break
        box = bounds[todo]
        tx, ty = draw.uniform(box[:, 0], box[:, 2]), draw.uniform(box[:, 1], box[:, 3])
        inside = shapely.contains_xy(polygons[todo], tx, ty)
        x[todo[inside]], y[todo[inside]] = tx[inside], ty[inside]
        todo = todo[~inside]
    for i in todo:
        centre = polygons[i].representative_point()
        x[i], y[i] = centre.x, centre.y
    return list(zip(x.tolist(), y.tolist(), strict=True))


def run(ctx: SeedContext) -> None:
    rng = ctx.rng("credit")
    today = ctx.now.date()
    with ctx.db.sessions() as session:
        index = places_service.build_index(session)
    villages = len({leaf.village_code for leaf in index.leaves if leaf.village_code})
    townships = len({leaf.township_code for leaf in index.leaves if leaf.township_code})
    counts = plan(TOTAL[ctx.scale], villages, townships, small=ctx.scale == "small")
    ids, namer = Identifiers(rng), Namer(rng)
    kinds = [
        kind
        for kind in ("enterprise", "individual", "cooperative", "social_org")
        for _ in range(counts[kind])
    ]
    rng.shuffle(kinds)
    advance = ctx.task("credit: business entities", total=len(kinds) + counts["other"])
    _save(ctx, index, _collectives(rng, index, counts["other"], ids, today))
    advance(counts["other"])
    for start in range(0, len(kinds), BATCH):
        part = kinds[start : start + BATCH]
        points = random_points(rng, index, len(part))
        hits = places_service.lookup_points(index, lon=[p[0] for p in points], lat=[p[1] for p in points])
        items = [
            _entity(
                rng,
                kind,
                namer,
                ids,
                index,
                (hits.county[n] or CITY, hits.township[n] or "", hits.village[n] or ""),
                points[n],
                today,
            )
            for n, kind in enumerate(part)
        ]
        _save(ctx, index, items)
        advance(len(part))
    _records_and_classes(ctx, len(kinds) + counts["other"])
    seed_inspectors(ctx)
    from cityops.credit import repair_lending_demo  # after the classes: lending matches on them

    repair_lending_demo.run(ctx)


def _records_and_classes(ctx: SeedContext, entities: int) -> None:
    """About 11 synthetic credit records per entity (records_demo), then every score, class and tag."""
    from cityops.credit import records, records_demo, scoring

    advance = ctx.task("credit: records", total=round(entities * records_demo.PER_ENTITY))
    seed = ctx.rng("credit-records").randrange(2**32)
    records_demo.generate(ctx.db, seed=seed, today=records.today_of(ctx.now), now=ctx.now, advance=advance)
    with ctx.db.session() as session:
        scoring.recompute(session, now=ctx.now)


def _save(ctx: SeedContext, index: PlaceIndex, items: list[service.EntityIn]) -> None:
    with ctx.db.session() as session:
        outcomes = service.save_entities(
            session, items=items, index=index, actor=None, synthetic=True, now=ctx.now
        )
        refused = [o for o in outcomes if o != "created"]
        assert not refused, refused[:3]


# Demo inspectors per department that runs inspection categories: at full scale enough for the year's
# joint visits at the default capacity (see bench/credit_inspection_plan.py), at small scale a few.
# Sized from the full seed's tasks per department (two inspectors a task, 4 visits a day, ~250 working
# days, three quarters of the slots usable once teams must meet).
INSPECTORS: dict[str, dict[str, int]] = {
    "full": {
        "dept-market": 120,
        "dept-hrss": 64,
        "dept-urban": 60,
        "dept-tax": 28,
        "dept-statistics": 20,
        "dept-health": 16,
        "dept-agriculture": 12,
    },
    "small": {},
}
DEFAULT_INSPECTORS = {"full": 8, "small": 3}


def seed_inspectors(ctx: SeedContext) -> None:
    """Demo inspectors (inspector.<department>.<n>) of every department that runs an inspection category,
    each qualified for its department's categories (the documented `inspector` account too), and three
    declared conflicts of interest: an inspector's own entity, a relative's, and another's home village."""
    from sqlalchemy import insert, select

    from cityops.accounts.demo import DEMO_PASSWORD, mobile, resident_id
    from cityops.core.auth.models import OrgUnit, User
    from cityops.core.auth.security import hash_password
    from cityops.credit import inspections
    from cityops.credit.models import Entity, InspectorQualification

    rng = ctx.rng("credit-inspectors")
    by_department: dict[str, list[str]] = {}
    for category in inspections.load_categories().categories:
        by_department.setdefault(category.department, []).append(category.code)
    password_hash = hash_password(DEMO_PASSWORD)
    with ctx.db.session() as session:
        units = {u.code: u for u in session.scalars(select(OrgUnit).where(OrgUnit.code.in_(by_department)))}
        rows = [
            {"username": f"inspector.{code.removeprefix('dept-')}.{n:02d}", "display_name": person_name(rng),
             "password_hash": password_hash, "role": "inspector", "org_unit_id": unit.id,
             "scope_code": unit.division_code, "phone": mobile(rng),
             "id_number": resident_id(rng, unit.division_code or CITY), "locale": "zh", "is_active": True,
             "is_demo": True, "created_at": ctx.now, "password_changed_at": ctx.now}
            for code, unit in sorted(units.items())
            for n in range(1, INSPECTORS[ctx.scale].get(code, DEFAULT_INSPECTORS[ctx.scale]) + 1)
        ]
        session.execute(insert(User), rows)
        staff = session.execute(
            select(User.id, User.org_unit_id).where(User.role == "inspector").order_by(User.id)
        ).all()
        code_of = {u.id: code for code, u in units.items()}
        session.execute(insert(InspectorQualification), [
            {"user_id": user_id, "category": category, "certified_on": date(2020, 1, 1) + timedelta(
                days=rng.randrange(4 * 365)), "created_at": ctx.now}
            for user_id, unit_id in staff for category in by_department.get(code_of.get(unit_id or 0, ""), ())
        ])
        entities = session.execute(
            select(Entity.id, Entity.village_code)
            .where(Entity.status == "active", Entity.village_code.is_not(None))
            .order_by(Entity.id)
            .limit(500)
        ).all()
        if len(staff) >= 3 and len(entities) >= 3:
            (own, _v1), (relative, _v2), (_e3, village) = rng.sample(entities, 3)
            first, second, third = rng.sample([user_id for user_id, _unit in staff], 3)
            declare = inspections.declare_conflict
            declare(session, user_id=first, actor=None, entity_id=own, relation="own",
                    note="合伙经营（演示）")
            declare(session, user_id=second, actor=None, entity_id=relative, relation="relative",
                    note="配偶经营（演示）")
            declare(session, user_id=third, actor=None, village_code=village, relation="home_village",
                    note="户籍所在村（演示）")

def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return repo.synthetic_count(session) > 0


GENERATOR = Generator(name="credit", run=run, is_seeded=is_seeded)
