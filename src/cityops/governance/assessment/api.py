"""JSON routes of project risk assessment under /api/governance/projects."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from cityops.cases.schemas import MAX_ID
from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.export import xlsx_response
from cityops.governance.assessment import service
from cityops.governance.assessment.schemas import (
    AdvanceRequest,
    AssessmentCreate,
    MitigationCreate,
    MitigationDone,
    MitigationRead,
    ProjectCreate,
    ProjectPage,
    ProjectRead,
)

router = APIRouter(
    route_class=UnitOfWorkRoute, prefix="/api/governance/projects", tags=["governance: risk assessment"]
)

Reader = Annotated[User, Depends(require_permission("governance.read"))]
Manager = Annotated[User, Depends(require_permission("governance.manage"))]
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID)]
MitigationId = Annotated[int, Path(ge=1, le=MAX_ID)]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Your role may not do this, or the division is outside your scope"},
    404: {"description": "No such project in your scope"},
    409: {"description": "Blocked (names the missing mitigations) or not allowed in this status"},
    422: {"description": "Invalid input; names the field"},
}


def visible_project(project_id: ProjectId, session: SessionDep, user: Reader) -> int:
    """The project must be in the caller's scope; checked before the body, so a project outside it
    answers 404 whatever the body says."""
    service.check_visible(session, viewer=user, project_id=project_id)
    return project_id


Visible = Annotated[int, Depends(visible_project)]


@router.get(
    "",
    response_model=ProjectPage,
    responses={
        200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
        **ERRORS,
    },
)
def list_projects(
    session: SessionDep,
    user: Reader,
    settings: SettingsDep,
    status: Annotated[str | None, Query(max_length=12, description="assessing, approved, proceeding")] = None,
    risk_level: Annotated[str | None, Query(max_length=8, description="low, medium, high")] = None,
    blocked: Annotated[bool | None, Query(description="Only stopped (true) or not stopped (false)")] = None,
    q: Annotated[str | None, Query(max_length=60, description="Text in the name")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
) -> ProjectPage | Response:
    """Projects and decisions in your scope with their risk level; `counts` tells how many high-risk
    projects are stopped and released. `?format=xlsx` downloads the filtered list."""
    if format == "xlsx":
        rows = service.export_rows(
            session, viewer=user, status=status or None, risk_level=risk_level or None, blocked=blocked, q=q
        )
        return xlsx_response(
            "重大项目风险评估.xlsx",
            "projects",
            service.EXPORT_HEADERS,
            rows,
            timezone=settings.display_timezone,
        )
    return service.list_projects(
        session,
        viewer=user,
        status=status or None,
        risk_level=risk_level or None,
        blocked=blocked,
        q=q,
        limit=limit,
        offset=offset,
    )


@router.post("", response_model=ProjectRead, status_code=201, responses=ERRORS)
def register(body: ProjectCreate, session: SessionDep, user: Manager) -> ProjectRead:
    """Register a project or major decision for assessment."""
    project = service.register_project(session, actor=user, data=body)
    return service.to_read(session, project)


@router.get("/{project_id}", response_model=ProjectRead, responses=ERRORS)
def get_project(project_id: Visible, session: SessionDep, user: Reader) -> ProjectRead:
    """A project with its assessments, mitigations and what is missing before approval."""
    return service.get_project(session, viewer=user, project_id=project_id)


@router.post("/{project_id}/assessments", response_model=ProjectRead, status_code=201, responses=ERRORS)
def assess(project_id: Visible, body: AssessmentCreate, session: SessionDep, user: Manager) -> ProjectRead:
    """Record a risk assessment (level and factors considered); a high level stops the project."""
    return service.to_read(session, service.assess(session, actor=user, project_id=project_id, data=body))


@router.post("/{project_id}/mitigations", response_model=MitigationRead, status_code=201, responses=ERRORS)
def add_mitigation(
    project_id: Visible, body: MitigationCreate, session: SessionDep, user: Manager
) -> MitigationRead:
    service.add_mitigation(session, actor=user, project_id=project_id, data=body)
    return service.get_project(session, viewer=user, project_id=project_id).mitigations[-1]


@router.post("/{project_id}/mitigations/{mitigation_id}/done", response_model=ProjectRead, responses=ERRORS)
def complete_mitigation(
    project_id: Visible, mitigation_id: MitigationId, body: MitigationDone, session: SessionDep, user: Manager
) -> ProjectRead:
    """Record a mitigation as carried out."""
    service.complete_mitigation(
        session, actor=user, project_id=project_id, mitigation_id=mitigation_id, data=body
    )
    return service.get_project(session, viewer=user, project_id=project_id)


@router.post("/{project_id}/advance", response_model=ProjectRead, responses=ERRORS)
def advance(project_id: Visible, body: AdvanceRequest, session: SessionDep, user: Manager) -> ProjectRead:
    """Approve (then start) the project. A high-risk project with mitigations still open answers 409
    with the missing ones in `detail.missing`."""
    return service.to_read(session, service.advance(session, actor=user, project_id=project_id, data=body))
