"""HTML pages: the case inbox (/cases) and a case with its timeline and actions (/cases/{case_id})."""

from __future__ import annotations

import math
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cityops.cases import service
from cityops.cases import types as case_types
from cityops.cases.schemas import MAX_ID, ActionRequest
from cityops.cases.workflow import LEVELS, STATES
from cityops.core.auth.deps import CurrentUser
from cityops.core.deps import SessionDep
from cityops.core.errors import CityopsError
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, register_nav, render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
register_nav(NavItem("cases", N_("Cases"), "/cases", order=30, permission="cases.handle",
                     description=N_("Reports, disputes and hazards in your scope, with their timelines.")))

STATE_LABELS = {
    "reported": N_("Reported"), "accepted": N_("Accepted"), "dispatched": N_("Dispatched"),
    "in_progress": N_("In progress"), "resolved": N_("Resolved"), "verified": N_("Verified"),
    "closed": N_("Closed"), "returned": N_("Returned"), "escalated": N_("Escalated"),
    "delegated": N_("Delegated down"), "rejected": N_("Rejected"), "merged": N_("Merged"),
    "reopened": N_("Reopened"),
}
ACTION_LABELS = {
    "report": N_("Report"), "accept": N_("Accept"), "reject": N_("Reject"), "merge": N_("Merge"),
    "escalate": N_("Escalate"), "reroute": N_("Re-route"), "dispatch": N_("Dispatch"),
    "start": N_("Start handling"), "delegate": N_("Delegate down"), "return": N_("Return"),
    "resolve": N_("Resolve"), "pause": N_("Pause (waiting on the reporter)"), "resume": N_("Resume"),
    "verify": N_("Verify"), "send_back": N_("Send back"), "close": N_("Close"), "reopen": N_("Reopen"),
}
LEVEL_LABELS = {"village": N_("Village / community"), "township": N_("Township / street"),
                "county": N_("County"), "city": N_("City")}
assert set(STATE_LABELS) == set(STATES) and set(LEVEL_LABELS) == set(LEVELS)


def _labels() -> dict[str, Any]:
    return {"state_labels": STATE_LABELS, "action_labels": ACTION_LABELS, "level_labels": LEVEL_LABELS}


@router.get("/cases", response_class=HTMLResponse, name="cases")
def inbox(request: Request, session: SessionDep, user: CurrentUser,
          q: Annotated[str | None, Query(max_length=60)] = None,
          status: Annotated[str | None, Query(max_length=16)] = None,
          type_code: Annotated[str | None, Query(max_length=40)] = None,
          offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0) -> HTMLResponse:
    page = service.list_cases(session, viewer=user, status=[status] if status else [],
                              type_code=type_code or None, q=q, limit=PAGE_SIZE, offset=offset)
    params = {k: v for k, v in {"q": q, "status": status, "type_code": type_code}.items() if v}
    return render(request, "cases/inbox.html", {
        **_labels(), "page": page, "q": q or "", "status": status or "", "type_code": type_code or "",
        "types": case_types.registry().types, "query": urlencode(params),
        "offset": offset, "page_size": PAGE_SIZE, "pages": max(1, math.ceil(page.total / PAGE_SIZE)),
        "page_no": offset // PAGE_SIZE + 1,
    })


CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _case_page(request: Request, session: SessionDep, user: CurrentUser, case_id: int,
               error: str | None = None, status_code: int = 200) -> HTMLResponse:
    case = service.get_case(session, viewer=user, case_id=case_id, request=request)
    events = service.timeline(session, viewer=user, case_id=case_id)
    case_type = case_types.registry().find(case.type_code)
    return render(request, "cases/case.html", {
        **_labels(), "case": case, "events": events, "case_type": case_type, "error": error,
    }, status_code=status_code)


@router.get("/cases/{case_id}", response_class=HTMLResponse, name="case")
def case_page(case_id: CaseId, request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    return _case_page(request, session, user, case_id)


Text = Annotated[str | None, Form(max_length=2000)]


@router.post("/cases/{case_id}/act", response_class=HTMLResponse)
def act_form(case_id: CaseId, request: Request, session: SessionDep, user: CurrentUser,
             action: Annotated[str | None, Form(max_length=24)] = None,
             version: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
             comment: Text = None, reason: Text = None, result: Text = None,
             org_unit_code: Annotated[str | None, Form(max_length=40)] = None) -> Response:
    """The case page's action form; a refusal shows the page again with the reason."""
    try:
        body = ActionRequest(version=version, comment=comment or None, reason=reason or None,
                             result=result or None, org_unit_code=org_unit_code or None)
        service.act(session, actor=user, case_id=case_id, action=action or "", body=body)
    except CityopsError as exc:
        if exc.status in (401, 404):
            raise
        session.rollback()
        return _case_page(request, session, user, case_id, error=exc.message, status_code=exc.status)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
