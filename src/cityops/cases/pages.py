"""HTML pages: the case inbox (/cases) and a case with its timeline and actions (/cases/{case_id})."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cityops.cases import panels, service
from cityops.cases import types as case_types
from cityops.cases.schemas import MAX_ID, ActionRequest
from cityops.cases.sla import RUNNING_STATES
from cityops.cases.workflow import LEVELS, STATES
from cityops.core.auth.deps import CurrentUser
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, form_refusal, register_nav, render

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
PAGE_SIZE = 50
register_nav(NavItem("cases", N_("Cases"), "/cases", order=30, permission="cases.handle",
                     description=N_("Reports, disputes and hazards in your scope, with their timelines.")))
register_nav(NavItem(
    "case-figures", N_("Case figures"), "/cases/figures", order=31, permission="cases.handle",
    description=N_("Cases reported, resolved at each level and on time, per unit and period.")))

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
    "overdue": N_("Deadline passed"), "cancel": N_("Cancel (no longer needed)"),
    "alarm": N_("Sensor alarm raised again"), "alarm_cleared": N_("Sensor alarm cleared"),
}
LEVEL_LABELS = {"village": N_("Village / community"), "township": N_("Township / street"),
                "county": N_("County"), "city": N_("City")}
assert set(STATE_LABELS) == set(STATES) and set(LEVEL_LABELS) == set(LEVELS)


def _labels() -> dict[str, Any]:
    return {"state_labels": STATE_LABELS, "action_labels": ACTION_LABELS, "level_labels": LEVEL_LABELS,
            "running_states": RUNNING_STATES}


BOX_LABELS = {"unit": N_("My unit's cases"), "mine": N_("Assigned to me"), "scope": N_("All in my scope")}
SORT_LABELS = {"deadline": N_("Deadline soonest"), "newest": N_("Newest first"), "oldest": N_("Oldest first")}
OnOff = Annotated[str | None, Query(max_length=1, pattern="^[01]?$")]


@router.get("/cases", response_class=HTMLResponse, name="cases")
def inbox(request: Request, session: SessionDep, user: CurrentUser,
          q: Annotated[str | None, Query(max_length=60)] = None,
          status: Annotated[str | None, Query(max_length=16)] = None,
          type_code: Annotated[str | None, Query(max_length=40)] = None,
          box: Annotated[str | None, Query(max_length=8)] = None,
          open: OnOff = None, overdue: OnOff = None,
          sort: Annotated[str | None, Query(max_length=10)] = None,
          offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0) -> HTMLResponse:
    """The inbox: by default the open cases of the user's unit, the soonest deadline first."""
    box = box or ("unit" if user.org_unit_id is not None else "scope")
    open_only, only_overdue, sort = open != "0", overdue == "1", sort or "deadline"
    page = service.list_cases(session, viewer=user, status=[status] if status else [],
                              type_code=type_code or None, q=q, limit=PAGE_SIZE, offset=offset, box=box,
                              open_only=open_only, overdue=only_overdue, sort=sort)
    params = {k: v for k, v in {"q": q, "status": status, "type_code": type_code, "box": box,
                                "open": "1" if open_only else "0", "overdue": "1" if only_overdue else "",
                                "sort": sort}.items() if v}
    api_params = {**{k: v for k, v in params.items() if k not in ("open", "overdue")},
                  "open_only": str(open_only).lower(), "overdue": str(only_overdue).lower()}
    return render(request, "cases/inbox.html", {
        **_labels(), "page": page, "q": q or "", "status": status or "", "type_code": type_code or "",
        "box": box, "open_only": open_only, "overdue": only_overdue, "sort": sort,
        "box_labels": BOX_LABELS if user.org_unit_id is not None else {"mine": BOX_LABELS["mine"],
                                                                        "scope": BOX_LABELS["scope"]},
        "sort_labels": SORT_LABELS, "types": case_types.registry().types, "query": urlencode(params),
        "export_query": urlencode(api_params),
        "offset": offset, "page_size": PAGE_SIZE, "pages": max(1, math.ceil(page.total / PAGE_SIZE)),
        "page_no": offset // PAGE_SIZE + 1,
    })


FIGURE_LABELS = {
    "reported": N_("Cases reported"), "resolved": N_("Cases resolved"), "escalated": N_("Cases escalated"),
    "escalated_auto": N_("Escalated automatically (deadline passed)"),
    "resolved_at_level": N_("Resolved at this level"), "on_time": N_("Resolved on time"),
    "late": N_("Resolved late"), "on_time_rate": N_("On-time rate"),
    "rated": N_("Reporter ratings"), "satisfaction": N_("Satisfaction (average rating, 1-5)"),
}
Day = Annotated[date | None, Query()]
Division = Annotated[str | None, Query(max_length=15, pattern=r"^[0-9]*$")]


def _figure_page_link(cases_url: str) -> str:
    """The HTML list of a figure's cases, from the API's drill-down address."""
    return cases_url.replace("/api/cases/figures/cases", "/cases/figures/cases", 1)


@router.get("/cases/figures", response_class=HTMLResponse, name="case_figures")
def figures_page(request: Request, session: SessionDep, user: CurrentUser, division: Division = None,
                 start: Day = None, end: Day = None) -> HTMLResponse:
    """Figures of a unit and period, each linked to its cases."""
    result = service.figures_of(session, viewer=user, division=division or None, start=start, end=end)
    rows = [{"label": FIGURE_LABELS.get(f.name, f.name), "level": f.level, "name": f.name, "value": f.value,
             "href": _figure_page_link(f.cases_url)} for f in result.figures]
    return render(request, "cases/figures.html", {**_labels(), "result": result, "rows": rows})


@router.get("/cases/figures/cases", response_class=HTMLResponse, name="case_figure_cases")
def figure_cases_page(request: Request, session: SessionDep, user: CurrentUser,
                      figure: Annotated[str, Query(max_length=20)],
                      level: Annotated[str | None, Query(max_length=10)] = None,
                      division: Division = None, start: Day = None, end: Day = None,
                      offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0) -> HTMLResponse:
    page = service.figure_cases(session, viewer=user, figure=figure, level=level or None,
                                division=division or None, start=start, end=end, limit=PAGE_SIZE,
                                offset=offset)
    params = {k: v for k, v in {"figure": figure, "level": level, "division": division,
                                "start": start, "end": end}.items() if v}
    return render(request, "cases/figure_cases.html", {
        **_labels(), "page": page, "figure_label": FIGURE_LABELS.get(figure, figure), "level": level,
        "query": urlencode(params), "back": "/cases/figures?" + urlencode(
            {k: v for k, v in params.items() if k in ("division", "start", "end")}),
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
        **panels.context(session, viewer=user, case=case),
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
        message, status = form_refusal(session, exc, record_page=True)
        return _case_page(request, session, user, case_id, error=message, status_code=status)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
