"""Synthetic field work for the demo: household visits (四大一送), the issues they find (each a case) and
patrols across the city, labelled synthetic.

Volumes: the seed's figure is 12,000 issues a year found on visits, about 33 a day. Every visit that
finds an issue goes through the visit service (the issue is a real case, taken along its workflow by
the case service: about 10 ms each), so a whole year would take two minutes or more. "full" therefore
makes the last 60 days at the seed's rate: 2,000 issues (cases), 10,000 visits in all (the ones that
find nothing written in bulk through `service.import_visits`) and 500 patrols, in about 20 seconds.
"small" makes a handful for the tests. A visit is made by the grid worker of its grid where the demo
has one, else by the village centre's operator (who may record visits too)."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from sqlalchemy.orm import Session

from cityops.cases import service as cases_service
from cityops.cases.models import Case
from cityops.cases.schemas import ActionRequest
from cityops.core.auth.models import User
from cityops.core.db import Database, utcnow
from cityops.core.seeding import Generator, SeedContext
from cityops.governance.visits import service
from cityops.governance.visits.models import VISIT_KINDS
from cityops.governance.visits.schemas import (
    IssueCreate,
    LocatedIssue,
    PatrolEnd,
    PatrolStart,
    TrackPoint,
    VisitCreate,
)
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# Visits, of which with an issue (a case each), and patrols over the last DAYS days.
COUNTS = {"small": (30, 8, 4), "full": (10_000, 2_000, 500)}
DAYS = 60
BATCH = 500
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文"
STREETS = ("东街", "西街", "南街", "北街", "中心路", "幸福路", "和平路", "建设路")
NOTES = {
    "visit": "了解家庭近况，登记联系方式",
    "publicise": "宣传防诈骗、安全用电知识",
    "check": "排查燃气、消防隐患",
    "resolve": "调解邻里矛盾",
    "support": "走访困难群众，送去慰问",
}
ISSUES = {
    "neighbour_dispute": ("与邻居因{what}发生争执", ("排水沟", "院墙", "占用通道", "树木遮光")),
    "family_dispute": ("家庭因{what}发生矛盾", ("赡养老人", "房屋继承", "婚姻财产")),
    "fire_hazard": ("{what}存在消防隐患", ("楼道堆物", "私拉电线", "电动车室内充电")),
    "gas_hazard": ("{what}", ("燃气管道老化", "液化气罐存放不当")),
    "unsafe_building": ("{what}", ("房屋墙体开裂", "屋顶漏雨有坍塌风险")),
    "rubbish": ("{what}", ("路边垃圾堆放", "河沟垃圾未清理")),
    "road_damage": ("{what}", ("村道路面坑洼", "桥面破损")),
    "street_light": ("{what}", ("路灯不亮", "路灯杆倾斜")),
}
ISSUE_WEIGHTS = (30, 10, 14, 6, 5, 15, 10, 10)
NEEDS = {"resolve": {"result": "已处置完毕"}}
# The workflow of each case type an issue kind becomes (cases/data/case_types.yaml).
WORKFLOWS = {"dispute": "standard", "hazard": "standard", "urban": "report"}
PATHS = {
    "standard": ("accept", "dispatch", "start", "resolve", "verify", "close"),
    "report": ("dispatch", "start", "resolve", "close"),
}


def _point(rng: random.Random, polygon: Any) -> tuple[float, float]:
    minx, miny, maxx, maxy = polygon.bounds
    for _ in range(30):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if polygon.contains(shapely.Point(x, y)):
            return x, y
    centre = polygon.representative_point()
    return centre.x, centre.y


def _when(rng: random.Random, now: datetime) -> datetime:
    """A working-hours moment in the last DAYS days (Beijing time)."""
    day = (now - timedelta(days=rng.uniform(1, DAYS))).astimezone(LOCAL_TZ).date()
    moment = datetime.combine(day, time(rng.randint(8, 17), rng.randint(0, 59)), tzinfo=LOCAL_TZ)
    return min(moment, now - timedelta(hours=1))


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")


def mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"


def _kinds(rng: random.Random) -> list[str]:
    return sorted(rng.sample(VISIT_KINDS, rng.choice((1, 1, 1, 2, 2, 3))), key=VISIT_KINDS.index)


def _worker_for(workers: dict[str, User], grid_code: str | None, village_code: str | None) -> User | None:
    return workers.get(grid_code or "") or workers.get(village_code or "")


def _progress(session: Session, rng: random.Random, case: Case, reported: datetime, now: datetime) -> None:
    """Take the case along its workflow as the system: old issues are closed, recent ones part way."""
    steps = PATHS[WORKFLOWS[case.type_code]]
    old = (now - reported).days > 20
    stop = len(steps) if old or rng.random() < 0.5 else rng.randrange(len(steps))
    at = reported
    for action in steps[:stop]:
        at = min(at + timedelta(hours=rng.uniform(0.5, 20)), now)
        case = cases_service.act(
            session,
            actor=None,
            case_id=case.id,
            action=action,
            now=at,
            body=ActionRequest(version=case.version, **NEEDS.get(action, {})),
        )


def random_place(
    rng: random.Random, index: PlaceIndex, workers: dict[str, User]
) -> tuple[User, float, float] | None:
    """A random point of a random grid and the account that records there (None: nobody does)."""
    i = rng.randrange(len(index.polygons))
    leaf = index.leaves[i]
    worker = _worker_for(workers, leaf.grid_code, leaf.village_code)
    if worker is None:
        return None
    lon, lat = _point(rng, index.polygons[i])
    return worker, lon, lat


def _issue(rng: random.Random, head: str) -> IssueCreate:
    kind = rng.choices(tuple(ISSUES), weights=ISSUE_WEIGHTS)[0]
    pattern, whats = ISSUES[kind]
    title = pattern.format(what=rng.choice(whats))
    if kind.endswith("dispute"):
        title = head + title
    return IssueCreate(kind=kind, title=title, description=f"{title}，需跟进处理。")


def make_visit_with_issue(
    session: Session,
    rng: random.Random,
    index: PlaceIndex,
    workers: dict[str, User],
    *,
    now: datetime,
    live: bool = False,
) -> bool:
    """A visit that found one issue. History (the seed) is spread over the last DAYS days and its
    cases taken along their workflow; `live` (the simulator) is a visit made now, its case new."""
    found = random_place(rng, index, workers)
    if found is None:
        return False
    worker, lon, lat = found
    head = person_name(rng)
    at = now if live else _when(rng, now)
    kinds = _kinds(rng)
    data = VisitCreate(
        kinds=kinds,
        address=f"{rng.choice(STREETS)}{rng.randint(1, 200)}号",
        household_head=head,
        household_phone=mobile(rng),
        notes="；".join(NOTES[k] for k in kinds),
        lon=lon,
        lat=lat,
        visited_at=at,
        issues=[_issue(rng, head)],
    )
    visit = service.record_visit(session, worker=worker, data=data, index=index, now=at, synthetic=True)
    if not live:
        for case in service.visit_cases(session, visit_id=visit.id):
            _progress(session, rng, case, at, now)
    return True


def make_problem_report(
    session: Session, rng: random.Random, index: PlaceIndex, workers: dict[str, User], *, now: datetime
) -> bool:
    """A problem a grid worker reports on the spot, now (the simulator)."""
    found = random_place(rng, index, workers)
    if found is None:
        return False
    worker, lon, lat = found
    issue = _issue(rng, person_name(rng))
    data = LocatedIssue(**issue.model_dump(), lon=lon, lat=lat)
    service.report_problem(session, worker=worker, data=data, index=index, now=now, synthetic=True)
    return True


def visit_rows(
    rng: random.Random, index: PlaceIndex, workers: dict[str, User], count: int, *, now: datetime
) -> list[dict[str, Any]]:
    """Visits that found nothing, as rows for the bulk import."""
    rows: list[dict[str, Any]] = []
    while len(rows) < count:
        i = rng.randrange(len(index.polygons))
        leaf = index.leaves[i]
        worker = _worker_for(workers, leaf.grid_code, leaf.village_code)
        if worker is None or leaf.village_code is None:
            continue
        lon, lat = _point(rng, index.polygons[i])
        kinds = _kinds(rng)
        at = _when(rng, now)
        rows.append(
            {
                "worker_id": worker.id,
                "worker_name": worker.display_name,
                "division_code": leaf.grid_code or leaf.village_code,
                "village_code": leaf.village_code,
                "kinds": kinds,
                "address": f"{rng.choice(STREETS)}{rng.randint(1, 200)}号",
                "household_head": person_name(rng),
                "household_phone": mobile(rng),
                "notes": "；".join(NOTES[k] for k in kinds),
                "lon": lon,
                "lat": lat,
                "visited_at": at,
                "synthetic": True,
                "created_at": at,
            }
        )
    return rows


def make_patrol(
    session: Session, rng: random.Random, index: PlaceIndex, workers: dict[str, User], *, now: datetime
) -> bool:
    i = rng.randrange(len(index.polygons))
    leaf = index.leaves[i]
    worker = _worker_for(workers, leaf.grid_code, leaf.village_code)
    if worker is None:
        return False
    start = _when(rng, now)
    lon, lat = _point(rng, index.polygons[i])
    points = []
    for step in range(rng.randint(8, 30)):
        lon += rng.uniform(-0.0008, 0.0008)
        lat += rng.uniform(-0.0008, 0.0008)
        points.append(TrackPoint(lon=lon, lat=lat, at=start + timedelta(minutes=2 * step)))
    patrol = service.start_patrol(
        session, worker=worker, data=PatrolStart(notes="日常巡查"), now=start, synthetic=True
    )
    service.end_patrol(
        session,
        worker=worker,
        patrol_id=patrol.id,
        now=points[-1].at or start,
        data=PatrolEnd(points=points, notes=rng.choice(("日常巡查，未见异常", "夜间巡查", "重点部位巡查"))),
    )
    return True


def run(ctx: SeedContext) -> None:
    visits, with_issue, patrols = COUNTS[ctx.scale]
    rng = ctx.rng("visits")
    now = utcnow()
    advance = ctx.task("visits: a year of household visits, issues as cases, patrols", total=visits + patrols)
    with ctx.db.session() as session:
        index = places_service.build_index(session)
        workers = service.recorders(session)
    if not workers:
        return
    made = 0
    while made < with_issue:
        with ctx.db.session() as session:
            step = 0
            while step < BATCH and made < with_issue:
                if make_visit_with_issue(session, rng, index, workers, now=now):
                    made += 1
                    step += 1
        advance(step)
    plain = visits - with_issue
    for start in range(0, plain, BATCH * 10):
        count = min(BATCH * 10, plain - start)
        with ctx.db.session() as session:
            service.import_visits(session, rows=visit_rows(rng, index, workers, count, now=now))
        advance(count)
    done = 0
    while done < patrols:
        with ctx.db.session() as session:
            step = 0
            while step < BATCH and done < patrols:
                if make_patrol(session, rng, index, workers, now=now):
                    done += 1
                    step += 1
        advance(step)


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.count_visits(session) > 0


GENERATOR = Generator(name="visits", run=run, is_seeded=is_seeded)
