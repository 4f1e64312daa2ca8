"""Risk register (探照灯 / 挖掘机 / 压路机).

The searchlight is a scan of the cases: cases of one category close together on the map and in time
(a cluster; repeat disputes at the same place when the category is a dispute), and disputes between the
same parties (from governance.disputes). Each pattern is registered once: a scan that finds a pattern
again adds the new cases to the open risk instead of registering another. The excavator stage sends
control tasks to units as cases; the road roller stage records aftercare, and the risk closes with its
root cause.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityops.cases import service as cases_service
from cityops.cases.schemas import ActionRequest, CaseCreate, CaseSummary
from cityops.cases.service import CasePoint
from cityops.core.auth.models import User
from cityops.core.auth.scope import authorize, scope_filter
from cityops.core.db import Database, utcnow
from cityops.core.errors import Conflict, NotFound, ValidationFailed
from cityops.core.scheduler import Job
from cityops.governance.assessment import repository as units_repo
from cityops.governance.assessment.service import unit_ref
from cityops.governance.risks import repository as repo
from cityops.governance.risks.models import Risk, RiskTask
from cityops.governance.risks.schemas import (
    RiskPage,
    RiskRead,
    RiskSummary,
    ScanReport,
    StageChange,
    TaskCreate,
    TaskRead,
)
from cityops.places.index import PlaceIndex

# A cluster: at least MIN_CASES cases of one category, each within RADIUS_M and WINDOW of another,
# among the cases of the last LOOKBACK.
RADIUS_M = 300.0
WINDOW = timedelta(days=90)
MIN_CASES = 3
LOOKBACK = timedelta(days=365)
MIN_SAME_PARTIES = 2
MAX_EXPORT_ROWS = 100_000
DONE_STATES = frozenset({"resolved", "verified", "closed"})
NEXT_STAGE = {"excavator": "searchlight", "roller": "excavator", "closed": "roller"}
KIND_ZH = {
    "cluster": "同类案件聚集",
    "same_place": "同一地点纠纷反复发生",
    "same_parties": "同一当事人纠纷反复发生",
}
# Control tasks are hazards to deal with; the type needs this field.
TASK_TYPE, TASK_CATEGORY, TASK_FIELDS = "hazard", "other", {"immediate_danger": False}


# --- the searchlight: finding patterns ----------------------------------------------------------


def _system_viewer(points: Sequence[CasePoint]) -> User:
    """A transient administrator of the whole province, to read cases and disputes as the system
    (never stored)."""
    province = (points[0].division_code[:2] if points else "41") + "0000"
    return User(
        id=0, username="system", display_name="系统", role="admin", scope_code=province, is_active=True
    )


def _components(n: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[find(i)].append(i)
    return list(groups.values())


def _metres_xy(points: Sequence[CasePoint]) -> np.ndarray[Any, Any]:
    lat0 = math.radians(sum(p.lat for p in points) / len(points))
    return np.array([(p.lon * 111_320.0 * math.cos(lat0), p.lat * 110_540.0) for p in points])


def clusters(
    points: Sequence[CasePoint],
    *,
    radius_m: float = RADIUS_M,
    window: timedelta = WINDOW,
    min_cases: int = MIN_CASES,
) -> list[list[CasePoint]]:
    """Groups of cases of one type and category linked by neighbours within radius_m and window
    (single linkage, like DBSCAN with min_samples 1), of at least min_cases."""
    by_category: dict[tuple[str, str], list[CasePoint]] = defaultdict(list)
    for p in points:
        by_category[(p.type_code, p.category)].append(p)
    found: list[list[CasePoint]] = []
    for members in by_category.values():
        if len(members) < min_cases:
            continue
        # Neighbours within the radius through an STR-tree of the points in metres (shapely is
        # already a dependency; scipy's cKDTree would do the same).
        xy = _metres_xy(members)
        geoms = shapely.points(xy)
        left, right = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=radius_m)
        pairs = [
            (int(a), int(b))
            for a, b in zip(left, right, strict=True)
            if a < b and abs(members[a].created_at - members[b].created_at) <= window
        ]
        for group in _components(len(members), pairs):
            if len(group) >= min_cases:
                found.append(sorted((members[i] for i in group), key=lambda p: p.id))
    return found


def _common_division(codes: Iterable[str]) -> str:
    """The smallest division (grid, village, township, county) holding every code, else the city."""
    codes = list(codes)
    for length in (15, 12, 9, 6):
        heads = {c[:length] for c in codes}
        if len(heads) == 1 and all(len(c) >= length for c in codes):
            return heads.pop()
    return codes[0][:4] + "00"


def _same_parties(session: Session, viewer: User, points: dict[int, CasePoint]) -> list[list[CasePoint]]:
    """Disputes between the same parties (governance.disputes decides who is the same), as groups of
    their cases reported in the scan period."""
    from cityops.governance.disputes import service as disputes_service

    earlier = disputes_service.repeats(session, viewer=viewer).earlier
    edges = [
        (later, first)
        for later, firsts in earlier.items()
        for first, reason in firsts.items()
        if reason == "same_party"
    ]
    if not edges:
        return []
    # Every dispute, not only the repeats: the first dispute of a pair is not a repeat itself.
    page = disputes_service.list_disputes(session, viewer=viewer, limit=MAX_EXPORT_ROWS)
    case_of = {d.id: d.case_id for d in page.items}
    ids = sorted({i for edge in edges for i in edge})
    index = {dispute_id: n for n, dispute_id in enumerate(ids)}
    groups = _components(len(ids), [(index[a], index[b]) for a, b in edges])
    found = []
    for group in groups:
        cases = [points[c] for c in (case_of.get(ids[i]) for i in group) if c is not None and c in points]
        if len(cases) >= MIN_SAME_PARTIES:
            found.append(sorted(cases, key=lambda p: p.id))
    return found


def _category_name(session: Session, viewer: User, case_id: int) -> str:
    """The Chinese category name of a case (as the case list shows it)."""
    found = cases_service.cases_by_ids(session, viewer=viewer, ids=[case_id])
    return found[0].category_name if found else ""


def _register(
    session: Session,
    kind: str,
    cases: list[CasePoint],
    known: dict[tuple[str, int], Risk],
    now: datetime,
    viewer: User,
) -> str | None:
    """Register a pattern or add its new cases to the open risk it overlaps; 'registered', 'updated'
    or None when nothing changed."""
    ids = [c.id for c in cases]
    overlapping = {known[(kind, i)].id: known[(kind, i)] for i in ids if (kind, i) in known}
    open_risk = next((r for r in overlapping.values() if r.stage != "closed"), None)
    if open_risk is not None:
        new = sorted(set(ids) - {int(i) for i in open_risk.case_ids})
        if not new:
            return None
        open_risk.case_ids = sorted({int(i) for i in open_risk.case_ids} | set(new))
        open_risk.case_count = len(open_risk.case_ids)
        open_risk.last_at = max(open_risk.last_at, *(c.created_at for c in cases))
        open_risk.updated_at = now
        # A growing pattern may spread over the village's edge: its division widens with it.
        open_risk.division_code = _common_division(
            [open_risk.division_code, *(c.division_code for c in cases)]
        )
        for i in new:
            known[(kind, i)] = open_risk
        return "updated"
    # A closed risk whose pattern comes back: only the cases after it count as a new pattern.
    closed_ids = {int(i) for r in overlapping.values() for i in r.case_ids}
    cases = [c for c in cases if c.id not in closed_ids]
    if len(cases) < (MIN_SAME_PARTIES if kind == "same_parties" else MIN_CASES):
        return None
    first = cases[0]
    lon = sum(c.lon for c in cases) / len(cases)
    lat = sum(c.lat for c in cases) / len(cases)
    xy = _metres_xy(cases)
    centre = xy.mean(axis=0)
    radius = float(max(np.hypot(*(xy - centre).T).max(), 50.0))
    risk = Risk(
        kind=kind,
        pattern_key=f"{kind}:{first.type_code}:{first.category}:{first.id}",
        type_code=first.type_code,
        category=first.category,
        title=f"{_category_name(session, viewer, first.id)}：{KIND_ZH[kind]}",
        division_code=_common_division(c.division_code for c in cases),
        lon=lon,
        lat=lat,
        radius_m=round(radius, 1),
        case_ids=[c.id for c in cases],
        case_count=len(cases),
        first_at=min(c.created_at for c in cases),
        last_at=max(c.created_at for c in cases),
        stage="searchlight",
        identified_at=now,
        updated_at=now,
    )
    session.add(risk)
    for c in cases:
        known[(kind, c.id)] = risk
    return "registered"


def scan(session: Session, *, now: datetime | None = None) -> ScanReport:
    """Find the case patterns of the last year and register the new ones (idempotent: a pattern
    already registered is not registered again; its new cases are added to it)."""
    now = now or utcnow()
    points = cases_service.case_points(session, since=now - LOOKBACK, until=now)
    known: dict[tuple[str, int], Risk] = {}
    for risk in repo.pattern_risks(session):
        for case_id in risk.case_ids:
            # An open risk wins over a closed one holding the same case.
            if (risk.kind, int(case_id)) not in known or risk.stage != "closed":
                known[(risk.kind, int(case_id))] = risk
    tally = {"registered": 0, "updated": 0}
    patterns = [("same_place" if g[0].type_code == "dispute" else "cluster", g) for g in clusters(points)]
    if points:
        by_id = {p.id: p for p in points}
        patterns += [("same_parties", g) for g in _same_parties(session, _system_viewer(points), by_id)]
    viewer = _system_viewer(points)
    for kind, group in patterns:
        outcome = _register(session, kind, group, known, now, viewer)
        if outcome:
            tally[outcome] += 1
    try:
        session.flush()
    except IntegrityError:
        # Another scan registered the same pattern at the same moment (the unique pattern key).
        raise Conflict("another scan is registering the same patterns; run it again") from None
    return ScanReport(**tally)


def scan_db(db: Database, *, now: datetime | None = None) -> ScanReport:
    with db.session() as session:
        return scan(session, now=now)


def risks_scan_job(*, interval_s: int = 3600) -> Job:
    """'governance.risks_scan' for the scheduler: the searchlight every hour."""
    return Job("governance.risks_scan", interval_s, lambda db, now: scan_db(db, now=now))


# --- reading ------------------------------------------------------------------------------------


def _authorize(viewer: User, risk: Risk | None, risk_id: int) -> Risk:
    if risk is None:
        raise NotFound(f"risk {risk_id} not found")
    authorize(viewer, division_code=risk.division_code, resource="risk", resource_id=risk_id)
    return risk


def check_visible(session: Session, *, viewer: User, risk_id: int) -> None:
    _authorize(viewer, repo.get(session, risk_id), risk_id)


def _summary(risk: Risk) -> RiskSummary:
    return RiskSummary(
        id=risk.id,
        kind=risk.kind,
        title=risk.title,
        type_code=risk.type_code,
        category=risk.category,
        division_code=risk.division_code,
        lon=risk.lon,
        lat=risk.lat,
        radius_m=risk.radius_m,
        case_count=risk.case_count,
        first_at=risk.first_at,
        last_at=risk.last_at,
        stage=risk.stage,
        identified_at=risk.identified_at,
    )


def to_read(session: Session, risk: Risk, *, viewer: User) -> RiskRead:
    tasks = repo.tasks(session, risk.id)
    ids = [int(i) for i in risk.case_ids] + [t.case_id for t in tasks if t.case_id is not None]
    cases: dict[int, CaseSummary] = {
        c.id: c for c in cases_service.cases_by_ids(session, viewer=viewer, ids=ids)
    }
    units = units_repo.units(session, (t.org_unit_id for t in tasks))
    return RiskRead(
        **_summary(risk).model_dump(),
        aftercare=risk.aftercare,
        root_cause=risk.root_cause,
        closed_at=risk.closed_at,
        cases=[cases[int(i)] for i in risk.case_ids if int(i) in cases],
        tasks=[
            TaskRead(
                id=t.id,
                title=t.title,
                org_unit=unit_ref(units.get(t.org_unit_id or 0)),
                case=cases.get(t.case_id or 0),
                created_by_name=t.created_by_name,
                created_at=t.created_at,
            )
            for t in tasks
        ],
    )


def get_risk(session: Session, *, viewer: User, risk_id: int) -> RiskRead:
    return to_read(session, _authorize(viewer, repo.get(session, risk_id), risk_id), viewer=viewer)


def _condition(viewer: User) -> ColumnElement[bool]:
    return scope_filter(viewer, Risk.division_code)


def list_risks(
    session: Session,
    *,
    viewer: User,
    stage: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> RiskPage:
    if stage and stage not in NEXT_STAGE.values() and stage != "closed":
        raise ValidationFailed("stage must be searchlight, excavator, roller or closed", field="stage")
    if kind and kind not in KIND_ZH:
        raise ValidationFailed(f"kind must be one of {', '.join(KIND_ZH)}", field="kind")
    rows, total = repo.page(
        session,
        repo.list_query(condition=_condition(viewer), stage=stage, kind=kind),
        limit=limit,
        offset=offset,
    )
    return RiskPage(items=[_summary(r) for r in rows], total=total, limit=limit, offset=offset)


EXPORT_HEADERS = (
    "ID",
    "Risk",
    "Kind",
    "Case type",
    "Category",
    "Division",
    "Cases",
    "First case",
    "Last case",
    "Stage",
    "Identified",
    "Longitude",
    "Latitude",
)


def export_rows(
    session: Session, *, viewer: User, stage: str | None = None, kind: str | None = None
) -> Iterator[list[Any]]:
    for r in list_risks(session, viewer=viewer, stage=stage, kind=kind, limit=MAX_EXPORT_ROWS).items:
        yield [
            r.id,
            r.title,
            r.kind,
            r.type_code,
            r.category,
            r.division_code,
            r.case_count,
            r.first_at,
            r.last_at,
            r.stage,
            r.identified_at,
            round(r.lon, 6),
            round(r.lat, 6),
        ]


# --- the excavator and the road roller ----------------------------------------------------------


def add_task(
    session: Session,
    *,
    actor: User,
    risk_id: int,
    data: TaskCreate,
    index: PlaceIndex,
    now: datetime | None = None,
) -> RiskTask:
    """A control task: a case at the risk's place, accepted and dispatched to the unit. The first task
    moves the risk from the searchlight to the excavator stage."""
    risk = _authorize(actor, repo.get(session, risk_id), risk_id)
    if risk.stage not in ("searchlight", "excavator"):
        raise Conflict(
            f"risk {risk.id} is at the {risk.stage} stage; control tasks are over", field="org_unit_code"
        )
    unit = units_repo.unit_by_code(session, data.org_unit_code)
    if unit is None:
        raise ValidationFailed(f"no org unit with code {data.org_unit_code!r}", field="org_unit_code")
    now = now or utcnow()
    case = cases_service.report_case(
        session,
        index=index,
        reporter=actor,
        now=now,
        data=CaseCreate(
            type_code=TASK_TYPE,
            category=TASK_CATEGORY,
            title=f"风险管控：{data.title}",
            description=data.description or f"{risk.title}（风险 {risk.id}）的管控任务",
            lon=risk.lon,
            lat=risk.lat,
            fields=dict(TASK_FIELDS),
        ),
    )
    case = cases_service.act(
        session,
        actor=actor,
        case_id=case.id,
        action="accept",
        now=now,
        body=ActionRequest(version=case.version, comment=f"风险 {risk.id} 管控任务"),
    )
    cases_service.act(
        session,
        actor=actor,
        case_id=case.id,
        action="dispatch",
        now=now,
        body=ActionRequest(version=case.version, org_unit_code=unit.code),
    )
    task = RiskTask(
        risk_id=risk.id,
        case_id=case.id,
        org_unit_id=unit.id,
        title=data.title.strip(),
        created_by_name=actor.display_name,
        created_at=now,
    )
    session.add(task)
    if risk.stage == "searchlight":
        risk.stage = "excavator"
    risk.updated_at = now
    session.flush()
    return task


def change_stage(
    session: Session, *, actor: User, risk_id: int, data: StageChange, now: datetime | None = None
) -> Risk:
    """searchlight -> excavator -> roller (every control task done, aftercare noted) -> closed (root
    cause noted)."""
    risk = _authorize(actor, repo.get(session, risk_id), risk_id)
    expected = NEXT_STAGE[data.to]
    if risk.stage != expected:
        raise Conflict(
            f"risk {risk.id} is at the {risk.stage} stage; it moves to {data.to} only from {expected}",
            field="to",
            detail={"stage": risk.stage},
        )
    now = now or utcnow()
    if data.to == "roller":
        tasks = repo.tasks(session, risk.id)
        if not tasks:
            raise Conflict("give the risk at least one control task first", field="to")
        cases = cases_service.cases_by_ids(session, viewer=actor, ids=[t.case_id for t in tasks if t.case_id])
        open_ = [c.number for c in cases if c.status not in DONE_STATES]
        if open_:
            raise Conflict(
                f"control tasks still open: {', '.join(open_)}", field="to", detail={"open": open_}
            )
        if not (data.note or "").strip():
            raise ValidationFailed("describe the aftercare", field="note")
        risk.aftercare = data.note
    elif data.to == "closed":
        if not (data.root_cause or "").strip():
            raise ValidationFailed("a risk closes with its root cause", field="root_cause")
        risk.root_cause = data.root_cause
        risk.closed_at = now
    risk.stage = data.to
    risk.updated_at = now
    session.flush()
    return risk


def count_risks(session: Session) -> int:
    return repo.count_all(session)
