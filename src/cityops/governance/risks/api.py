"""JSON routes of the risk register under /api/governance/risks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from cityops.cases.schemas import MAX_ID
from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.export import xlsx_response
from cityops.governance.risks import service
from cityops.governance.risks.schemas import RiskPage, RiskRead, ScanReport, StageChange, TaskCreate
from cityops.places import service as places_service

router = APIRouter(
    route_class=UnitOfWorkRoute, prefix="/api/governance/risks", tags=["governance: risk register"]
)

Reader = Annotated[User, Depends(require_permission("governance.read"))]
Manager = Annotated[User, Depends(require_permission("governance.manage"))]
RiskId = Annotated[int, Path(ge=1, le=MAX_ID)]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Your role may not do this"},
    404: {"description": "No such risk in your scope"},
    409: {"description": "Not allowed at this stage (names what is missing)"},
    422: {"description": "Invalid input; names the field"},
}


def visible_risk(risk_id: RiskId, session: SessionDep, user: Reader) -> int:
    """The risk must be in the caller's scope; checked before the body."""
    service.check_visible(session, viewer=user, risk_id=risk_id)
    return risk_id


Visible = Annotated[int, Depends(visible_risk)]


@router.get(
    "",
    response_model=RiskPage,
    responses={
        200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
        **ERRORS,
    },
)
def list_risks(
    session: SessionDep,
    user: Reader,
    settings: SettingsDep,
    stage: Annotated[
        str | None, Query(max_length=12, description="searchlight, excavator, roller, closed")
    ] = None,
    kind: Annotated[str | None, Query(max_length=12, description="cluster, same_place, same_parties")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
) -> RiskPage | Response:
    """Risks in your scope, latest case first, with where they are (lon, lat, radius_m) for the map;
    `?format=xlsx` downloads the list."""
    if format == "xlsx":
        rows = service.export_rows(session, viewer=user, stage=stage or None, kind=kind or None)
        return xlsx_response(
            "风险台账.xlsx", "risks", service.EXPORT_HEADERS, rows, timezone=settings.display_timezone
        )
    return service.list_risks(
        session, viewer=user, stage=stage or None, kind=kind or None, limit=limit, offset=offset
    )


@router.post("/scan", response_model=ScanReport, responses=ERRORS)
def scan(session: SessionDep, user: Manager) -> ScanReport:
    """Run the searchlight now (the scheduler runs it hourly): registers new case patterns once."""
    return service.scan(session)


@router.get("/{risk_id}", response_model=RiskRead, responses=ERRORS)
def get_risk(risk_id: Visible, session: SessionDep, user: Reader) -> RiskRead:
    """A risk with its cases and control tasks."""
    return service.get_risk(session, viewer=user, risk_id=risk_id)


@router.post("/{risk_id}/tasks", response_model=RiskRead, status_code=201, responses=ERRORS)
def add_task(
    risk_id: Visible, body: TaskCreate, request: Request, session: SessionDep, user: Manager
) -> RiskRead:
    """A control task (挖掘机): a case dispatched to the unit; the risk moves to the excavator stage."""
    index = places_service.cache_for(request.app.state).index(session)
    service.add_task(session, actor=user, risk_id=risk_id, data=body, index=index)
    return service.get_risk(session, viewer=user, risk_id=risk_id)


@router.post("/{risk_id}/stage", response_model=RiskRead, responses=ERRORS)
def change_stage(risk_id: Visible, body: StageChange, session: SessionDep, user: Manager) -> RiskRead:
    """Move the risk on: to roller (压路机) once its control tasks are done, with the aftercare; to
    closed with the root cause."""
    service.change_stage(session, actor=user, risk_id=risk_id, data=body)
    return service.get_risk(session, viewer=user, risk_id=risk_id)
