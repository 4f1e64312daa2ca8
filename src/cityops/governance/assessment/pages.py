"""HTML pages of project risk assessment: /governance/projects and a project's page."""

from __future__ import annotations

import math
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from cityops.cases.schemas import MAX_ID
from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, form_refusal, register_nav, render
from cityops.governance.assessment import service
from cityops.governance.assessment.schemas import (
    AdvanceRequest,
    AssessmentCreate,
    MitigationCreate,
    MitigationDone,
    ProjectCreate,
)

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
PAGE_SIZE = 50
register_nav(
    NavItem(
        "governance-projects",
        N_("Risk assessment"),
        "/governance/projects",
        order=45,
        permission="governance.read",
        description=N_(
            "Social stability risk of major projects and decisions; high risks stay stopped "
            "until their mitigations are done."
        ),
    )
)

LEVEL_LABELS = {"low": N_("Low risk"), "medium": N_("Medium risk"), "high": N_("High risk")}
STATUS_LABELS = {
    "assessing": N_("Under assessment"),
    "approved": N_("Approved"),
    "proceeding": N_("Proceeding"),
}
KIND_LABELS = {"project": N_("Project"), "decision": N_("Major decision")}
Reader = Annotated[User, Depends(require_permission("governance.read"))]
Manager = Annotated[User, Depends(require_permission("governance.manage"))]
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str | None, Form(max_length=5000)]


def _labels() -> dict[str, Any]:
    return {"level_labels": LEVEL_LABELS, "status_labels": STATUS_LABELS, "kind_labels": KIND_LABELS}


def _projects_list(
    request: Request,
    session: SessionDep,
    user: Reader,
    q: Annotated[str | None, Query(max_length=60)] = None,
    risk_level: Annotated[str | None, Query(max_length=8)] = None,
    status: Annotated[str | None, Query(max_length=12)] = None,
    blocked: Annotated[bool | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page = service.list_projects(
        session,
        viewer=user,
        q=q,
        risk_level=risk_level or None,
        status=status or None,
        blocked=blocked,
        limit=PAGE_SIZE,
        offset=offset,
    )
    params = {
        k: v
        for k, v in {
            "q": q,
            "risk_level": risk_level,
            "status": status,
            "blocked": "true" if blocked else ("false" if blocked is False else None),
        }.items()
        if v
    }
    return render(
        request,
        "governance/assessment/projects.html",
        {
            **_labels(),
            "page": page,
            "q": q or "",
            "risk_level": risk_level or "",
            "status": status or "",
            "blocked": blocked,
            "query": urlencode(params),
            "offset": offset,
            "page_size": PAGE_SIZE,
            "pages": max(1, math.ceil(page.total / PAGE_SIZE)),
            "page_no": offset // PAGE_SIZE + 1,
            "can_manage": has_permission(user, "governance.manage"),
            "error": error,
        },
        status_code=status_code,
    )


@router.post("/governance/projects", response_class=HTMLResponse)
def register_form(
    request: Request,
    session: SessionDep,
    user: Manager,
    name: Annotated[str | None, Form(max_length=200)] = None,
    kind: Annotated[str | None, Form(max_length=10)] = None,
    owner_unit_code: Annotated[str | None, Form(max_length=40)] = None,
    division_code: Annotated[str | None, Form(max_length=15)] = None,
    description: Text = None,
) -> Response:
    try:
        data = ProjectCreate(
            name=name or "",
            kind=kind or "project",
            owner_unit_code=owner_unit_code or "",
            division_code=division_code or None,
            description=description or "",
        )
        project = service.register_project(session, actor=user, data=data)
    except (ValidationError, CityopsError) as exc:
        message, status = form_refusal(session, exc, record_page=False)
        return _projects_list(request, session, user, error=message, status_code=status)
    return RedirectResponse(f"/governance/projects/{project.id}", status_code=303)


def visible_project(project_id: ProjectId, session: SessionDep, user: Reader) -> int:
    service.check_visible(session, viewer=user, project_id=project_id)
    return project_id


Visible = Annotated[int, Depends(visible_project)]


def _project_page(
    request: Request,
    session: SessionDep,
    user: User,
    project_id: int,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    project = service.get_project(session, viewer=user, project_id=project_id)
    return render(
        request,
        "governance/assessment/project.html",
        {
            **_labels(),
            "project": project,
            "error": error,
            "can_manage": has_permission(user, "governance.manage"),
        },
        status_code=status_code,
    )


@router.get("/governance/projects/{project_id}", response_class=HTMLResponse, name="governance_project")
def project_page(project_id: Visible, request: Request, session: SessionDep, user: Reader) -> HTMLResponse:
    return _project_page(request, session, user, project_id)


@router.post("/governance/projects/{project_id}", response_class=HTMLResponse)
def project_form(
    project_id: Visible,
    request: Request,
    session: SessionDep,
    user: Manager,
    op: Annotated[str | None, Form(max_length=20)] = None,
    level: Annotated[str | None, Form(max_length=8)] = None,
    factors: Text = None,
    conclusion: Text = None,
    measure: Annotated[str | None, Form(max_length=500)] = None,
    responsible_unit_code: Annotated[str | None, Form(max_length=40)] = None,
    due_date: Annotated[str | None, Form(max_length=10)] = None,
    mitigation_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    note: Text = None,
    to: Annotated[str | None, Form(max_length=12)] = None,
) -> Response:
    """The project page's forms: assess, add a mitigation, record one done, approve / start."""
    try:
        if op == "assess":
            lines = [line.strip() for line in (factors or "").splitlines() if line.strip()]
            service.assess(
                session,
                actor=user,
                project_id=project_id,
                data=AssessmentCreate(level=level or "", factors=lines, conclusion=conclusion or ""),
            )
        elif op == "mitigate":
            service.add_mitigation(
                session,
                actor=user,
                project_id=project_id,
                data=MitigationCreate(
                    measure=measure or "",
                    responsible_unit_code=responsible_unit_code or "",
                    due_date=due_date or None,
                ),
            )
        elif op == "done":
            service.complete_mitigation(
                session,
                actor=user,
                project_id=project_id,
                mitigation_id=mitigation_id or 0,
                data=MitigationDone(note=note or None),
            )
        elif op == "advance":
            service.advance(session, actor=user, project_id=project_id, data=AdvanceRequest(to=to or ""))
        else:
            return _project_page(
                request, session, user, project_id, error=f"unknown operation {op!r}", status_code=422
            )
    except (ValidationError, CityopsError) as exc:
        message, status = form_refusal(session, exc, record_page=True)
        return _project_page(request, session, user, project_id, error=message, status_code=status)
    return RedirectResponse(f"/governance/projects/{project_id}", status_code=303)


@router.get("/governance/projects", response_class=HTMLResponse, name="governance_projects")
def projects_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    q: Annotated[str | None, Query(max_length=60)] = None,
    risk_level: Annotated[str | None, Query(max_length=8)] = None,
    status: Annotated[str | None, Query(max_length=12)] = None,
    blocked: Annotated[bool | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> HTMLResponse:
    """Projects and decisions in scope with the stopped / released counts."""
    return _projects_list(
        request, session, user, q=q, risk_level=risk_level, status=status, blocked=blocked, offset=offset
    )
