"""Synthetic risk register (labelled synthetic). At full scale a few clusters of cases of one category
are reported at one place (through the cases service, like real input) and the searchlight scan
registers them; some get a control task. Small scale plants one cluster, so a second seed finds the
register filled."""

from __future__ import annotations

import math
import random
from datetime import timedelta

from sqlalchemy.orm import Session

from cityops.cases import service as cases_service
from cityops.cases.schemas import CaseCreate
from cityops.core.db import Database, utcnow
from cityops.core.seeding import Generator, SeedContext
from cityops.governance.assessment import repository as units_repo
from cityops.governance.risks import service
from cityops.governance.risks.schemas import TaskCreate
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

OPERATOR = "city.operator"
CLUSTERS = {"small": 1, "full": 15}
KINDS: tuple[tuple[str, str, str, dict[str, object], str], ...] = (
    ("dispute", "neighbour", "{place}邻里纠纷反复发生", {"parties": 2}, "dept-justice"),
    ("urban", "garbage", "{place}垃圾堆放", {}, "dept-urban"),
    ("urban", "water", "{place}下水道反复堵塞", {}, "dept-water"),
    ("hazard", "gas", "{place}燃气管道隐患", {"immediate_danger": False}, "dept-housing"),
)
PLACES = ("菜市场", "小区东门", "老街", "学校门口", "文化广场")


def _cluster(session: Session, rng: random.Random, index: PlaceIndex, n: int) -> None:
    type_code, category, pattern, fields, _unit = KINDS[n % len(KINDS)]
    centre = index.polygons[rng.randrange(len(index.polygons))].representative_point()
    start = utcnow() - timedelta(days=rng.uniform(10, 200))
    title = pattern.format(place=rng.choice(PLACES))
    for k in range(rng.randint(3, 6)):
        angle, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0, 120)
        lon = centre.x + dist * math.cos(angle) / (111_320 * math.cos(math.radians(centre.y)))
        lat = centre.y + dist * math.sin(angle) / 110_540
        cases_service.report_case(
            session,
            index=index,
            now=start + timedelta(days=k * rng.uniform(3, 15)),
            data=CaseCreate(
                type_code=type_code,
                category=category,
                title=title,
                description=f"{title}（合成演示数据）",
                lon=lon,
                lat=lat,
                fields=dict(fields),
                source="grid_worker",
            ),
        )


def run(ctx: SeedContext) -> None:
    rng = ctx.rng("governance.risks")
    count = CLUSTERS[ctx.scale]
    advance = ctx.task("governance: risk register", total=count + 1)
    with ctx.db.session() as session:
        index = places_service.build_index(session) if count else None
        for n in range(count):
            assert index is not None
            _cluster(session, rng, index, n)
            advance(1)
        service.scan(session)
        actor = units_repo.user_by_username(session, OPERATOR)
        if actor is not None and index is not None:
            for risk in service.list_risks(session, viewer=actor, limit=count).items[::3]:
                unit = next(
                    (k[4] for k in KINDS if (k[0], k[1]) == (risk.type_code, risk.category)), "dept-emergency"
                )
                service.add_task(
                    session,
                    actor=actor,
                    risk_id=risk.id,
                    index=index,
                    data=TaskCreate(org_unit_code=unit, title="排查整治并建立长效机制"),
                )
        advance(1)


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.count_risks(session) > 0


GENERATOR = Generator(name="governance.risks", run=run, is_seeded=is_seeded)
