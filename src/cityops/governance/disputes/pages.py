"""HTML pages of disputes: the list (/governance/disputes), the figures with drill-down and a
dispute with its parties (masked per role), sessions and the forms to add a session or an outcome."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from cityops.core.auth.deps import CurrentUser
from cityops.core.auth.roles import has_permission
from cityops.core.auth.scope import division_level
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError, Forbidden, ValidationFailed
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, form_refusal, register_nav, render
from cityops.governance.disputes import service
from cityops.governance.disputes.schemas import MAX_ID, DisputeCreate, OutcomeCreate, SessionCreate
from cityops.places import service as places_service

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
M = TypeVar("M", bound=BaseModel)
PAGE_SIZE = 50
register_nav(
    NavItem(
        "disputes",
        N_("Disputes"),
        "/governance/disputes",
        order=40,
        permission="governance.read",
        description=N_("Disputes, their parties, mediation sessions and outcomes."),
    )
)

STATUS_LABELS = {
    "mediating": N_("Mediating"),
    "referred": N_("Referred up"),
    "agreed": N_("Agreement reached"),
}
OUTCOME_LABELS = {
    "agreement": N_("Agreement reached"),
    "continue": N_("Continue mediation"),
    "referred": N_("Referred up"),
}
LEVEL_LABELS = {
    "village": N_("Village / community"),
    "township": N_("Township / street"),
    "county": N_("County"),
    "city": N_("City"),
}
FIGURE_LABELS = {
    "reported": N_("Disputes recorded"),
    "resolved": N_("Disputes resolved"),
    "resolved_at_level": N_("Resolved at this level"),
    "kept_in_village": N_("Share kept in the village"),
    "kept_in_township": N_("Share kept within the township"),
    "repeat": N_("Repeat disputes"),
}
RELATED_LABELS = {"same_party": N_("Same party"), "same_place": N_("Same place")}
Day = Annotated[date | None, Query()]
Division = Annotated[str | None, Query(max_length=15, pattern=r"^[0-9]*$")]


def _labels() -> dict[str, Any]:
    return {
        "status_labels": STATUS_LABELS,
        "outcome_labels": OUTCOME_LABELS,
        "level_labels": LEVEL_LABELS,
        "figure_labels": FIGURE_LABELS,
        "related_labels": RELATED_LABELS,
    }


def _reader(user: CurrentUser) -> None:
    if not has_permission(user, "governance.read"):
        raise Forbidden("your role may not see disputes (needs permission 'governance.read')")


@router.get("/governance/disputes", response_class=HTMLResponse, name="disputes")
def list_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    q: Annotated[str | None, Query(max_length=60)] = None,
    status: Annotated[str | None, Query(max_length=10)] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    division: Division = None,
    repeat: Annotated[bool, Query()] = False,
    figure: Annotated[str | None, Query(max_length=20)] = None,
    level: Annotated[str | None, Query(max_length=10)] = None,
    start: Day = None,
    end: Day = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> HTMLResponse:
    _reader(user)
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
    page = service.list_disputes(session, viewer=user, filters=filters, limit=PAGE_SIZE, offset=offset)
    params = {
        k: v
        for k, v in {
            "q": q,
            "status": status,
            "category": category,
            "division": division,
            "repeat": "true" if repeat else None,
            "figure": figure,
            "level": level,
            "start": start,
            "end": end,
        }.items()
        if v
    }
    return render(
        request,
        "governance/disputes/list.html",
        {
            **_labels(),
            "page": page,
            "q": q or "",
            "status": status or "",
            "category": category or "",
            "repeat": repeat,
            "figure": figure,
            "level": level,
            "categories": service.categories(),
            "query": urlencode(params),
            "offset": offset,
            "page_size": PAGE_SIZE,
            "pages": max(1, math.ceil(page.total / PAGE_SIZE)),
            "page_no": offset // PAGE_SIZE + 1,
        },
    )


@router.get("/governance/disputes/figures", response_class=HTMLResponse, name="dispute_figures")
def figures_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    division: Division = None,
    start: Day = None,
    end: Day = None,
) -> HTMLResponse:
    """The figures of a unit and period, each linked to its disputes, and the same per unit below."""
    _reader(user)
    result = service.figures_of(session, viewer=user, division=division or None, start=start, end=end)
    rows = [
        {
            "name": f.name,
            "label": FIGURE_LABELS.get(f.name, f.name),
            "level": f.level,
            "value": f.value,
            "href": f.disputes_url.replace("/api/governance/disputes", "/governance/disputes", 1)
            if f.disputes_url
            else None,
        }
        for f in result.figures
    ]
    period = {
        "division": result.division_code,
        "start": result.start.isoformat(),
        "end": result.end.isoformat(),
    }
    level = division_level(result.division_code)
    boundary = (
        "/api/places/geojson?" + urlencode({"level": level, "code": result.division_code})
        if level != "grid" and has_permission(user, "places.read")
        else None
    )
    return render(
        request,
        "governance/disputes/figures.html",
        {
            **_labels(),
            "result": result,
            "rows": rows,
            "boundary_url": boundary,
            "points_url": "/api/governance/disputes/points?" + urlencode(period),
        },
    )


PARTY_ROWS = 3


def _default_point(session: SessionDep, user: CurrentUser) -> tuple[float | None, float | None]:
    """The centre of the user's first grid, as a starting point for the form's location."""
    code = user.scope_code or ""
    try:
        if len(code) == 15:
            grid = places_service.get_grid(session, code=code)
            return grid.centroid_lon, grid.centroid_lat
        if len(code) == 12:
            division = places_service.get_division(session, code=code)
            first = division.grids[0] if division.grids else division
            return first.centroid_lon, first.centroid_lat
    except CityopsError:
        pass
    return None, None


def _new_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    values: dict[str, Any],
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "governance/disputes/new.html",
        {
            **_labels(),
            "categories": service.categories(),
            "values": values,
            "error": error,
            "party_rows": range(PARTY_ROWS),
        },
        status_code=status_code,
    )


def _manager(user: CurrentUser) -> None:
    if not has_permission(user, "governance.manage"):
        raise Forbidden("your role may not record disputes (needs permission 'governance.manage')")


@router.get("/governance/disputes/new", response_class=HTMLResponse, name="dispute_new")
def new_page(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The form to record a dispute with its parties."""
    _manager(user)
    lon, lat = _default_point(session, user)
    return _new_page(request, session, user, {"lon": lon, "lat": lat})


