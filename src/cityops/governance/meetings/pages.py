"""HTML pages of the four meetings: /governance/meetings and a meeting's page, where an operator draws
the agenda, records decisions and the minutes."""

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
from cityops.governance.meetings import service
from cityops.governance.meetings.schemas import (
    DecisionCreate,
    ItemCreate,
    MeetingCreate,
    MinutesUpdate,
    NewCase,
)
from cityops.places import service as places_service

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
PAGE_SIZE = 50
register_nav(
    NavItem(
        "governance-meetings",
        N_("Four meetings"),
        "/governance/meetings",
        order=46,
        permission="governance.read",
        description=N_(
            "Village hearings, township joint meetings, county consultations and city analysis "
            "meetings: agendas from escalated cases, decisions turned into cases."
        ),
    )
)

LEVEL_LABELS = {
    "village": N_("Village hearing"),
    "township": N_("Township joint meeting"),
    "county": N_("County consultation meeting"),
    "city": N_("City analysis meeting"),
}
STATUS_LABELS = {"planned": N_("Planned"), "held": N_("Held")}
OUTCOME_LABELS = {"note": N_("Noted"), "new_case": N_("New case"), "assign": N_("Assigned to a unit")}
Reader = Annotated[User, Depends(require_permission("governance.read"))]
Manager = Annotated[User, Depends(require_permission("governance.manage"))]
MeetingId = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str | None, Form(max_length=20000)]


def _labels() -> dict[str, Any]:
    return {
        "state_labels": STATE_LABELS,
        "level_labels": LEVEL_LABELS,
        "status_labels": STATUS_LABELS,
        "outcome_labels": OUTCOME_LABELS,
    }


def _lines(text: str | None) -> list[str]:
    return [
        part.strip()
        for part in (text or "").replace("，", ",").replace(",", "\n").splitlines()
        if part.strip()
    ]


def _meetings_list(
    request: Request,
    session: SessionDep,
    user: Reader,
    level: Annotated[str | None, Query(max_length=10)] = None,
    status: Annotated[str | None, Query(max_length=8)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page = service.list_meetings(
        session, viewer=user, level=level or None, status=status or None, limit=PAGE_SIZE, offset=offset
    )
    params = {k: v for k, v in {"level": level, "status": status}.items() if v}
    return render(
        request,
        "governance/meetings/meetings.html",
        {
            **_labels(),
            "page": page,
            "level": level or "",
            "status": status or "",
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


@router.post("/governance/meetings", response_class=HTMLResponse)
def schedule_form(
    request: Request,
    session: SessionDep,
    user: Manager,
    division_code: Annotated[str | None, Form(max_length=15)] = None,
    held_at: Annotated[str | None, Form(max_length=25)] = None,
    title: Annotated[str | None, Form(max_length=200)] = None,
    attendees: Text = None,
) -> Response:
    try:
        data = MeetingCreate(
            division_code=division_code or None,
            held_at=held_at or "",
            title=title or None,
            attendees=_lines(attendees),
        )
        meeting = service.schedule(session, actor=user, data=data)
    except (ValidationError, CityopsError) as exc:
        message, status = form_refusal(session, exc, record_page=False)
        return _meetings_list(request, session, user, error=message, status_code=status)
    return RedirectResponse(f"/governance/meetings/{meeting.id}", status_code=303)


def visible_meeting(meeting_id: MeetingId, session: SessionDep, user: Reader) -> int:
    service.check_visible(session, viewer=user, meeting_id=meeting_id)
    return meeting_id


Visible = Annotated[int, Depends(visible_meeting)]


def _meeting_page(
    request: Request,
    session: SessionDep,
    user: User,
    meeting_id: int,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    meeting = service.get_meeting(session, viewer=user, meeting_id=meeting_id)
    return render(
        request,
        "governance/meetings/meeting.html",
        {
            **_labels(),
            "meeting": meeting,
            "error": error,
            "can_manage": has_permission(user, "governance.manage"),
        },
        status_code=status_code,
    )


@router.get("/governance/meetings/{meeting_id}", response_class=HTMLResponse, name="governance_meeting")
def meeting_page(meeting_id: Visible, request: Request, session: SessionDep, user: Reader) -> HTMLResponse:
    return _meeting_page(request, session, user, meeting_id)


@router.post("/governance/meetings/{meeting_id}", response_class=HTMLResponse)
def meeting_form(
    meeting_id: Visible,
    request: Request,
    session: SessionDep,
    user: Manager,
    op: Annotated[str | None, Form(max_length=20)] = None,
    case_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    title: Annotated[str | None, Form(max_length=200)] = None,
    item_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    decision: Text = None,
    outcome: Annotated[str | None, Form(max_length=10)] = None,
    org_unit_code: Annotated[str | None, Form(max_length=40)] = None,
    type_code: Annotated[str | None, Form(max_length=40)] = None,
    category: Annotated[str | None, Form(max_length=40)] = None,
    case_title: Annotated[str | None, Form(max_length=200)] = None,
    attendees: Text = None,
    minutes: Text = None,
    held: Annotated[str | None, Form(max_length=5)] = None,
) -> Response:
    """The meeting page's forms: draw the agenda, add an item, decide an item, record the minutes."""
    try:
        if op == "draw":
            service.draw_agenda(session, actor=user, meeting_id=meeting_id)
        elif op == "add":
            service.add_item(
                session,
                actor=user,
                meeting_id=meeting_id,
                data=ItemCreate(case_id=case_id, title=title or None),
            )
        elif op == "decide":
            new_case = (
                NewCase(type_code=type_code or "", category=category or "", title=case_title or "")
                if outcome == "new_case"
                else None
            )
            data = DecisionCreate(
                decision=decision or "",
                outcome=outcome or "note",
                org_unit_code=org_unit_code or None,
                new_case=new_case,
            )
            index = places_service.cache_for(request.app.state).index(session)
            service.decide(
                session, actor=user, meeting_id=meeting_id, item_id=item_id or 0, data=data, index=index
            )
        elif op == "minutes":
            service.record_minutes(
                session,
                actor=user,
                meeting_id=meeting_id,
                data=MinutesUpdate(attendees=_lines(attendees), minutes=minutes or "", held=bool(held)),
            )
        else:
            return _meeting_page(
                request, session, user, meeting_id, error=f"unknown operation {op!r}", status_code=422
            )
    except (ValidationError, CityopsError) as exc:
        message, status = form_refusal(session, exc, record_page=True)
        return _meeting_page(request, session, user, meeting_id, error=message, status_code=status)
    return RedirectResponse(f"/governance/meetings/{meeting_id}", status_code=303)


@router.get("/governance/meetings", response_class=HTMLResponse, name="governance_meetings")
def meetings_page(
    request: Request,
    session: SessionDep,
    user: Reader,
    level: Annotated[str | None, Query(max_length=10)] = None,
    status: Annotated[str | None, Query(max_length=8)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> HTMLResponse:
    """Meetings of the centres in scope."""
    return _meetings_list(request, session, user, level=level, status=status, offset=offset)
