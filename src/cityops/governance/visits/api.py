"""JSON routes of grid workers' field work: /api/governance/visits and /api/governance/patrols.

Visits and problem reports are multipart forms (they carry a photo); patrols are JSON.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ValidationError

from cityops.core.auth.deps import CurrentUser, require_permission
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.errors import Forbidden, ValidationFailed
from cityops.core.export import xlsx_response
from cityops.governance.visits import service
from cityops.governance.visits.schemas import (
    MAX_ID,
    IssueKindRead,
    LocatedIssue,
    PatrolEnd,
    PatrolPage,
    PatrolPoints,
    PatrolRead,
    PatrolStart,
    ReportRead,
    VisitCreate,
    VisitKind,
    VisitPage,
    VisitRead,
)
from cityops.places import service as places_service

router = APIRouter(
    route_class=UnitOfWorkRoute, prefix="/api/governance", tags=["governance: visits and patrols"]
)

Recorder = Annotated[User, Depends(require_permission("visits.record"))]
VisitId = Annotated[int, Path(ge=1, le=MAX_ID)]
PatrolId = Annotated[int, Path(ge=1, le=MAX_ID)]
IssueId = Annotated[int, Path(ge=1, le=MAX_ID)]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Your role may not record visits"},
    404: {"description": "Not found in your scope"},
    409: {"description": "A patrol under way, or a patrol that has ended"},
    413: {"description": "Photo too large; names the field"},
    415: {"description": "Photo of a type not accepted; names the field"},
    422: {"description": "Invalid input (bad coordinates, outside your grid ...); names the field"},
}


def reader(user: CurrentUser) -> User:
    """Visits and patrols are read by governance staff and the grid workers themselves."""
    if not (has_permission(user, "governance.read") or has_permission(user, "visits.record")):
        raise Forbidden("your role may not read visits (needs permission 'governance.read')")
    return user


Reader = Annotated[User, Depends(reader)]
M = TypeVar("M", bound=BaseModel)


def _build(model: type[M], values: dict[str, Any]) -> M:
    """A schema from form values; a refusal names the field like a JSON body's would."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        raise ValidationFailed(f"{field}: {error['msg']}", field=field) from None


def _photo(upload: UploadFile | None) -> service.Photo | None:
    """The uploaded photo, read up to one byte past the limit (so an oversize file is refused
    without reading it all). A file input left empty sends a part with no name and no bytes."""
    if upload is None or (not upload.filename and not upload.size):
        return None
    data = upload.file.read(service.MAX_PHOTO_BYTES + 1)
    return service.Photo(data=data, media_type=upload.content_type or "")


def _issues(text: str | None) -> list[Any]:
    if not text or not text.strip():
        return []
    try:
        value = json.loads(text)
    except ValueError:
        raise ValidationFailed("issues must be a JSON list of issues", field="issues") from None
    if not isinstance(value, list):
        raise ValidationFailed("issues must be a JSON list of issues", field="issues")
    return value


Lon = Annotated[float, Form(ge=-180, le=180, allow_inf_nan=False, description="WGS84 longitude")]
Lat = Annotated[float, Form(ge=-90, le=90, allow_inf_nan=False, description="WGS84 latitude")]
Photo = Annotated[UploadFile | None, File(description="JPEG, PNG or WebP, at most 10 MB")]


@router.get("/visits/issue-kinds", response_model=list[IssueKindRead])
def issue_kinds(user: Reader) -> list[IssueKindRead]:
    """The kinds of issue a grid worker picks, and the case type and category each becomes."""
    return service.issue_kinds()


@router.post("/visits", response_model=VisitRead, status_code=201, responses=ERRORS)
def record_visit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Recorder,
    kinds: Annotated[
        list[VisitKind], Form(description="四大一送: visit, publicise, check, resolve, support")
    ],
    address: Annotated[str, Form(min_length=1, max_length=200)],
    lon: Lon,
    lat: Lat,
    household_head: Annotated[str | None, Form(max_length=60)] = None,
    household_phone: Annotated[str | None, Form(max_length=20)] = None,
    notes: Annotated[str, Form(max_length=5000)] = "",
    visited_at: Annotated[
        str | None, Form(max_length=40, description="ISO time with zone; default now")
    ] = None,
    issues: Annotated[
        str | None,
        Form(max_length=50_000, description='JSON list: [{"kind", "title", "description", "fields"}]'),
    ] = None,
    photo: Photo = None,
) -> VisitRead:
    """Record a household visit at your GPS position (inside your grid); each issue becomes a case."""
    data = _build(
        VisitCreate,
        {
            "kinds": kinds,
            "address": address,
            "lon": lon,
            "lat": lat,
            "household_head": household_head or None,
            "household_phone": household_phone or None,
            "notes": notes,
            "visited_at": visited_at or None,
            "issues": _issues(issues),
        },
    )
    index = places_service.cache_for(request.app.state).index(session)
    visit = service.record_visit(
        session, worker=user, data=data, index=index, photo=_photo(photo), files_root=settings.attachments_dir
    )
    return service.get_visit(session, viewer=user, visit_id=visit.id, request=request)


