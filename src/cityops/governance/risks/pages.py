"""HTML pages of the risk register: /governance/risks (map of the patterns and the list) and a risk's
page with its cases, control tasks and stage."""

from __future__ import annotations

import math
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from cityops.cases.pages import STATE_LABELS
from cityops.cases.schemas import MAX_ID
from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, form_refusal, register_nav, render
from cityops.governance.risks import service
from cityops.governance.risks.schemas import StageChange, TaskCreate
from cityops.places import service as places_service

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
PAGE_SIZE = 50
MAP_LIMIT = 500
register_nav(
    NavItem(
        "governance-risks",
        N_("Risk register"),
        "/governance/risks",
        order=47,
        permission="governance.read",
        description=N_("Risks found in case patterns on the map: searchlight, excavator, road roller."),
    )
)

STAGE_LABELS = {
    "searchlight": N_("Searchlight (identified)"),
    "excavator": N_("Excavator (control tasks)"),
    "roller": N_("Road roller (aftercare)"),
    "closed": N_("Closed"),
}
KIND_LABELS = {
    "cluster": N_("Cluster of cases"),
    "same_place": N_("Repeat disputes at one place"),
    "same_parties": N_("Repeat disputes between the same parties"),
}
Reader = Annotated[User, Depends(require_permission("governance.read"))]
Manager = Annotated[User, Depends(require_permission("governance.manage"))]
RiskId = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str | None, Form(max_length=5000)]


def _labels() -> dict[str, Any]:
    return {"state_labels": STATE_LABELS, "stage_labels": STAGE_LABELS, "kind_labels": KIND_LABELS}


def _risks_list(
    request: Request,
    session: SessionDep,
    user: Reader,
    stage: Annotated[str | None, Query(max_length=12)] = None,
    kind: Annotated[str | None, Query(max_length=12)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page = service.list_risks(
        session, viewer=user, stage=stage or None, kind=kind or None, limit=PAGE_SIZE, offset=offset
    )
    on_map = service.list_risks(session, viewer=user, stage=stage or None, kind=kind or None, limit=MAP_LIMIT)
    params = {k: v for k, v in {"stage": stage, "kind": kind}.items() if v}
    points = [
        {
            "id": r.id,
            "lon": r.lon,
            "lat": r.lat,
            "radius": r.radius_m,
            "stage": r.stage,
            "title": r.title,
            "cases": r.case_count,
        }
        for r in on_map.items
    ]
    return render(
        request,
        "governance/risks/risks.html",
        {
            **_labels(),
            "page": page,
            "stage": stage or "",
            "kind": kind or "",
            "query": urlencode(params),
            "offset": offset,
            "page_size": PAGE_SIZE,
            "pages": max(1, math.ceil(page.total / PAGE_SIZE)),
            "page_no": offset // PAGE_SIZE + 1,
            "can_manage": has_permission(user, "governance.manage"),
            "error": error,
            "map_config": {
                "points": points,
                "tileUrl": request.app.state.settings.tile_url,
                "geojsonUrl": "/api/places/geojson",
            },
        },
        status_code=status_code,
    )


@router.post("/governance/risks/scan", response_class=HTMLResponse)
def scan_form(request: Request, session: SessionDep, user: Manager) -> Response:
    report = service.scan(session)
    return RedirectResponse(f"/governance/risks?registered={report.registered}", status_code=303)


def visible_risk(risk_id: RiskId, session: SessionDep, user: Reader) -> int:
    service.check_visible(session, viewer=user, risk_id=risk_id)
    return risk_id


Visible = Annotated[int, Depends(visible_risk)]


def _risk_page(
    request: Request,
    session: SessionDep,
    user: User,
    risk_id: int,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    risk = service.get_risk(session, viewer=user, risk_id=risk_id)
    return render(
        request,
        "governance/risks/risk.html",
        {**_labels(), "risk": risk, "error": error, "can_manage": has_permission(user, "governance.manage")},
        status_code=status_code,
    )


@router.get("/governance/risks/{risk_id}", response_class=HTMLResponse, name="governance_risk")
def risk_page(risk_id: Visible, request: Request, session: SessionDep, user: Reader) -> HTMLResponse:
    return _risk_page(request, session, user, risk_id)


@router.post("/governance/risks/{risk_id}", response_class=HTMLResponse)
def risk_form(
    risk_id: Visible,
    request: Request,
    session: SessionDep,
    user: Manager,
    op: Annotated[str | None, Form(max_length=20)] = None,
    org_unit_code: Annotated[str | None, Form(max_length=40)] = None,
    title: Annotated[str | None, Form(max_length=150)] = None,
    description: Text = None,
    to: Annotated[str | None, Form(max_length=12)] = None,
    note: Text = None,
    root_cause: Text = None,
) -> Response:
    """The risk page's forms: a control task, or the next stage."""
    try:
        if op == "task":
            index = places_service.cache_for(request.app.state).index(session)
            service.add_task(
                session,
                actor=user,
                risk_id=risk_id,
                index=index,
                data=TaskCreate(
                    org_unit_code=org_unit_code or "", title=title or "", description=description or ""
                ),
            )
        elif op == "stage":
            service.change_stage(
                session,
                actor=user,
                risk_id=risk_id,
                data=StageChange(to=to or "", note=note or None, root_cause=root_cause or None),
            )
        else:
            return _risk_page(
                request, session, user, risk_id, error=f"unknown operation {op!r}", status_code=422
            )
    except (ValidationError, CityopsError) as exc:
        message, status = form_refusal(session, exc, record_page=True)
        return _risk_page(request, session, user, risk_id, error=message, status_code=status)
    return RedirectResponse(f"/governance/risks/{risk_id}", status_code=303)


@router.get("/governance/risks", response_class=HTMLResponse, name="governance_risks")
def risks_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    stage: Annotated[str | None, Query(max_length=12)] = None,
    kind: Annotated[str | None, Query(max_length=12)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> HTMLResponse:
    """The map of the risks in scope and their list."""
    return _risks_list(request, session, user, stage=stage, kind=kind, offset=offset)
