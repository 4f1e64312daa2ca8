"""Grid workers in the field: household visits (四大一送), patrols and problems reported on the spot.

Every issue found becomes a case through the case engine (source "grid_worker"), routed from its
place like any report; a GridIssue row links the case back to its visit or patrol. A worker records
only inside their own area (a grid worker's grid, a centre operator's division). Services flush,
never commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from pyproj import Geod
from sqlalchemy import insert
from sqlalchemy.orm import Session

from cityops.cases import service as cases_service
from cityops.cases.models import Case
from cityops.cases.schemas import CaseCreate
from cityops.core import files
from cityops.core.auth import audit
from cityops.core.auth.models import User
from cityops.core.auth.pii import mask_phone
from cityops.core.auth.roles import can_view_pii, has_permission
from cityops.core.auth.scope import authorize, can_access, scope_filter
from cityops.core.db import utcnow
from cityops.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityops.governance.visits import repository as repo
from cityops.governance.visits.models import VISIT_KINDS, GridIssue, Patrol, Visit
from cityops.governance.visits.schemas import (
    IssueCreate,
    IssueKindRead,
    IssueRef,
    LocatedIssue,
    PatrolEnd,
    PatrolPage,
    PatrolPoints,
    PatrolRead,
    PatrolStart,
    ReportRead,
    TrackPoint,
    VisitCreate,
    VisitPage,
    VisitRead,
)
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
GEOD = Geod(ellps="WGS84")
MAX_PHOTO_BYTES = 10 * 1024 * 1024
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_TRACK_POINTS = 20_000
# A phone's clock may run a little ahead of the server's.
CLOCK_SLACK = timedelta(minutes=5)
MAX_EXPORT_ROWS = 100_000
KIND_NAMES = MappingProxyType(
    {"visit": "走访", "publicise": "宣传", "check": "排查", "resolve": "化解", "support": "帮扶"}
)


@dataclasses.dataclass(frozen=True)
class IssueKind:
    """What a grid worker picks on the phone: the case type and category it becomes, and defaults
    for the type's required fields."""

    name_zh: str
    name_en: str
    type_code: str
    category: str
    fields: MappingProxyType[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))


_PARTIES = MappingProxyType({"parties": 2})
_NOT_URGENT = MappingProxyType({"immediate_danger": False})
ISSUE_KINDS: MappingProxyType[str, IssueKind] = MappingProxyType(
    {
        "neighbour_dispute": IssueKind("邻里纠纷", "Neighbour dispute", "dispute", "neighbour", _PARTIES),
        "family_dispute": IssueKind("婚姻家庭纠纷", "Family dispute", "dispute", "family", _PARTIES),
        "land_dispute": IssueKind("土地承包纠纷", "Land contract dispute", "dispute", "land", _PARTIES),
        "labour_dispute": IssueKind("劳资纠纷", "Wage and labour dispute", "dispute", "labour", _PARTIES),
        "fire_hazard": IssueKind("消防隐患", "Fire hazard", "hazard", "fire", _NOT_URGENT),
        "gas_hazard": IssueKind("燃气隐患", "Gas hazard", "hazard", "gas", _NOT_URGENT),
        "unsafe_building": IssueKind("危房", "Unsafe building", "hazard", "building", _NOT_URGENT),
        "other_hazard": IssueKind("其他隐患", "Other hazard", "hazard", "other", _NOT_URGENT),
        "rubbish": IssueKind("垃圾堆放", "Dumped rubbish", "urban", "garbage"),
        "road_damage": IssueKind("道路破损", "Damaged road", "urban", "roads"),
        "street_light": IssueKind("路灯不亮", "Street light out", "urban", "lighting"),
        "other": IssueKind("其他问题", "Other problem", "urban", "other"),
    }
)


def issue_kinds() -> list[IssueKindRead]:
    return [
        IssueKindRead(
            code=code, name_zh=k.name_zh, name_en=k.name_en, type_code=k.type_code, category=k.category
        )
        for code, k in ISSUE_KINDS.items()
    ]


def issue_kind(code: str, *, field: str = "kind") -> IssueKind:
    kind = ISSUE_KINDS.get(code)
    if kind is None:
        raise ValidationFailed(f"unknown issue kind {code!r}; known: {', '.join(ISSUE_KINDS)}", field=field)
    return kind


# --- place and photo ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Place:
    lon: float
    lat: float
    grid_code: str | None
    village_code: str

    @property
    def division_code(self) -> str:
        return self.grid_code or self.village_code


