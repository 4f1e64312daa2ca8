"""JSON routes of disputes under /api/governance/disputes."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.export import xlsx_response
from cityops.governance.disputes import service
from cityops.governance.disputes.schemas import (
    MAX_ID,
    DisputeCreate,
    DisputeFiguresRead,
    DisputePage,
    DisputeRead,
    OutcomeCreate,
    SessionCreate,
    SessionRead,
)
from cityops.places import service as places_service

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/governance/disputes", tags=["governance"])

Reader = Annotated[User, Depends(require_permission("governance.read"))]
Manager = Annotated[User, Depends(require_permission("governance.manage"))]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Your role may not do this"},
    404: {"description": "No such dispute in your scope"},
    409: {"description": "Not possible in the dispute's or its case's state"},
    422: {"description": "Invalid input; names the field"},
}
Division = Annotated[
    str | None, Query(max_length=15, pattern=r"^[0-9]*$", description="Division code; default your own scope")
]
Day = Annotated[date | None, Query(description="First / last day of the period (Beijing dates)")]


def visible_dispute(
    dispute_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep, user: Reader
) -> int:
    """The dispute id, once it is known to be in the user's scope: checked before the body is read,
    so a dispute elsewhere answers 404 whatever the body says."""
    service.check_visible(session, viewer=user, dispute_id=dispute_id)
    return dispute_id


DisputeId = Annotated[int, Depends(visible_dispute)]


@router.post("", response_model=DisputeRead, status_code=201, responses=ERRORS)
def create(body: DisputeCreate, request: Request, session: SessionDep, user: Manager) -> DisputeRead:
    """Record a dispute with its parties: its case is reported and routed to the village centre."""
    index = places_service.cache_for(request.app.state).index(session)
    dispute = service.create_dispute(session, viewer=user, data=body, index=index)
    return service.get_dispute(session, viewer=user, dispute_id=dispute.id, request=request)


@router.get(
    "",
    response_model=DisputePage,
    responses={
        **ERRORS,
        200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
    },
)
def list_disputes(
    session: SessionDep,
    user: Reader,
    settings: SettingsDep,
    status: Annotated[str | None, Query(max_length=10, description="mediating, referred or agreed")] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    q: Annotated[str | None, Query(max_length=60, description="Text in title, place or case number")] = None,
    division: Division = None,
    repeat: Annotated[bool, Query(description="Only repeat disputes")] = False,
    figure: Annotated[
        str | None,
        Query(max_length=20, description="Drill-down: reported, resolved, resolved_at_level or repeat"),
    ] = None,
    level: Annotated[str | None, Query(max_length=10)] = None,
    start: Day = None,
    end: Day = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
) -> DisputePage | Response:
    """Disputes in your scope, newest first, parties masked; `?format=xlsx` downloads the whole list."""
    filters = service.Filters(
        status=status or None,
        category=category or None,
        q=q,
        division=division or None,
        repeat=repeat,
        figure=figure or None,
        level=level or None,
        start=start,
        end=end,
    )
    if format == "xlsx":
        return xlsx_response(
            "矛盾纠纷.xlsx",
            "disputes",
            service.EXPORT_HEADERS,
            service.export_rows(session, viewer=user, filters=filters),
            timezone=settings.display_timezone,
        )
    return service.list_disputes(session, viewer=user, filters=filters, limit=limit, offset=offset)


@router.get("/figures", response_model=DisputeFiguresRead, responses=ERRORS)
def figures(
    session: SessionDep, user: Reader, division: Division = None, start: Day = None, end: Day = None
) -> DisputeFiguresRead:
    """小事不出村、大事不出镇: disputes resolved at each level (from the case timeline), the share kept in
    the village and within the township, repeat disputes; per unit one level down too."""
    return service.figures_of(session, viewer=user, division=division or None, start=start, end=end)


@router.get("/points", responses={**ERRORS, 200: {"content": {"application/geo+json": {}}}})
def points(
    session: SessionDep, user: Reader, division: Division = None, start: Day = None, end: Day = None
) -> dict[str, Any]:
    """Disputes recorded in a unit and period as GeoJSON points (id, status, repeat) for the hotspot
    map; no personal information."""
    return service.points(session, viewer=user, division=division or None, start=start, end=end)


@router.get("/{dispute_id}", response_model=DisputeRead, responses=ERRORS)
def get_dispute(dispute_id: DisputeId, request: Request, session: SessionDep, user: Reader) -> DisputeRead:
    """One dispute; parties unmasked (and the read audited) only for roles with pii.view."""
    return service.get_dispute(session, viewer=user, dispute_id=dispute_id, request=request)


@router.post("/{dispute_id}/sessions", response_model=SessionRead, status_code=201, responses=ERRORS)
def add_session(dispute_id: DisputeId, body: SessionCreate, session: SessionDep, user: Reader) -> SessionRead:
    """Record a mediation session (date, mediator, place, outcome)."""
    row = service.add_session(session, viewer=user, dispute_id=dispute_id, data=body)
    return SessionRead(
        id=row.id,
        held_on=row.held_on,
        mediator=row.mediator,
        place=row.place,
        outcome=row.outcome,
        notes=row.notes,
        level=row.level,
        created_at=row.created_at,
    )


@router.post("/{dispute_id}/outcome", response_model=DisputeRead, responses=ERRORS)
def record_outcome(
    dispute_id: DisputeId, body: OutcomeCreate, request: Request, session: SessionDep, user: Reader
) -> DisputeRead:
    """Agreement reached (the case is resolved at its level) or referral to the next level up."""
    service.record_outcome(session, viewer=user, dispute_id=dispute_id, data=body)
    return service.get_dispute(session, viewer=user, dispute_id=dispute_id, request=request)