async def _form_values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v[:5000] for k, v in form.items() if isinstance(v, str)}


FormValues = Annotated[dict[str, str], Depends(_form_values)]


@router.post("/governance/disputes/new", response_class=HTMLResponse)
def new_form(request: Request, session: SessionDep, user: CurrentUser, values: FormValues) -> Response:
    """Record the dispute; a refusal shows the form again, filled in, with the reason."""
    _manager(user)
    parties = []
    for i in range(PARTY_ROWS):
        party = {
            f: values.get(f"party{i}_{f}", "").strip() or None
            for f in ("name", "phone", "id_number", "address")
        }
        if any(party.values()):
            parties.append(party)
    try:
        data = _build(
            DisputeCreate,
            {
                "category": values.get("category", ""),
                "title": values.get("title", ""),
                "description": values.get("description", ""),
                "place": values.get("place", ""),
                "lon": values.get("lon") or None,
                "lat": values.get("lat") or None,
                "parties": parties,
            },
        )
        index = places_service.cache_for(request.app.state).index(session)
        dispute = service.create_dispute(session, viewer=user, data=data, index=index)
    except CityopsError as exc:
        message, status = form_refusal(session, exc, record_page=False)
        return _new_page(request, session, user, values, error=message, status_code=status)
    return RedirectResponse(f"/governance/disputes/{dispute.id}", status_code=303)


DisputeId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _dispute_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    dispute_id: int,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    _reader(user)
    dispute = service.get_dispute(session, viewer=user, dispute_id=dispute_id, request=request)
    return render(
        request,
        "governance/disputes/dispute.html",
        {
            **_labels(),
            "dispute": dispute,
            "error": error,
            "can_manage": has_permission(user, "governance.manage"),
            "today": datetime.now(service.LOCAL_TZ).date().isoformat(),
        },
        status_code=status_code,
    )


@router.get("/governance/disputes/{dispute_id}", response_class=HTMLResponse, name="dispute")
def dispute_page(
    dispute_id: DisputeId, request: Request, session: SessionDep, user: CurrentUser
) -> HTMLResponse:
    return _dispute_page(request, session, user, dispute_id)


Short = Annotated[str | None, Form(max_length=200)]


def _build(model: type[M], values: dict[str, Any]) -> M:
    """A form's values as the API's schema; a value it refuses names the field, like the API."""
    try:
        return model.model_validate(values)
    except PydanticValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        raise ValidationFailed(f"{field}: {error['msg']}", field=field) from None


def _form_result(
    request: Request, session: SessionDep, user: CurrentUser, dispute_id: int, exc: CityopsError
) -> Response:
    message, status = form_refusal(session, exc, record_page=True)
    return _dispute_page(request, session, user, dispute_id, error=message, status_code=status)


@router.post("/governance/disputes/{dispute_id}/sessions", response_class=HTMLResponse)
def session_form(
    dispute_id: DisputeId,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    held_on: Annotated[date | None, Form()] = None,
    mediator: Short = None,
    place: Short = None,
    outcome: Annotated[str | None, Form(max_length=10)] = None,
    notes: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """The dispute page's session form; a refusal shows the page again with the reason."""
    _reader(user)
    service.check_visible(session, viewer=user, dispute_id=dispute_id)
    try:
        if outcome not in (None, "", *OUTCOME_LABELS):
            raise ValidationFailed("unknown outcome", field="outcome")
        body = _build(
            SessionCreate,
            {
                "held_on": held_on,
                "mediator": mediator or None,
                "place": place or None,
                "outcome": outcome or None,
                "notes": notes or "",
            },
        )
        service.add_session(session, viewer=user, dispute_id=dispute_id, data=body)
    except CityopsError as exc:
        return _form_result(request, session, user, dispute_id, exc)
    return RedirectResponse(f"/governance/disputes/{dispute_id}", status_code=303)


@router.post("/governance/disputes/{dispute_id}/outcome", response_class=HTMLResponse)
def outcome_form(
    dispute_id: DisputeId,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    kind: Annotated[str | None, Form(max_length=10)] = None,
    agreement: Annotated[str | None, Form(max_length=5000)] = None,
    to_unit_code: Annotated[str | None, Form(max_length=40)] = None,
    reason: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    _reader(user)
    service.check_visible(session, viewer=user, dispute_id=dispute_id)
    try:
        if kind not in (None, "", "agreement", "referral"):
            raise ValidationFailed("kind must be agreement or referral", field="kind")
        body = _build(
            OutcomeCreate,
            {
                "kind": kind or None,
                "agreement": agreement or None,
                "to_unit_code": to_unit_code or None,
                "reason": reason or None,
            },
        )
        service.record_outcome(session, viewer=user, dispute_id=dispute_id, data=body)
    except CityopsError as exc:
        return _form_result(request, session, user, dispute_id, exc)
    return RedirectResponse(f"/governance/disputes/{dispute_id}", status_code=303)