def place_in_scope(index: PlaceIndex, worker: User, *, lon: float, lat: float, field: str = "lon") -> Place:
    """The grid and village of a GPS point inside the worker's area; 422 naming the field for a bad
    point, a point outside the city or outside the worker's grid."""
    try:
        hit = places_service.lookup_point(index, lon=lon, lat=lat)
    except NotFound as exc:
        raise ValidationFailed(exc.message, field=field) from None
    if hit.village is None:
        raise ValidationFailed(f"the point ({lon:.6f}, {lat:.6f}) lies in no village", field=field)
    place = Place(
        lon=hit.lon, lat=hit.lat, grid_code=hit.grid.code if hit.grid else None, village_code=hit.village.code
    )
    if not can_access(worker, division_code=place.division_code):
        where = hit.grid or hit.village
        raise ValidationFailed(
            f"the point ({lon:.6f}, {lat:.6f}) lies in {where.name} ({where.code}), outside your area "
            f"{worker.scope_code or '(none)'}; record only where you work",
            field=field,
        )
    return place


@dataclasses.dataclass(frozen=True)
class Photo:
    data: bytes
    media_type: str


def store_photo(root: Path, photo: Photo, *, field: str = "photo") -> files.StoredFile:
    """A JPEG, PNG or WebP photo of at most MAX_PHOTO_BYTES, stored by its hash (415 / 413 naming the
    field otherwise)."""
    media_type = photo.media_type.split(";", 1)[0].strip().lower()
    if media_type not in PHOTO_TYPES:
        raise ValidationFailed(
            f"a photo must be one of {', '.join(PHOTO_TYPES)}, not {media_type or '(none)'}",
            field=field,
            status=415,
        )
    return files.store(root, photo.data, media_type=media_type, field=field, max_bytes=MAX_PHOTO_BYTES)


def _store(photo: Photo | None, files_root: Path | None) -> files.StoredFile | None:
    if photo is None:
        return None
    if files_root is None:
        raise ValueError("files_root is needed to store a photo")
    return store_photo(files_root, photo)


def _check_time(at: datetime, now: datetime, field: str) -> datetime:
    if at > now + CLOCK_SLACK:
        raise ValidationFailed(f"{at.isoformat()} is in the future", field=field)
    return at


def _require_recorder(worker: User) -> None:
    if not has_permission(worker, "visits.record"):
        raise Forbidden(
            "your role may not record visits, patrols or problems (needs permission 'visits.record')"
        )


# --- issues -> cases ----------------------------------------------------------------------------


def _issue_case(
    session: Session,
    *,
    issue: IssueCreate,
    worker: User,
    place: Place,
    index: PlaceIndex,
    origin: str,
    field_prefix: str,
    reporter_name: str | None = None,
    reporter_phone: str | None = None,
    now: datetime,
) -> Case:
    kind = issue_kind(issue.kind, field=field_prefix + "kind")
    if not issue.title.strip():
        raise ValidationFailed("say what the issue is", field=field_prefix + "title")
    description = "\n\n".join(part for part in (issue.description.strip(), origin) if part)
    data = CaseCreate(
        type_code=kind.type_code,
        category=kind.category,
        title=issue.title.strip(),
        description=description,
        lon=place.lon,
        lat=place.lat,
        reporter_name=reporter_name,
        reporter_phone=reporter_phone,
        source="grid_worker",
        fields={**kind.fields, **issue.fields},
    )
    try:
        return cases_service.report_case(session, data=data, index=index, reporter=worker, now=now)
    except ValidationFailed as exc:
        exc.field = field_prefix + (exc.field or "kind")
        raise


def _issue_ref(issue: GridIssue, number: str, status: str, photo_url: str | None = None) -> IssueRef:
    return IssueRef(
        id=issue.id, case_id=issue.case_id, case_number=number, case_status=status, photo_url=photo_url
    )


# --- visits -------------------------------------------------------------------------------------


