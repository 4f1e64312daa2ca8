"""Synthetic cases for the demo: reported at random points of the city over the last three years,
taken through the workflow by the service (as the system), so every case has a real timeline.

Modest volumes (small: 300, full: 1,000) keep the seed fast; the live simulator and the bulk history
belong to later work."""

from __future__ import annotations

import random
from datetime import timedelta

import shapely
from sqlalchemy.orm import Session

from cityops.cases import service
from cityops.cases import types as case_types
from cityops.cases.schemas import ActionRequest, CaseCreate
from cityops.core.db import Database, utcnow
from cityops.core.seeding import Generator, SeedContext
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

COUNTS = {"small": 300, "full": 1_000}
HISTORY_DAYS = 3 * 365
BATCH = 100
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文"
TITLES = {
    "dispute": ("{name}与邻居因{what}发生争执", ("宅基地边界", "排水沟", "占用通道", "树木遮光", "噪声")),
    "urban": ("{place}附近{what}", ("垃圾堆放未清运", "占道经营", "路面坑洼", "路灯不亮", "下水道堵塞")),
    "hazard": ("{place}发现{what}", ("私拉电线", "燃气管道老化", "墙体开裂", "消防通道堵塞", "违规动火")),
}
PLACES = ("村委会", "菜市场", "学校门口", "十字路口", "小区东门", "卫生院", "文化广场", "老街")
# Where the cases end: (weight, actions after intake) per workflow.
OUTCOMES = {
    "standard": (
        (60, ("accept", "dispatch", "start", "resolve", "verify", "close")),
        (10, ("accept", "escalate", "accept", "dispatch", "start", "resolve", "verify", "close")),
        (10, ("accept", "dispatch", "start")),
        (6, ("accept",)),
        (6, ()),
        (4, ("escalate",)),
        (4, ("reject",)),
    ),
    "report": (
        (70, ("dispatch", "start", "resolve", "close")),
        (15, ("dispatch", "start")),
        (10, ()),
        (5, ("reject",)),
    ),
}
NEEDS = {"reject": {"reason": "不属于受理范围"}, "escalate": {"reason": "本级无法化解"},
         "resolve": {"result": "已处置完毕"}}


def _point(rng: random.Random, index: PlaceIndex) -> tuple[float, float]:
    """A uniformly random point inside a random grid."""
    polygon = index.polygons[rng.randrange(len(index.polygons))]
    minx, miny, maxx, maxy = polygon.bounds
    for _ in range(50):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if polygon.contains(shapely.Point(x, y)):
            return x, y
    centre = polygon.representative_point()
    return centre.x, centre.y


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


def make_case(session: Session, rng: random.Random, index: PlaceIndex, *, days_ago: float) -> None:
    registry = case_types.registry()
    case_type = rng.choice(registry.reportable())
    categories = [c for c in case_type.all_categories() if not c.children]
    category = rng.choice(categories)
    pattern, whats = TITLES.get(case_type.code, ("{place}{what}", ("问题",)))
    name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
    title = pattern.format(name=name, place=rng.choice(PLACES), what=rng.choice(whats))
    lon, lat = _point(rng, index)
    reported = utcnow() - timedelta(days=days_ago)
    phone = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
    data = CaseCreate(
        type_code=case_type.code, category=category.code, title=title, description=f"{title}，请尽快处理。",
        lon=lon, lat=lat, reporter_name=name, reporter_phone=phone,
        source=rng.choice(("web", "web", "grid_worker", "grid_worker", "police", "open311")),
        fields=_fields(rng, case_type),
    )
    case = service.report_case(session, data=data, index=index, now=reported)
    weights, paths = zip(*OUTCOMES[case_type.workflow], strict=True)
    at = reported
    for action in rng.choices(paths, weights=weights)[0]:
        if at >= utcnow():
            break
        at = min(at + timedelta(hours=rng.uniform(0.5, 30)), utcnow())
        if action == "escalate" and case.level == "city":
            break
        body = ActionRequest(version=case.version, **NEEDS.get(action, {}))
        case = service.act(session, actor=None, case_id=case.id, action=action, body=body, now=at)


def run(ctx: SeedContext) -> None:
    total = COUNTS[ctx.scale]
    rng = ctx.rng("cases")
    advance = ctx.task("cases: synthetic reports and their handling", total=total)
    with ctx.db.session() as session:
        index = places_service.build_index(session)
    # Oldest first, so case numbers follow the reporting order within each year.
    ages = sorted((rng.uniform(0, HISTORY_DAYS) for _ in range(total)), reverse=True)
    for start in range(0, total, BATCH):
        with ctx.db.session() as session:
            for days_ago in ages[start:start + BATCH]:
                make_case(session, rng, index, days_ago=days_ago)
        advance(min(BATCH, total - start))


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.count_cases(session) > 0


GENERATOR = Generator(name="cases", run=run, is_seeded=is_seeded)
