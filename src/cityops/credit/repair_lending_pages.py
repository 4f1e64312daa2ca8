"""Pages of credit repair and lending: repair applications (/credit/repair) with an application's page and
its decision form, a penalty with its four documents (/credit/penalties/{id}), and the lending hall
(/credit/lending): the figures, the products on offer, an entity's matches and applications."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from cityops.core.auth.deps import CurrentUser
from cityops.core.auth.roles import has_permission
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError, Forbidden
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, register_nav, render
from cityops.credit import lending, repair
from cityops.credit import service as credit_service
from cityops.credit.api import MAX_ID
from cityops.credit.records import RECORD_STATUS_LABELS, SEVERITY_LABELS

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
register_nav(
    NavItem(
        "credit-repair",
        N_("Credit repair"),
        "/credit/repair",
        order=57,
        permission="credit.view",
        description=N_("Penalties served with their four documents, and credit repair applications."),
    )
)
register_nav(
    NavItem(
        "credit-lending",
        N_("Lending hall"),
        "/credit/lending",
        order=58,
        permission="credit.view",
        description=N_("Credit-based lending: banks' loan products, matches for an entity, applications."),
    )
)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
REPAIR_STATUS_LABELS = {
    "submitted": N_("Submitted"),
    "accepted": N_("Accepted"),
    "refused": N_("Refused"),
    "repaired": N_("Repair granted"),
}
LOAN_STATUS_LABELS = {
    "submitted": N_("Submitted"),
    "approved": N_("Credit line approved"),
    "refused": N_("Refused"),
    "issued": N_("Loan issued"),
}
DOCUMENT_LABELS = {
    "decision": N_("Penalty decision"),
    "repair_notice": N_("Credit repair notice"),
    "commitment": N_("Credit commitment letter"),
    "guidance": N_("Compliance guidance"),
}
CHANNEL_LABELS = {"in_person": N_("In person"), "mail": N_("By post"), "electronic": N_("Electronically")}
RULE_LABELS = {
    "risk_class": N_("Credit risk class"),
    "industry": N_("Industry"),
    "years": N_("Years in business"),
    "tax_grade": N_("Tax grade"),
    "status": N_("Registration status"),
}


def _check_view(user: CurrentUser) -> None:
    if not has_permission(user, "credit.view"):
        raise Forbidden("your role may not see credit repair and lending (needs permission 'credit.view')")


@router.get("/credit/repair", response_class=HTMLResponse)
def applications(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    status: Annotated[Literal["", "submitted", "accepted", "refused", "repaired"], Query()] = "",
) -> HTMLResponse:
    """Repair applications in scope, newest first, with their deadlines."""
    _check_view(user)
    found = repair.list_applications(session, viewer=user, status=status or None, limit=200)
    return render(
        request,
        "credit/repair/applications.html",
        {"applications": found, "status": status, "status_labels": REPAIR_STATUS_LABELS},
    )


def _application_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    application_id: int,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    found = repair.get_application(session, viewer=user, application_id=application_id)
    penalty = repair.get_penalty(session, viewer=user, record_id=found.record_id)
    return render(
        request,
        "credit/repair/application.html",
        {
            "app": found,
            "penalty": penalty,
            "status_labels": REPAIR_STATUS_LABELS,
            "severity_labels": SEVERITY_LABELS,
            "may_decide": has_permission(user, "credit.repair"),
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/credit/repair/applications/{application_id}", response_class=HTMLResponse)
def application(application_id: Id, request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """An application: the penalty, the materials (missing ones named), the decision form."""
    _check_view(user)
    return _application_page(request, session, user, application_id)


@router.post("/credit/repair/applications/{application_id}/decision", response_model=None)
def decide(
    application_id: Id,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    action: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """The decision form: back to the application, or the application with the reason it was refused."""
    _check_view(user)
    repair.get_application(session, viewer=user, application_id=application_id)  # 404 outside the scope
    try:
        decision = repair.RepairDecision.model_validate({"action": action, "reason": reason})
    except ValidationError as exc:
        problem = exc.errors()[0]
        return _application_page(
            request,
            session,
            user,
            application_id,
            status_code=422,
            error=f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}",
        )
    try:
        repair.decide(
            session,
            actor=user,
            application_id=application_id,
            data=decision,
        )
    except Forbidden:
        raise
    except CityopsError as exc:
        session.rollback()
        return _application_page(
            request, session, user, application_id, error=exc.message, status_code=exc.status
        )
    return RedirectResponse(f"/credit/repair/applications/{application_id}", status_code=303)


@router.get("/credit/penalties/{record_id}", response_class=HTMLResponse)
def penalty(record_id: Id, request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """A penalty: its four documents and their serving, and when it may be repaired."""
    _check_view(user)
    found = repair.get_penalty(session, viewer=user, record_id=record_id)
    return render(
        request,
        "credit/repair/penalty.html",
        {
            "penalty": found,
            "eligibility": repair.eligibility(session, viewer=user, record_id=record_id),
            "applications": repair.list_applications(session, viewer=user, entity_id=found.entity_id),
            "document_labels": DOCUMENT_LABELS,
            "severity_labels": SEVERITY_LABELS,
            "record_status_labels": RECORD_STATUS_LABELS,
            "channel_labels": CHANNEL_LABELS,
            "status_labels": REPAIR_STATUS_LABELS,
        },
    )


@router.get("/credit/lending", response_class=HTMLResponse)
def lending_hall(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    entity_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    """The lending hall: the platform's figures, the products on offer and, for an entity (?entity_id=),
    each product's match explained and the entity's applications."""
    _check_view(user)
    entity = None
    matches: list[lending.ProductMatch] = []
    applications: list[lending.ApplicationRead] = []
    if entity_id is not None:
        entity = credit_service.visible_entity(session, viewer=user, entity_id=entity_id)
        matches = lending.match(session, viewer=user, entity_id=entity_id)
        applications = lending.list_applications(session, viewer=user, entity_id=entity_id)
    return render(
        request,
        "credit/lending/hall.html",
        {
            "figures": lending.figures(session),
            "products": lending.list_products(session),
            "entity": entity,
            "matches": matches,
            "applications": applications
            or (lending.list_applications(session, viewer=user, limit=20) if entity is None else []),
            "status_labels": LOAN_STATUS_LABELS,
            "rule_labels": RULE_LABELS,
        },
    )
