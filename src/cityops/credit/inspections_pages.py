"""Inspection pages: the year's plans and figures (/credit/inspections), an inspector's week of joint visits
(/credit/inspections/calendar), the phone form of a visit (/credit/inspections/visits/{id}), the published
results open to all (/credit/inspections/results), and an entity's pending items as a fragment for the
inspector view (/credit/entities/{entity_code}/pending-items)."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cityops.core.auth.deps import CurrentUser
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.calendar import is_working_day
from cityops.core.db import utcnow
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError, Forbidden, ValidationFailed
from cityops.core.geo import distance_km
from cityops.core.i18n import N_, locale_of
from cityops.core.templating import NavItem, form_refusal, register_nav, render
from cityops.credit import inspections
from cityops.credit.inspections_api import MAX_ID, CodePath

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
register_nav(
    NavItem(
        "credit-inspections",
        N_("Inspections"),
        "/credit/inspections",
        order=56,
        permission="inspections.manage",
        description=N_(
            "Random inspections by risk class, joint visits that do many departments' inspections at once, "
            "and their calendar."
        ),
    )
)
RESULT_LABELS = {
    "compliant": N_("Compliant"),
    "non_compliant": N_("Not compliant"),
    "not_applicable": N_("Not applicable"),
}
VISIT_STATUS_LABELS = {
    "scheduled": N_("Scheduled"),
    "unscheduled": N_("No day free"),
    "done": N_("Recorded"),
}
PAGE = 50
VisitId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _check_manage(user: User) -> None:
    if not has_permission(user, "inspections.manage"):
        raise Forbidden("your role may not plan or see inspections (needs permission 'inspections.manage')")


async def _form_values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v[:500] for k, v in form.items() if isinstance(v, str)}


FormValues = Annotated[dict[str, str], Depends(_form_values)]


def _plans_page(
    request: Request,
    session: Session,
    user: User,
    year: int,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    locale = locale_of(request)
    return render(
        request,
        "credit/inspections/plans.html",
        {
            "year": year,
            "plans": inspections.list_plans(session, viewer=user, year=year, locale=locale),
            "figures": inspections.figures(session, year=year),
            "classes": ("A", "B", "C", "D", inspections.UNCLASSIFIED),
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/credit/inspections", response_class=HTMLResponse)
def plans(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> HTMLResponse:
    """The year's plans per category (seed, population and draw by class) and the joint visits' figures."""
    _check_manage(user)
    return _plans_page(request, session, user, year or inspections.local_date(utcnow()).year)


@router.post("/credit/inspections/plan", response_class=HTMLResponse, response_model=None)
def plan(request: Request, session: SessionDep, user: CurrentUser, values: FormValues) -> Response:
    """Plan a year from the form (year, seed, replace); a refusal shows the page again with the reason."""
    _check_manage(user)
    year = inspections.local_date(utcnow()).year
    try:
        try:
            year = int(values.get("year", ""))
            seed = int(values["seed"]) if values.get("seed", "").strip() else None
        except ValueError:
            raise ValidationFailed("year and seed must be whole numbers", field="year") from None
        if not 2000 <= year <= 2100 or (seed is not None and not 0 <= seed <= 2**62):
            raise ValidationFailed("year must be 2000-2100 and the seed 0-2^62", field="year")
        options = inspections.PlanOptions(year=year, seed=seed, replace=values.get("replace") == "on")
        inspections.plan_year(session, options=options, actor=user)
    except CityopsError as exc:
        message, status = form_refusal(session, exc, record_page=False)
        return _plans_page(request, session, user, year, error=message, status_code=status)
    return RedirectResponse(f"/credit/inspections?year={year}", status_code=303)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


@router.get("/credit/inspections/calendar", response_class=HTMLResponse)
def calendar(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    inspector: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    week: Annotated[date | None, Query()] = None,
) -> HTMLResponse:
    """An inspector's week of joint visits, day by day in route order with the distance between stops;
    your own by default (others' need inspections.manage)."""
    inspector_id = inspector or user.id
    monday = _monday(week or inspections.local_date(utcnow()))
    sunday = monday + timedelta(days=6)
    locale = locale_of(request)
    visits = inspections.list_visits(
        session, viewer=user, inspector_id=inspector_id, first=monday, last=sunday, locale=locale
    )
    days: list[dict[str, Any]] = []
    for n in range(7):
        day = monday + timedelta(days=n)
        stops = [v for v in visits if v.scheduled_on == day]
        legs: list[float | None] = [None] if stops else []
        for a, b in pairwise(stops):
            known = a.lon is not None and a.lat is not None and b.lon is not None and b.lat is not None
            legs.append(round(distance_km(a.lon, a.lat, b.lon, b.lat), 1) if known else None)  # type: ignore[arg-type]
        days.append(
            {
                "date": day,
                "working": is_working_day(day),
                "stops": list(zip(stops, legs, strict=True)),
                "km": round(sum(leg or 0.0 for leg in legs), 1),
            }
        )
    may_choose = has_permission(user, "inspections.manage")
    return render(
        request,
        "credit/inspections/calendar.html",
        {
            "days": days,
            "monday": monday,
            "previous": monday - timedelta(days=7),
            "next": monday + timedelta(days=7),
            "inspector_id": inspector_id,
            "inspectors": inspections.inspector_ids(session) if may_choose else [],
            "status_labels": VISIT_STATUS_LABELS,
        },
    )


def _visit_page(
    request: Request,
    session: Session,
    user: User,
    visit_id: int,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    missing: set[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    found = inspections.get_visit(session, viewer=user, visit_id=visit_id, locale=locale_of(request))
    return render(
        request,
        "credit/inspections/visit.html",
        {
            "visit": found,
            "values": values or {},
            "error": error,
            "missing": missing or set(),
            "result_labels": RESULT_LABELS,
            "status_labels": VISIT_STATUS_LABELS,
            "may_record": found.status != "done" and any(m.id == user.id for m in found.team),
        },
        status_code=status_code,
    )


@router.get("/credit/inspections/visits/{joint_visit_id}", response_class=HTMLResponse)
def visit(request: Request, session: SessionDep, user: CurrentUser, joint_visit_id: VisitId) -> HTMLResponse:
    """The phone form of a joint visit: every department's check items, one result each, sent at once."""
    return _visit_page(request, session, user, joint_visit_id)


@router.post("/credit/inspections/visits/{joint_visit_id}", response_class=HTMLResponse)
def record(
    request: Request, session: SessionDep, user: CurrentUser, joint_visit_id: VisitId, values: FormValues
) -> HTMLResponse:
    """Record the visit from the form (fields r.<task>.<item> and n.<task>.<item>); a refusal shows the form
    again as filled in, with the missing items marked."""
    findings = []
    try:
        for key, result in values.items():
            parts = key.split(".")
            if len(parts) != 3 or parts[0] != "r" or not result:
                continue
            if not parts[1].isdigit():
                raise ValidationFailed(f"field {key!r} names no task", field="findings")
            findings.append(
                inspections.Finding(
                    task_id=int(parts[1]),
                    item=parts[2],
                    result=result,
                    note=values.get(f"n.{parts[1]}.{parts[2]}", ""),
                )
            )
        inspections.record_visit(
            session,
            visit_id=joint_visit_id,
            findings=findings,
            actor=user,
            request=request,
            locale=locale_of(request),
        )
    except (CityopsError, ValidationError) as exc:
        missing = (
            {f"{m['task_id']}.{m['item']}" for m in exc.detail.get("missing", [])}
            if isinstance(exc, CityopsError)
            else set()
        )
        message, status = form_refusal(session, exc, record_page=True)
        return _visit_page(
            request,
            session,
            user,
            joint_visit_id,
            values=values,
            error=message,
            missing=missing,
            status_code=status,
        )
    return _visit_page(request, session, user, joint_visit_id)


@router.get("/credit/inspections/results", response_class=HTMLResponse)
def results(
    request: Request,
    session: SessionDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    category: Annotated[str | None, Query(max_length=30)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    """The published results of random inspections (一公开), open to all: no inspector, no risk class,
    no personal information."""
    locale = locale_of(request)
    page = inspections.published_results(
        session, year=year, category=category or None, limit=PAGE, offset=offset, locale=locale
    )
    return render(
        request,
        "credit/inspections/results.html",
        {
            "page": page,
            "year": year,
            "category": category or "",
            "offset": offset,
            "categories": [(c.code, c.name(locale)) for c in inspections.load_categories().categories],
            "result_labels": RESULT_LABELS,
        },
    )


@router.get("/credit/entities/{entity_code}/pending-items", response_class=HTMLResponse)
def pending_items(
    request: Request, session: SessionDep, user: CurrentUser, entity_code: CodePath
) -> HTMLResponse:
    """Every department's pending inspection items at the entity: the fragment the inspector view loads."""
    entity, found = inspections.entity_pending_items(
        session, viewer=user, code=entity_code, request=request, locale=locale_of(request)
    )
    return render(
        request, "credit/inspections/_pending_list.html", {"pending": found, "entity_code": entity.code}
    )
