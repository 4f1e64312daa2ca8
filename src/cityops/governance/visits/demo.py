"""Synthetic field work for the demo: household visits (四大一送), the issues they find (each a case) and
patrols across the city, labelled synthetic.

Volumes: the seed's figure is 12,000 issues a year found on visits, about 33 a day. "full" makes three
years of them: 36,000 issues, each recorded through the visit service (the issue is a real case,
taken along its workflow by the case service as cityops.cases.demo describes: handled on time, late,
escalated, rejected or waiting, some rated and a few with a photo), 144,000 visits in all (the ones
that find nothing written in bulk through `service.import_visits`) and 500 patrols in the last 60
days. "small" makes a handful for the tests. A visit is made by the grid worker of its grid where the
demo has one, else by the village centre's operator (who may record visits too)."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from sqlalchemy.orm import Session

from cityops.cases import demo as cases_demo
from cityops.cases.models import Case
from cityops.core.auth.models import User
from cityops.core.db import Database
from cityops.core.seeding import Generator, SeedContext, keep_alive
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
from cityops.places.index import PlaceIndex

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# Visits over the last HISTORY_DAYS, of which with an issue (a case each), and patrols over the last
# PATROL_DAYS.
COUNTS = {"small": (30, 8, 4), "full": (144_000, 36_000, 500)}
HISTORY_DAYS = 3 * 365
PATROL_DAYS = 60
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


def _point(rng: random.Random, polygon: Any) -> tuple[float, float]:
    minx, miny, maxx, maxy = polygon.bounds
    for _ in range(30):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if polygon.contains(shapely.Point(x, y)):
            return x, y
    centre = polygon.representative_point()
    return centre.x, centre.y


def _when(rng: random.Random, now: datetime, days: int = HISTORY_DAYS) -> datetime:
    """A working-hours moment in the last `days` days (Beijing time)."""
    day = (now - timedelta(days=rng.uniform(1, days))).astimezone(LOCAL_TZ).date()
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


def record_visit_with_issue(
    session: Session, rng: random.Random, index: PlaceIndex, workers: dict[str, User], *, at: datetime
) -> User | None:
    """A visit at `at` that found one issue; the worker who made it (None: nobody records there)."""
    found = random_place(rng, index, workers)
    if found is None:
        return None
    worker, lon, lat = found
    head = person_name(rng)
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
    service.record_visit(session, worker=worker, data=data, index=index, now=at, synthetic=True)
    return worker


def make_visit_with_issue(
    session: Session, rng: random.Random, index: PlaceIndex, workers: dict[str, User], *, now: datetime
) -> bool:
    """A visit made now that found one issue, its case new (the simulator)."""
    return record_visit_with_issue(session, rng, index, workers, at=now) is not None


def visit_history(
    session: Session,
    kept: list[Any],
    rng: random.Random,
    history: cases_demo.History,
    workers: dict[str, User],
    *,
    at: datetime,
) -> bool:
    """A visit of the past that found one issue, its case taken along its workflow since. `kept`: the
    session's new objects (cityops.core.seeding.keep_alive), where the case is found without a query."""
    kept.clear()
    worker = record_visit_with_issue(session, rng, history.index, workers, at=at)
    if worker is None:
        return False
    for case in [o for o in kept if isinstance(o, Case)]:
        t = cases_demo.Timeline(session, case, history)
        cases_demo.live(t, rng, cases_demo.draw_fate(rng))
        cases_demo.aftercare(t, rng, photo="整改后照片.png", by=worker)
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
    start = _when(rng, now, PATROL_DAYS)
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
    history = cases_demo.History.load(ctx)
    now = history.now
    # Two lines: the issues (cases taken along their workflow) take nearly all the time.
    advance_issues = ctx.task("visits: issues found on household visits, as cases", total=with_issue)
    advance = ctx.task("visits: visits that found nothing, patrols", total=visits - with_issue + patrols)
    with ctx.db.session() as session:
        workers = service.recorders(session)
    if not workers:
        return
    # Oldest first, so case numbers follow the order of the visits.
    moments = sorted(_when(rng, now) for _ in range(with_issue))
    for start in range(0, with_issue, BATCH):
        with history.batch(ctx.db) as session:
            kept = keep_alive(session)
            for at in moments[start : start + BATCH]:
                # A place where nobody records visits is drawn again.
                while not visit_history(session, kept, rng, history, workers, at=at):
                    pass
        advance_issues(min(BATCH, with_issue - start))
    plain = visits - with_issue
    for start in range(0, plain, BATCH * 10):
        count = min(BATCH * 10, plain - start)
        with ctx.db.session() as session:
            service.import_visits(session, rows=visit_rows(rng, history.index, workers, count, now=now))
        advance(count)
    done = 0
    while done < patrols:
        with ctx.db.session() as session:
            step = 0
            while step < BATCH and done < patrols:
                if make_patrol(session, rng, history.index, workers, now=now):
                    done += 1
                    step += 1
        advance(step)


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.count_visits(session) > 0


GENERATOR = Generator(name="visits", run=run, is_seeded=is_seeded)