def record_visit(
    session: Session,
    *,
    worker: User,
    data: VisitCreate,
    index: PlaceIndex,
    photo: Photo | None = None,
    files_root: Path | None = None,
    now: datetime | None = None,
    synthetic: bool = False,
) -> Visit:
    """Record a household visit in the worker's area; each issue found becomes a case routed from
    the visit's place, with the household head as the person concerned."""
    _require_recorder(worker)
    if not data.address.strip():
        raise ValidationFailed("give the household's address", field="address")
    place = place_in_scope(index, worker, lon=data.lon, lat=data.lat)
    for i, issue in enumerate(data.issues):
        issue_kind(issue.kind, field=f"issues.{i}.kind")
    now = now or utcnow()
    visited_at = _check_time(data.visited_at or now, now, "visited_at")
    stored = _store(photo, files_root)
    visit = Visit(
        worker_id=worker.id,
        worker_name=worker.display_name,
        division_code=place.division_code,
        village_code=place.village_code,
        kinds=list(dict.fromkeys(data.kinds)),
        address=data.address.strip(),
        household_head=data.household_head or None,
        household_phone=data.household_phone or None,
        notes=data.notes,
        lon=place.lon,
        lat=place.lat,
        photo_sha256=stored.sha256 if stored else None,
        photo_media_type=stored.media_type if stored else None,
        photo_size=stored.size if stored else None,
        visited_at=visited_at,
        synthetic=synthetic,
        created_at=now,
    )
    session.add(visit)
    session.flush()
    kinds = "、".join(KIND_NAMES[k] for k in visit.kinds)
    for i, issue in enumerate(data.issues):
        case = _issue_case(
            session,
            issue=issue,
            worker=worker,
            place=place,
            index=index,
            origin=f"来源：网格员入户走访（{kinds}），走访记录 #{visit.id}",
            field_prefix=f"issues.{i}.",
            reporter_name=visit.household_head,
            reporter_phone=visit.household_phone,
            now=visited_at,
        )
        session.add(
            GridIssue(
                case_id=case.id,
                visit_id=visit.id,
                worker_id=worker.id,
                division_code=case.division_code,
                synthetic=synthetic,
                created_at=now,
            )
        )
    session.flush()
    return visit


def import_visits(session: Session, *, rows: Sequence[dict[str, Any]]) -> int:
    """Bulk-insert visits that found no issue (demo history, imports from another system): each row has
    the Visit columns, its place already checked by the caller. Returns the rows written."""
    for row in rows:
        unknown = set(row.get("kinds") or ()) - set(VISIT_KINDS)
        if not row.get("kinds") or unknown:
            raise ValidationFailed(f"visit kinds must be some of {', '.join(VISIT_KINDS)}", field="kinds")
    if rows:
        session.execute(insert(Visit), list(rows))
    return len(rows)


def _authorize_visit(viewer: User, visit: Visit | None, visit_id: int) -> Visit:
    if visit is None:
        raise NotFound(f"visit {visit_id} not found")
    authorize(
        viewer,
        division_code=visit.division_code,
        owner_id=visit.worker_id,
        resource="visit",
        resource_id=visit_id,
    )
    return visit


def _pii_visible(viewer: User | None, worker_id: int | None) -> bool:
    return viewer is None or can_view_pii(viewer) or (worker_id is not None and viewer.id == worker_id)


def to_read(visit: Visit, issues: list[IssueRef], *, pii_visible: bool) -> VisitRead:
    return VisitRead(
        id=visit.id,
        worker_id=visit.worker_id,
        worker_name=visit.worker_name,
        division_code=visit.division_code,
        village_code=visit.village_code,
        kinds=list(visit.kinds),
        address=visit.address,
        household_head=visit.household_head if pii_visible else cases_service.mask_name(visit.household_head),
        household_phone=visit.household_phone if pii_visible else mask_phone(visit.household_phone),
        pii_visible=pii_visible,
        notes=visit.notes,
        lon=visit.lon,
        lat=visit.lat,
        photo_url=f"/api/governance/visits/{visit.id}/photo" if visit.photo_sha256 else None,
        visited_at=visit.visited_at,
        synthetic=visit.synthetic,
        issues=issues,
    )


def _visit_issues(session: Session, visit_ids: list[int]) -> dict[int, list[IssueRef]]:
    out: dict[int, list[IssueRef]] = {}
    for issue, number, status in repo.issues_of(session, visit_ids=visit_ids):
        out.setdefault(issue.visit_id or 0, []).append(_issue_ref(issue, number, status))
    return out