@router.get(
    "/visits",
    response_model=VisitPage,
    responses={200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}},
)
def list_visits(
    session: SessionDep,
    settings: SettingsDep,
    user: Reader,
    village: Annotated[
        str | None, Query(max_length=15, pattern=r"^[0-9]*$", description="Division code prefix")
    ] = None,
    mine: Annotated[bool, Query(description="Only my own visits")] = False,
    kind: Annotated[str | None, Query(max_length=12)] = None,
    start: Annotated[date | None, Query(description="First day (Beijing)")] = None,
    end: Annotated[date | None, Query(description="Last day (Beijing)")] = None,
    case_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="The visit that made this case")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
) -> VisitPage | Response:
    """Visits in your scope, newest first; `?format=xlsx` downloads the whole filtered list."""
    if format == "xlsx":
        rows = service.export_rows(
            session, viewer=user, village=village or None, mine=mine, kind=kind or None, start=start, end=end
        )
        return xlsx_response(
            "入户走访.xlsx", "visits", service.EXPORT_HEADERS, rows, timezone=settings.display_timezone
        )
    return service.list_visits(
        session,
        viewer=user,
        village=village or None,
        mine=mine,
        kind=kind or None,
        start=start,
        end=end,
        case_id=case_id,
        limit=limit,
        offset=offset,
    )


@router.post("/visits/reports", response_model=ReportRead, status_code=201, responses=ERRORS)
def report_problem(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Recorder,
    kind: Annotated[str, Form(min_length=1, max_length=40, description="An issue kind")],
    title: Annotated[str, Form(min_length=1, max_length=200)],
    lon: Lon,
    lat: Lat,
    description: Annotated[str, Form(max_length=2000)] = "",
    photo: Photo = None,
) -> ReportRead:
    """Report a problem on the spot with a photo and your GPS position: it becomes a case."""
    data = _build(
        LocatedIssue, {"kind": kind, "title": title, "description": description, "lon": lon, "lat": lat}
    )
    index = places_service.cache_for(request.app.state).index(session)
    issue = service.report_problem(
        session, worker=user, data=data, index=index, photo=_photo(photo), files_root=settings.attachments_dir
    )
    return service.report_read(session, issue)


@router.get("/visits/issues/{issue_id}/photo", response_class=FileResponse, responses=ERRORS)
def issue_photo(issue_id: IssueId, session: SessionDep, settings: SettingsDep, user: Reader) -> FileResponse:
    path, media_type = service.issue_photo(
        session, viewer=user, issue_id=issue_id, root=settings.attachments_dir
    )
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=86400"})


@router.get("/visits/{visit_id}", response_model=VisitRead, responses=ERRORS)
def get_visit(visit_id: VisitId, request: Request, session: SessionDep, user: Reader) -> VisitRead:
    return service.get_visit(session, viewer=user, visit_id=visit_id, request=request)


@router.get("/visits/{visit_id}/photo", response_class=FileResponse, responses=ERRORS)
def visit_photo(visit_id: VisitId, session: SessionDep, settings: SettingsDep, user: Reader) -> FileResponse:
    path, media_type = service.visit_photo(
        session, viewer=user, visit_id=visit_id, root=settings.attachments_dir
    )
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=86400"})


# --- patrols ------------------------------------------------------------------------------------


@router.post("/patrols", response_model=PatrolRead, status_code=201, responses=ERRORS)
def start_patrol(body: PatrolStart, session: SessionDep, user: Recorder) -> PatrolRead:
    """Start a patrol (one at a time); post track points while it runs, then end it."""
    return service.patrol_read(session, service.start_patrol(session, worker=user, data=body))


@router.get("/patrols", response_model=PatrolPage)
def list_patrols(
    session: SessionDep,
    user: Reader,
    mine: Annotated[bool, Query(description="Only my own patrols")] = False,
    open_only: Annotated[bool, Query(alias="open", description="Only patrols under way")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> PatrolPage:
    """Patrols in your scope, newest first (without their tracks)."""
    return service.list_patrols(
        session, viewer=user, mine=mine, open_only=open_only, limit=limit, offset=offset
    )


def patrol_in_scope(patrol_id: PatrolId, session: SessionDep, user: CurrentUser) -> int:
    """404 for a patrol outside your scope, before the request body is looked at."""
    service.check_patrol(session, viewer=user, patrol_id=patrol_id)
    return patrol_id


ScopedPatrol = Annotated[int, Depends(patrol_in_scope)]


@router.get("/patrols/{patrol_id}", response_model=PatrolRead, responses=ERRORS)
def get_patrol(patrol_id: ScopedPatrol, session: SessionDep, user: Reader) -> PatrolRead:
    """A patrol with its track ([lon, lat, time] in the order walked) and distance."""
    return service.get_patrol(session, viewer=user, patrol_id=patrol_id)


@router.post("/patrols/{patrol_id}/points", response_model=PatrolRead, responses=ERRORS)
def add_points(
    patrol_id: ScopedPatrol, body: PatrolPoints, session: SessionDep, user: Recorder
) -> PatrolRead:
    """Add track points to your patrol under way; answers the distance so far (without the track)."""
    patrol = service.add_points(session, worker=user, patrol_id=patrol_id, data=body)
    return service.patrol_read(session, patrol, with_track=False)


@router.post("/patrols/{patrol_id}/end", response_model=PatrolRead, responses=ERRORS)
def end_patrol(patrol_id: ScopedPatrol, body: PatrolEnd, session: SessionDep, user: Recorder) -> PatrolRead:
    """End your patrol, with its last points and notes."""
    patrol = service.end_patrol(session, worker=user, patrol_id=patrol_id, data=body)
    return service.patrol_read(session, patrol)


@router.post("/patrols/{patrol_id}/issues", response_model=ReportRead, status_code=201, responses=ERRORS)
def patrol_issue(
    patrol_id: ScopedPatrol, body: LocatedIssue, request: Request, session: SessionDep, user: Recorder
) -> ReportRead:
    """An issue found on your patrol, at its place inside your grid: it becomes a case."""
    index = places_service.cache_for(request.app.state).index(session)
    issue = service.patrol_issue(session, worker=user, patrol_id=patrol_id, data=body, index=index)
    return service.report_read(session, issue)
