"""JSON routes of the four meetings under /api/governance/meetings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from cityops.cases.schemas import MAX_ID
from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.export import xlsx_response
from cityops.governance.meetings import service
from cityops.governance.meetings.schemas import (
    DecisionCreate,
    DrawResult,
    ItemCreate,
    MeetingCreate,
    MeetingPage,
    MeetingRead,
    MinutesUpdate,
)
from cityops.places import service as places_service

router = APIRouter(
    route_class=UnitOfWorkRoute, prefix="/api/governance/meetings", tags=["governance: meetings"]
)

Reader = Annotated[User, Depends(require_permission("governance.read"))]
Manager = Annotated[User, Depends(require_permission("governance.manage"))]
MeetingId = Annotated[int, Path(ge=1, le=MAX_ID)]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Your role may not do this, or the division is outside your scope"},
    404: {"description": "No such meeting (or agenda item) in your scope"},
    409: {"description": "Not allowed now (the meeting was held, the item decided already ...)"},
    422: {"description": "Invalid input; names the field"},
}


def visible_meeting(meeting_id: MeetingId, session: SessionDep, user: Reader) -> int:
    """The meeting must be in the caller's scope; checked before the body."""
    service.check_visible(session, viewer=user, meeting_id=meeting_id)
    return meeting_id


Visible = Annotated[int, Depends(visible_meeting)]


@router.get(
    "",
    response_model=MeetingPage,
    responses={
        200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
        **ERRORS,
    },
)
def list_meetings(
    session: SessionDep,
    user: Reader,
    settings: SettingsDep,
    level: Annotated[str | None, Query(max_length=10, description="village, township, county, city")] = None,
    status: Annotated[str | None, Query(max_length=8, description="planned or held")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
) -> MeetingPage | Response:
    """Meetings of the centres in your scope, latest first; `?format=xlsx` downloads the list."""
    if format == "xlsx":
        rows = service.export_rows(session, viewer=user, level=level or None, status=status or None)
        return xlsx_response(
            "四会.xlsx", "meetings", service.EXPORT_HEADERS, rows, timezone=settings.display_timezone
        )
    return service.list_meetings(
        session, viewer=user, level=level or None, status=status or None, limit=limit, offset=offset
    )


@router.post("", response_model=MeetingRead, status_code=201, responses=ERRORS)
def schedule(body: MeetingCreate, session: SessionDep, user: Manager) -> MeetingRead:
    """Schedule a meeting of a centre; the division's level decides which of the four meetings it is."""
    meeting = service.schedule(session, actor=user, data=body)
    return service.to_read(session, meeting, viewer=user)


@router.get("/{meeting_id}", response_model=MeetingRead, responses=ERRORS)
def get_meeting(meeting_id: Visible, session: SessionDep, user: Reader) -> MeetingRead:
    return service.get_meeting(session, viewer=user, meeting_id=meeting_id)


@router.post("/{meeting_id}/agenda/draw", response_model=DrawResult, responses=ERRORS)
def draw_agenda(meeting_id: Visible, session: SessionDep, user: Manager) -> DrawResult:
    """Put on the agenda the open cases that arrived at the meeting's level in its division since the
    centre's previous meeting (30 days for a first meeting)."""
    return service.draw_result(session, actor=user, meeting_id=meeting_id)


@router.post("/{meeting_id}/agenda", response_model=MeetingRead, status_code=201, responses=ERRORS)
def add_item(meeting_id: Visible, body: ItemCreate, session: SessionDep, user: Manager) -> MeetingRead:
    """Add a case, or a topic without a case, to the agenda by hand."""
    service.add_item(session, actor=user, meeting_id=meeting_id, data=body)
    return service.get_meeting(session, viewer=user, meeting_id=meeting_id)


@router.post("/{meeting_id}/items/{item_id}/decision", response_model=MeetingRead, responses=ERRORS)
def decide(
    meeting_id: Visible,
    item_id: ItemId,
    body: DecisionCreate,
    request: Request,
    session: SessionDep,
    user: Manager,
) -> MeetingRead:
    """Record the decision on an agenda item: noted, a new case (`new_case`), or the agenda case sent
    to a unit (`org_unit_code`). The case made or acted on is linked from the item."""
    index = places_service.cache_for(request.app.state).index(session)
    service.decide(session, actor=user, meeting_id=meeting_id, item_id=item_id, data=body, index=index)
    return service.get_meeting(session, viewer=user, meeting_id=meeting_id)


@router.post("/{meeting_id}/minutes", response_model=MeetingRead, responses=ERRORS)
def record_minutes(
    meeting_id: Visible, body: MinutesUpdate, session: SessionDep, user: Manager
) -> MeetingRead:
    """Attendees and minutes; `held: true` marks the meeting as held."""
    service.record_minutes(session, actor=user, meeting_id=meeting_id, data=body)
    return service.get_meeting(session, viewer=user, meeting_id=meeting_id)