def get_visit(session: Session, *, viewer: User, visit_id: int, request: Any = None) -> VisitRead:
    """One visit in the viewer's scope (404 outside it); reading the household's details unmasked is
    audited."""
    visit = _authorize_visit(viewer, session.get(Visit, visit_id), visit_id)
    pii_visible = _pii_visible(viewer, visit.worker_id)
    if pii_visible and viewer.id != visit.worker_id and (visit.household_head or visit.household_phone):
        audit.record(
            session,
            viewer,
            "pii_read",
            "visit",
            visit.id,
            division_code=visit.division_code,
            request=request,
            detail={"fields": ["household_head", "household_phone"]},
        )
    return to_read(visit, _visit_issues(session, [visit.id]).get(visit.id, []), pii_visible=pii_visible)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=LOCAL_TZ)


def _visit_query(
    viewer: User,
    *,
    village: str | None,
    mine: bool,
    kind: str | None,
    start: date | None,
    end: date | None,
    case_id: int | None,
) -> Any:
    if kind is not None and kind not in VISIT_KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(VISIT_KINDS)}, not {kind!r}", field="kind")
    if start is not None and end is not None and end < start:
        raise ValidationFailed("end is before start", field="end")
    condition = scope_filter(viewer, Visit.division_code, None, Visit.worker_id)
    return repo.visit_query(
        condition=condition,
        village=village,
        worker_id=viewer.id if mine else None,
        kind=kind,
        start=_day_start(start) if start else None,
        end=_day_start(end + timedelta(days=1)) if end else None,
        case_id=case_id,
    )


