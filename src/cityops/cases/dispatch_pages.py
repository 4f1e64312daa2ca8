"""The dispatch console (/cases/dispatch): the queue of cases waiting for the dispatcher's centre,
oldest first, with inline workflow moves and a map.

Included in app.py before the case pages, so /cases/dispatch is not taken by /cases/{case_id}.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cityops.cases import service
from cityops.cases.pages import _labels
from cityops.cases.schemas import MAX_ID, ActionRequest
from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.auth.scope import division_level
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError, ValidationFailed
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, form_refusal, register_nav, render

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
QUEUE_LIMIT = 50
register_nav(
    NavItem(
        "dispatch",
        N_("Dispatch console"),
        "/cases/dispatch",
        order=30,
        permission="cases.dispatch",
        description=N_("Cases waiting for your centre, oldest first, with their moves and a map."),
    )
)

Dispatcher = Annotated[User, Depends(require_permission("cases.dispatch"))]
CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]
DUE_LABELS = {"overdue": N_("Overdue"), "today": N_("Due today"), "later": N_("Due later")}


def _boundary_url(user: User) -> str | None:
    """The outline of the dispatcher's area for the map (divisions are the city's reference map)."""
    try:
        level = division_level(user.scope_code or "")
    except ValueError:
        return None
    if level in ("grid", "province") or not has_permission(user, "places.read"):
        return None
    return "/api/places/geojson?" + urlencode({"level": level, "code": user.scope_code})


def _console(
    request: Request,
    session: SessionDep,
    user: User,
    *,
    error: str | None = None,
    error_case: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    error_number = (
        service.visible_case(session, viewer=user, case_id=error_case).number
        if error_case is not None
        else None
    )
    queue = service.dispatch_queue(session, viewer=user, limit=QUEUE_LIMIT)
    targets = {
        q.case.id: service.dispatch_targets(session, viewer=user, case=q.case)
        for q in queue.items
        if {"dispatch", "reroute"} & set(q.actions)
    }
    points: list[dict[str, Any]] = [
        {
            "id": q.case.id,
            "number": q.case.number,
            "title": q.case.title,
            "lon": q.lon,
            "lat": q.lat,
            "due": q.due,
        }
        for q in queue.items
    ]
    return render(
        request,
        "cases/dispatch.html",
        {
            **_labels(),
            "queue": queue,
            "targets": targets,
            "points": points,
            "due_labels": DUE_LABELS,
            "error": error,
            "error_case": error_case,
            "error_number": error_number,
            "boundary_url": _boundary_url(user),
        },
        status_code=status_code,
    )


@router.get("/cases/dispatch", response_class=HTMLResponse, name="dispatch_console")
def dispatch_console(request: Request, session: SessionDep, user: Dispatcher) -> HTMLResponse:
    return _console(request, session, user)


Reason = Annotated[str | None, Form(max_length=500)]


@router.post("/cases/dispatch/{case_id}/act", response_class=HTMLResponse)
def dispatch_act(
    case_id: CaseId,
    request: Request,
    session: SessionDep,
    user: Dispatcher,
    action: Annotated[str | None, Form(max_length=24)] = None,
    version: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    reason: Reason = None,
    org_unit_code: Annotated[str | None, Form(max_length=40)] = None,
) -> Response:
    """One inline move from the console; a refusal (stale version, a move no longer allowed, a
    missing reason) shows the console again with the reason next to the case."""
    try:
        if action not in service.CONSOLE_ACTIONS:
            # Scope first: a case outside it answers 404 whatever the form says.
            service.visible_case(session, viewer=user, case_id=case_id)
            raise ValidationFailed(
                f"the console offers {', '.join(service.CONSOLE_ACTIONS)}; open the case for other moves",
                field="action",
            )
        body = ActionRequest(version=version, reason=reason or None, org_unit_code=org_unit_code or None)
        service.act(session, actor=user, case_id=case_id, action=action, body=body)
    except CityopsError as exc:
        message, status = form_refusal(session, exc, record_page=True)
        return _console(request, session, user, error=message, error_case=case_id, status_code=status)
    return RedirectResponse(f"/cases/dispatch#case-{case_id}", status_code=303)
