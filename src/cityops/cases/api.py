"""JSON routes of the case engine under /api/cases."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from cityops.cases import service
from cityops.cases.schemas import (
    MAX_ID,
    ActionRequest,
    CaseCreate,
    CaseEventRead,
    CasePage,
    CaseRead,
    FiguresRead,
)
from cityops.cases.workflow import STATES
from cityops.core.auth.deps import CurrentUser, require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.export import xlsx_response

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/cases", tags=["cases"])

CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]
Reporter = Annotated[User, Depends(require_permission("cases.report"))]
Action = Annotated[str, Path(pattern=r"^[a-z_]{1,24}$")]
ERRORS: dict[int | str, dict[str, Any]] = {404: {"description": "No such case in your scope"},
          409: {"description": "Not allowed in this state (with the allowed moves) or a stale version"},
          422: {"description": "Invalid input; names the field"}}


@router.post("", response_model=CaseRead, status_code=201, responses=ERRORS)
async def report(body: CaseCreate, request: Request, user: Reporter) -> CaseRead:
    """Report a case: routed from its location to the grid's village centre or the owning department.
    Reports arriving together are written in one transaction (group commit)."""
    return await service.intake_queue(request.app.state).submit(service.Intake(body, user))


@router.get("", response_model=CasePage, responses={200: {"content": {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}})
def list_cases(
    session: SessionDep, user: CurrentUser, settings: SettingsDep,
    status: Annotated[list[str] | None, Query(max_length=len(STATES),
                                              description="One or more states")] = None,
    type_code: Annotated[str | None, Query(max_length=40)] = None,
    level: Annotated[str | None, Query(max_length=10)] = None,
    q: Annotated[str | None, Query(max_length=60, description="Text in number, title or description")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
    box: Annotated[Literal["scope", "unit", "mine"], Query(
        description="scope: everything you may see; unit: your org unit's; mine: assigned to you")] = "scope",
    open_only: Annotated[bool, Query(description="Leave out closed, rejected and merged cases")] = False,
    overdue: Annotated[bool, Query(description="Only running cases past their deadline")] = False,
    sort: Annotated[Literal["newest", "oldest", "deadline"], Query()] = "newest",
) -> CasePage | Response:
    """Cases in your scope; `?format=xlsx` downloads the whole filtered list."""
    filters: dict[str, Any] = {"status": [s for s in status or [] if s], "type_code": type_code or None,
                               "level": level or None, "q": q, "box": box, "open_only": open_only,
                               "overdue": overdue, "sort": sort}
    if format == "xlsx":
        return xlsx_response("案件列表.xlsx", "cases", service.EXPORT_HEADERS,
                             service.export_rows(session, viewer=user, **filters),
                             timezone=settings.display_timezone)
    return service.list_cases(session, viewer=user, limit=limit, offset=offset, **filters)


Division = Annotated[str | None, Query(max_length=15, pattern=r"^[0-9]+$",
                                      description="Division code; default your own scope")]
Day = Annotated[date | None, Query(description="First / last day of the period (Beijing dates)")]
FIGURE_ERRORS: dict[int | str, dict[str, Any]] = {404: {"description": "Division outside your scope"},
                                                  422: {"description": "Invalid input; names the field"}}


@router.get("/figures", response_model=FiguresRead, responses=FIGURE_ERRORS)
def figures(session: SessionDep, user: CurrentUser, division: Division = None, start: Day = None,
            end: Day = None) -> FiguresRead:
    """Figures of a unit and period from the timeline: reported, resolved, resolved and on time at
    each level, escalated. Each figure's `cases_url` lists its cases."""
    return service.figures_of(session, viewer=user, division=division, start=start, end=end)


@router.get("/figures/cases", response_model=CasePage, responses=FIGURE_ERRORS)
def figure_cases(
    session: SessionDep, user: CurrentUser,
    figure: Annotated[str, Query(max_length=20, description="reported, resolved, escalated, "
                                 "escalated_auto, resolved_at_level, on_time or late")],
    level: Annotated[str | None, Query(max_length=10)] = None,
    division: Division = None, start: Day = None, end: Day = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> CasePage:
    """The cases behind one figure (drill-down)."""
    return service.figure_cases(session, viewer=user, figure=figure, division=division, level=level or None,
                                start=start, end=end, limit=limit, offset=offset)


@router.get("/{case_id}", response_model=CaseRead, responses=ERRORS)
def get_case(case_id: CaseId, request: Request, session: SessionDep, user: CurrentUser) -> CaseRead:
    return service.get_case(session, viewer=user, case_id=case_id, request=request)


@router.get("/{case_id}/timeline", response_model=list[CaseEventRead], responses=ERRORS)
def timeline(case_id: CaseId, session: SessionDep, user: CurrentUser) -> list[CaseEventRead]:
    return service.timeline(session, viewer=user, case_id=case_id)


@router.post("/{case_id}/actions/{action}", response_model=CaseRead, responses=ERRORS)
def act(case_id: CaseId, action: Action, body: ActionRequest, session: SessionDep,
        user: CurrentUser) -> CaseRead:
    """Apply a workflow action with the version you saw; answers the case in its new state."""
    case = service.act(session, actor=user, case_id=case_id, action=action, body=body)
    return service.to_read(session, case, viewer=user)