def list_visits(
    session: Session,
    *,
    viewer: User,
    village: str | None = None,
    mine: bool = False,
    kind: str | None = None,
    start: date | None = None,
    end: date | None = None,
    case_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> VisitPage:
    """Visits in the viewer's scope, newest first; the household's details masked in lists (except
    for the worker's own visits)."""
    query = _visit_query(viewer, village=village, mine=mine, kind=kind, start=start, end=end, case_id=case_id)
    rows, total = repo.page_visits(session, query, limit=limit, offset=offset)
    issues = _visit_issues(session, [v.id for v in rows])
    items = [to_read(v, issues.get(v.id, []), pii_visible=v.worker_id == viewer.id) for v in rows]
    return VisitPage(items=items, total=total, limit=limit, offset=offset)


EXPORT_HEADERS = (
    "Visit",
    "Visited at",
    "Grid worker",
    "Division",
    "Kinds",
    "Address",
    "Household head",
    "Phone",
    "Notes",
    "Cases",
)


def export_rows(
    session: Session,
    *,
    viewer: User,
    village: str | None = None,
    mine: bool = False,
    kind: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> Iterator[list[Any]]:
    """Every visit of the filtered list, masked like the list, for the Excel export."""
    query = _visit_query(viewer, village=village, mine=mine, kind=kind, start=start, end=end, case_id=None)
    rows, _total = repo.page_visits(session, query, limit=MAX_EXPORT_ROWS, offset=0)
    issues = _visit_issues(session, [v.id for v in rows])
    for visit in rows:
        read = to_read(visit, issues.get(visit.id, []), pii_visible=visit.worker_id == viewer.id)
        yield [
            read.id,
            read.visited_at,
            read.worker_name,
            read.division_code,
            "、".join(KIND_NAMES[k] for k in read.kinds),
            read.address,
            read.household_head or "",
            read.household_phone or "",
            read.notes,
            " ".join(i.case_number for i in read.issues),
        ]


def visit_photo(session: Session, *, viewer: User, visit_id: int, root: Path) -> tuple[Path, str]:
    visit = _authorize_visit(viewer, session.get(Visit, visit_id), visit_id)
    if not visit.photo_sha256:
        raise NotFound(f"visit {visit_id} has no photo")
    return files.open_path(root, visit.photo_sha256), visit.photo_media_type or "application/octet-stream"


# --- problems reported on their own -------------------------------------------------------------


def report_problem(
    session: Session,
    *,
    worker: User,
    data: LocatedIssue,
    index: PlaceIndex,
    photo: Photo | None = None,
    files_root: Path | None = None,
    now: datetime | None = None,
    synthetic: bool = False,
) -> GridIssue:
    """A problem a grid worker reports on the spot, with its photo, as a case."""
    _require_recorder(worker)
    place = place_in_scope(index, worker, lon=data.lon, lat=data.lat)
    issue_kind(data.kind)
    stored = _store(photo, files_root)
    now = now or utcnow()
    case = _issue_case(
        session,
        issue=data,
        worker=worker,
        place=place,
        index=index,
        origin="来源：网格员现场上报",
        field_prefix="",
        now=now,
    )
    issue = GridIssue(
        case_id=case.id,
        worker_id=worker.id,
        division_code=case.division_code,
        photo_sha256=stored.sha256 if stored else None,
        photo_media_type=stored.media_type if stored else None,
        synthetic=synthetic,
        created_at=now,
    )
    session.add(issue)
    session.flush()
    return issue


def report_read(session: Session, issue: GridIssue) -> ReportRead:
    number, status = repo.case_ref(session, issue.case_id)
    return ReportRead(
        id=issue.id,
        case_id=issue.case_id,
        case_number=number,
        case_status=status,
        division_code=issue.division_code,
        photo_url=f"/api/governance/visits/issues/{issue.id}/photo" if issue.photo_sha256 else None,
    )


def issue_photo(session: Session, *, viewer: User, issue_id: int, root: Path) -> tuple[Path, str]:
    issue = session.get(GridIssue, issue_id)
    if issue is None:
        raise NotFound(f"issue {issue_id} not found")
    authorize(
        viewer,
        division_code=issue.division_code,
        owner_id=issue.worker_id,
        resource="issue",
        resource_id=issue_id,
    )
    if not issue.photo_sha256:
        raise NotFound(f"issue {issue_id} has no photo")
    return files.open_path(root, issue.photo_sha256), issue.photo_media_type or "application/octet-stream"


# --- patrols ------------------------------------------------------------------------------------


def track_distance_m(track: Sequence[Sequence[Any]]) -> float:
    """Length of a track along the WGS84 ellipsoid, in metres."""
    if len(track) < 2:
        return 0.0
    return round(float(GEOD.line_length([p[0] for p in track], [p[1] for p in track])), 1)


def _append(patrol: Patrol, points: Sequence[TrackPoint], now: datetime) -> None:
    if len(patrol.track) + len(points) > MAX_TRACK_POINTS:
        raise ValidationFailed(f"a patrol keeps at most {MAX_TRACK_POINTS} track points", field="points")
    added = []
    for i, point in enumerate(points):
        at = _check_time(point.at or now, now, f"points.{i}.at")
        if at < patrol.started_at - CLOCK_SLACK:
            raise ValidationFailed(f"{at.isoformat()} is before the patrol started", field=f"points.{i}.at")
        added.append([round(point.lon, 7), round(point.lat, 7), at.astimezone(LOCAL_TZ).isoformat()])
    if added:
        # A new list, so the JSON column is seen as changed.
        patrol.track = [*patrol.track, *added]
        patrol.distance_m = track_distance_m(patrol.track)


def start_patrol(
    session: Session, *, worker: User, data: PatrolStart, now: datetime | None = None, synthetic: bool = False
) -> Patrol:
    """Start a patrol of the worker's area; one at a time (409 with the one under way)."""
    _require_recorder(worker)
    if not worker.scope_code:
        raise Forbidden("your account has no area to patrol")
    running = repo.open_patrol(session, worker.id)
    if running is not None:
        raise Conflict(f"patrol {running.id} is under way; end it first", detail={"patrol_id": running.id})
    now = now or utcnow()
    patrol = Patrol(
        worker_id=worker.id,
        worker_name=worker.display_name,
        division_code=worker.scope_code,
        started_at=now,
        track=[],
        distance_m=0.0,
        notes=data.notes,
        synthetic=synthetic,
    )
    _append(patrol, data.points, now)
    session.add(patrol)
    session.flush()
    return patrol


def _patrol(session: Session, viewer: User, patrol_id: int) -> Patrol:
    patrol = session.get(Patrol, patrol_id)
    if patrol is None:
        raise NotFound(f"patrol {patrol_id} not found")
    authorize(
        viewer,
        division_code=patrol.division_code,
        owner_id=patrol.worker_id,
        resource="patrol",
        resource_id=patrol_id,
    )
    return patrol


def check_patrol(session: Session, *, viewer: User, patrol_id: int) -> None:
    """404 unless the patrol is in the viewer's scope (checked before a request body is read)."""
    _patrol(session, viewer, patrol_id)


def _own_patrol(session: Session, worker: User, patrol_id: int, *, running: bool) -> Patrol:
    patrol = _patrol(session, worker, patrol_id)
    if patrol.worker_id != worker.id:
        raise Forbidden("only the grid worker on the patrol may add to it")
    if running and patrol.ended_at is not None:
        raise Conflict(f"patrol {patrol_id} has ended", field="patrol_id")
    return patrol


def add_points(
    session: Session, *, worker: User, patrol_id: int, data: PatrolPoints, now: datetime | None = None
) -> Patrol:
    patrol = _own_patrol(session, worker, patrol_id, running=True)
    if not data.points:
        raise ValidationFailed("send at least one point", field="points")
    _append(patrol, data.points, now or utcnow())
    session.flush()
    return patrol


def end_patrol(
    session: Session, *, worker: User, patrol_id: int, data: PatrolEnd, now: datetime | None = None
) -> Patrol:
    patrol = _own_patrol(session, worker, patrol_id, running=True)
    now = now or utcnow()
    _append(patrol, data.points, now)
    if data.notes is not None:
        patrol.notes = data.notes
    patrol.ended_at = max(now, patrol.started_at)
    session.flush()
    return patrol


def patrol_issue(
    session: Session,
    *,
    worker: User,
    patrol_id: int,
    data: LocatedIssue,
    index: PlaceIndex,
    now: datetime | None = None,
    synthetic: bool = False,
) -> GridIssue:
    """An issue found on the patrol, at its own place in the worker's area, as a case."""
    patrol = _own_patrol(session, worker, patrol_id, running=False)
    place = place_in_scope(index, worker, lon=data.lon, lat=data.lat)
    now = now or utcnow()
    case = _issue_case(
        session,
        issue=data,
        worker=worker,
        place=place,
        index=index,
        origin=f"来源：网格员巡查，巡查记录 #{patrol.id}",
        field_prefix="",
        now=now,
    )
    issue = GridIssue(
        case_id=case.id,
        patrol_id=patrol.id,
        worker_id=worker.id,
        division_code=case.division_code,
        synthetic=synthetic,
        created_at=now,
    )
    session.add(issue)
    session.flush()
    return issue


def patrol_read(
    session: Session, patrol: Patrol, *, with_track: bool = True, issues: list[IssueRef] | None = None
) -> PatrolRead:
    if issues is None:
        issues = [_issue_ref(i, n, s) for i, n, s in repo.issues_of(session, patrol_ids=[patrol.id])]
    return PatrolRead(
        id=patrol.id,
        worker_id=patrol.worker_id,
        worker_name=patrol.worker_name,
        division_code=patrol.division_code,
        started_at=patrol.started_at,
        ended_at=patrol.ended_at,
        point_count=len(patrol.track),
        distance_m=patrol.distance_m,
        notes=patrol.notes,
        synthetic=patrol.synthetic,
        issues=issues,
        track=[(p[0], p[1], p[2]) for p in patrol.track] if with_track else None,
    )


def get_patrol(session: Session, *, viewer: User, patrol_id: int) -> PatrolRead:
    return patrol_read(session, _patrol(session, viewer, patrol_id))


def list_patrols(
    session: Session,
    *,
    viewer: User,
    mine: bool = False,
    open_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> PatrolPage:
    condition = scope_filter(viewer, Patrol.division_code, None, Patrol.worker_id)
    query = repo.patrol_query(condition=condition, worker_id=viewer.id if mine else None, open_only=open_only)
    rows, total = repo.page_patrols(session, query, limit=limit, offset=offset)
    issues: dict[int, list[IssueRef]] = {}
    for issue, number, status in repo.issues_of(session, patrol_ids=[p.id for p in rows]):
        issues.setdefault(issue.patrol_id or 0, []).append(_issue_ref(issue, number, status))
    return PatrolPage(
        items=[patrol_read(session, p, with_track=False, issues=issues.get(p.id, [])) for p in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def running_patrol(session: Session, *, worker: User) -> Patrol | None:
    """The worker's patrol under way, if any (the phone page resumes it)."""
    return repo.open_patrol(session, worker.id)


def recorders(session: Session) -> dict[str, User]:
    """Scope code -> an active account that records field work there: the grid worker of a grid, the
    operator of a village centre (demo and simulator). The accounts are detached from the session."""
    found: dict[str, User] = {}
    for user in repo.recorders(session):
        if user.scope_code and (user.role == "grid_worker" or len(user.scope_code) == 12):
            found.setdefault(user.scope_code, user)
    for user in found.values():
        session.expunge(user)
    return found


def visit_cases(session: Session, *, visit_id: int) -> list[Case]:
    """The cases a visit's issues became (for the demo and the simulator, acting as the system)."""
    return repo.visit_cases(session, visit_id)


def count_visits(session: Session) -> int:
    return repo.count_visits(session)
