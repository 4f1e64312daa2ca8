"""JSON routes of credit lending (信易贷): banks and their products, an entity's authorisations and its
product matches, a bank's view of an authorised credit report, applications and decisions, figures."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from cityops.core.auth.deps import CurrentUser
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.credit import lending
from cityops.credit.api import MAX_ID, Viewer

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Your role may not do this, or you do not act for this bank"},
    404: {"description": "Not found (or not shared with your bank)"},
    409: {"description": "Already exists, or a move the application's state does not allow"},
    422: {"description": "Invalid input; names the field"},
}

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/credit/lending", tags=["credit lending"])


@router.get("/banks", response_model=list[lending.BankRead])
def list_banks(session: SessionDep, user: CurrentUser) -> list[lending.BankRead]:
    return lending.list_banks(session)


@router.post("/banks", response_model=lending.BankRead, status_code=201, responses=ERRORS)
def create_bank(body: lending.BankCreate, session: SessionDep, user: CurrentUser) -> lending.BankRead:
    """Register a bank (an administrator with lending.manage)."""
    return lending.bank_read(lending.create_bank(session, actor=user, data=body))


@router.get("/products", response_model=list[lending.ProductRead])
def list_products(session: SessionDep, user: CurrentUser) -> list[lending.ProductRead]:
    """The loan products on offer."""
    return lending.list_products(session)


@router.post("/products", response_model=lending.ProductRead, status_code=201, responses=ERRORS)
def publish_product(
    body: lending.ProductCreate, session: SessionDep, user: CurrentUser
) -> lending.ProductRead:
    """Publish a product of your bank with its eligibility rules (each value checked, the field named)."""
    return lending.publish_product(session, actor=user, data=body)


@router.post("/products/{product_id}/withdraw", response_model=lending.ProductRead, responses=ERRORS)
def withdraw_product(product_id: Id, session: SessionDep, user: CurrentUser) -> lending.ProductRead:
    return lending.withdraw_product(session, actor=user, product_id=product_id)


@router.post("/authorisations", response_model=lending.AuthorisationRead, status_code=201, responses=ERRORS)
def authorise(
    body: lending.AuthorisationCreate, session: SessionDep, user: CurrentUser
) -> lending.AuthorisationRead:
    """Record an entity's consent to share its credit report with a bank (or every bank) for some days."""
    return lending.authorise(session, actor=user, data=body)


@router.post(
    "/authorisations/{authorisation_id}/revoke", response_model=lending.AuthorisationRead, responses=ERRORS
)
def revoke(authorisation_id: Id, session: SessionDep, user: CurrentUser) -> lending.AuthorisationRead:
    return lending.revoke(session, actor=user, authorisation_id=authorisation_id)


@router.get(
    "/entities/{entity_id}/authorisations", response_model=list[lending.AuthorisationRead], responses=ERRORS
)
def authorisations(entity_id: Id, session: SessionDep, user: Viewer) -> list[lending.AuthorisationRead]:
    return lending.authorisations_of(session, viewer=user, entity_id=entity_id)


@router.get("/entities/{entity_id}/matches", response_model=list[lending.ProductMatch], responses=ERRORS)
def matches(entity_id: Id, session: SessionDep, user: Viewer) -> list[lending.ProductMatch]:
    """Every product for the entity, those it qualifies for first, each rule explained."""
    return lending.match(session, viewer=user, entity_id=entity_id)


@router.get("/banks/{bank_id}/reports/{entity_id}", response_model=lending.CreditReport, responses=ERRORS)
def credit_report(bank_id: Id, entity_id: Id, session: SessionDep, user: CurrentUser) -> lending.CreditReport:
    """An entity's credit report for your bank: only under the entity's valid authorisation."""
    return lending.credit_report(session, viewer=user, bank_id=bank_id, entity_id=entity_id)


@router.post("/applications", response_model=lending.ApplicationRead, status_code=201, responses=ERRORS)
def apply(body: lending.ApplicationCreate, session: SessionDep, user: CurrentUser) -> lending.ApplicationRead:
    return lending.apply(session, actor=user, data=body)


@router.get("/applications", response_model=list[lending.ApplicationRead], responses=ERRORS)
def list_applications(
    session: SessionDep,
    user: CurrentUser,
    entity_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[Literal["submitted", "approved", "refused", "issued"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[lending.ApplicationRead]:
    """Your bank's applications, or those of entities in your scope."""
    return lending.list_applications(
        session, viewer=user, entity_id=entity_id, status=status, limit=limit, offset=offset
    )


@router.post(
    "/applications/{application_id}/decision", response_model=lending.ApplicationRead, responses=ERRORS
)
def decide(
    application_id: Id, body: lending.ApplicationDecision, session: SessionDep, user: CurrentUser
) -> lending.ApplicationRead:
    """approve (with the credit line), refuse (with the reason) or issue (the loan, at most the line)."""
    return lending.decide(session, actor=user, application_id=application_id, data=body)


@router.get("/figures", response_model=lending.Figures)
def figures(session: SessionDep, user: Viewer) -> lending.Figures:
    """Registered firms, credit lines granted and loans issued, counted from the records."""
    return lending.figures(session)
