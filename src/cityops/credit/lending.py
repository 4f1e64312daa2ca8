"""Credit lending (信易贷): banks publish loan products with eligibility rules; an entity authorises a bank
(or every bank) to see its credit report until a date; matching tells an entity which products suit it
and, rule by rule, why or why not; applications and the bank's decisions (credit line approved, loan
issued, refusal with its reason) are recorded; the platform's figures are counted from those records.

Who does what: a bank's staff (permission lending.manage, in the bank's org unit; an administrator for
any bank) publish its products and decide its applications, and read an entity's credit report only
under a valid authorisation (without one they see nothing of it). Staff of the register (credit.manage)
record an entity's authorisation and application on its behalf; credit.view shows matches and figures.
Amounts are in yuan. Services flush, never commit."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.roles import has_permission
from cityops.core.auth.scope import sees_everything
from cityops.core.db import utcnow
from cityops.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityops.credit import industries
from cityops.credit import service as credit_service
from cityops.credit.models import (
    RISK_CLASSES,
    Bank,
    CreditRecord,
    Entity,
    LoanApplication,
    LoanProduct,
    ReportAuthorisation,
)
from cityops.credit.records import TAX_GRADES, today_of
from cityops.credit.repair import Text

MAX_AUTHORISATION_DAYS = 366
MAX_AMOUNT = 10**11  # 1,000 亿元: beyond any loan to one firm


# --- shapes ---------------------------------------------------------------------------------------


class BankCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=2, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: Text = Field(min_length=1, max_length=100)
    org_unit_code: Text | None = Field(default=None, max_length=40)


class BankRead(BaseModel):
    id: int
    code: str
    name: str
    synthetic: bool


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_id: int = Field(ge=1, le=2**31 - 1)
    name: Text = Field(min_length=1, max_length=100)
    max_amount: int = Field(gt=0, le=MAX_AMOUNT, description="yuan")
    rate: float = Field(gt=0, le=36, allow_inf_nan=False, description="annual interest, per cent")
    term_months: int = Field(ge=1, le=360)
    risk_classes: list[str] = Field(default_factory=list, max_length=4)
    sections: list[str] = Field(default_factory=list, max_length=20)
    divisions: list[str] = Field(default_factory=list, max_length=97)
    min_years: int = Field(default=0, ge=0, le=100)
    tax_grades: list[str] = Field(default_factory=list, max_length=5)


class ProductRead(BaseModel):
    id: int
    bank_id: int
    bank_name: str
    name: str
    max_amount: int
    rate: float
    term_months: int
    risk_classes: list[str]
    sections: list[str]
    divisions: list[str]
    min_years: int
    tax_grades: list[str]
    active: bool
    synthetic: bool


class AuthorisationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_id: int = Field(ge=1, le=2**31 - 1)
    bank_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="None: every bank")
    days: int = Field(default=180, ge=1, le=MAX_AUTHORISATION_DAYS)


class AuthorisationRead(BaseModel):
    id: int
    entity_id: int
    bank_id: int | None
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    valid: bool


class RuleCheck(BaseModel):
    rule: str  # risk_class, industry, years, tax_grade
    ok: bool
    detail: str


class ProductMatch(BaseModel):
    product: ProductRead
    matches: bool
    checks: list[RuleCheck]


class ApplicationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_id: int = Field(ge=1, le=2**31 - 1)
    product_id: int = Field(ge=1, le=2**31 - 1)
    amount: int = Field(gt=0, le=MAX_AMOUNT, description="yuan")


class ApplicationDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Required, but checked after the scope: an application the user may not decide answers 403/404
    # whatever the body says.
    action: Literal["approve", "refuse", "issue"] | None = None
    credit_line: int | None = Field(default=None, gt=0, le=MAX_AMOUNT)
    loan_amount: int | None = Field(default=None, gt=0, le=MAX_AMOUNT)
    reason: Text = Field(default="", max_length=500)


class ApplicationRead(BaseModel):
    id: int
    entity_id: int
    entity_name: str
    product_id: int
    product_name: str
    bank_name: str
    amount: int
    status: str
    credit_line: int | None
    loan_amount: int | None
    refusal_reason: str | None
    submitted_at: datetime
    decided_at: datetime | None
    issued_at: datetime | None
    synthetic: bool


class CreditReport(BaseModel):
    """What a bank sees of an entity under its authorisation."""

    entity_id: int
    code: str
    name: str
    kind: str
    industry: str | None
    established_on: date | None
    years_in_business: int | None
    status: str
    risk_class: str | None
    score: float | None
    tax_grade: str | None
    active_penalties: int
    abnormal_listings: int
    dishonest_listings: int
    authorised_until: datetime


class Figures(BaseModel):
    banks: int
    products: int
    registered_firms: int
    applications: int
    credit_lines_granted: int
    credit_line_total: int
    loans_issued: int
    loan_total: int


# --- checks ---------------------------------------------------------------------------------------


def _need(actor: User | None, permission: str) -> None:
    if actor is not None and not has_permission(actor, permission):
        raise Forbidden(f"your role may not do this (needs permission {permission!r})")


def _manages(actor: User | None, bank: Bank) -> bool:
    return (
        actor is None
        or sees_everything(actor)
        or (
            has_permission(actor, "lending.manage")
            and actor.org_unit_id is not None
            and actor.org_unit_id == bank.org_unit_id
        )
    )


def _bank(session: Session, bank_id: int, *, field: str = "bank_id") -> Bank:
    bank = session.get(Bank, bank_id)
    if bank is None:
        raise ValidationFailed(f"no bank {bank_id}", field=field)
    return bank


def _managed_bank(session: Session, actor: User | None, bank_id: int) -> Bank:
    _need(actor, "lending.manage")
    bank = _bank(session, bank_id)
    if not _manages(actor, bank):
        raise Forbidden(f"you do not act for {bank.name}")
    return bank


def _clean_rules(data: ProductCreate) -> dict[str, Any]:
    """The product's rules checked value by value (ValidationFailed naming the field and the value)."""
    registry = industries.registry()
    out: dict[str, Any] = {}
    for name, allowed in (("risk_classes", RISK_CLASSES), ("tax_grades", TAX_GRADES)):
        values = [v.strip().upper() for v in getattr(data, name)]
        for i, v in enumerate(values):
            if v not in allowed:
                raise ValidationFailed(f"{v!r} is not one of {', '.join(allowed)}", field=f"{name}.{i}")
        out[name] = sorted(set(values))
    sections = [v.strip().upper() for v in data.sections]
    for i, v in enumerate(sections):
        if v not in registry.sections:
            raise ValidationFailed(f"{v!r} is not a GB/T 4754-2017 section (A-T)", field=f"sections.{i}")
    divisions = [v.strip() for v in data.divisions]
    for i, v in enumerate(divisions):
        if v not in registry.divisions:
            raise ValidationFailed(f"{v!r} is not a GB/T 4754-2017 division (01-97)", field=f"divisions.{i}")
    out["sections"], out["divisions"] = sorted(set(sections)), sorted(set(divisions))
    return out


# --- banks and products ---------------------------------------------------------------------------


def create_bank(session: Session, *, actor: User | None, data: BankCreate, synthetic: bool = False) -> Bank:
    """A bank on the platform (an administrator's act: lending.manage with a city-wide scope)."""
    _need(actor, "lending.manage")
    if actor is not None and not sees_everything(actor):
        raise Forbidden("only an administrator of the platform registers banks")
    if session.scalar(select(Bank.id).where(Bank.code == data.code)) is not None:
        raise Conflict(f"bank {data.code!r} already exists", field="code")
    unit_id = None
    if data.org_unit_code:
        unit_id = session.scalar(select(OrgUnit.id).where(OrgUnit.code == data.org_unit_code))
        if unit_id is None:
            raise ValidationFailed(f"no org unit {data.org_unit_code!r}", field="org_unit_code")
    bank = Bank(code=data.code, name=data.name.strip(), org_unit_id=unit_id, synthetic=synthetic)
    session.add(bank)
    session.flush()
    return bank


def bank_read(bank: Bank) -> BankRead:
    return BankRead(id=bank.id, code=bank.code, name=bank.name, synthetic=bank.synthetic)


def list_banks(session: Session) -> list[BankRead]:
    return [bank_read(b) for b in session.scalars(select(Bank).order_by(Bank.name))]


def _product_read(product: LoanProduct, bank: Bank) -> ProductRead:
    return ProductRead(
        id=product.id,
        bank_id=bank.id,
        bank_name=bank.name,
        name=product.name,
        max_amount=product.max_amount,
        rate=product.rate,
        term_months=product.term_months,
        risk_classes=list(product.risk_classes),
        sections=list(product.sections),
        divisions=list(product.divisions),
        min_years=product.min_years,
        tax_grades=list(product.tax_grades),
        active=product.active,
        synthetic=product.synthetic,
    )


def publish_product(
    session: Session, *, actor: User | None, data: ProductCreate, synthetic: bool = False
) -> ProductRead:
    """A loan product of the actor's bank, its rules checked (ValidationFailed names the field)."""
    bank = _managed_bank(session, actor, data.bank_id)
    product = LoanProduct(
        bank_id=bank.id,
        name=data.name.strip(),
        max_amount=data.max_amount,
        rate=round(data.rate, 4),
        term_months=data.term_months,
        min_years=data.min_years,
        synthetic=synthetic,
        **_clean_rules(data),
    )
    session.add(product)
    session.flush()
    return _product_read(product, bank)


def withdraw_product(session: Session, *, actor: User | None, product_id: int) -> ProductRead:
    product = session.get(LoanProduct, product_id)
    if product is None:
        raise NotFound(f"loan product {product_id} not found")
    bank = _managed_bank(session, actor, product.bank_id)
    product.active = False
    session.flush()
    return _product_read(product, bank)


def list_products(session: Session, *, active_only: bool = True) -> list[ProductRead]:
    """The products on the platform (public to every signed-in user: they are offers)."""
    query = select(LoanProduct, Bank).join(Bank, Bank.id == LoanProduct.bank_id)
    if active_only:
        query = query.where(LoanProduct.active.is_(True))
    rows = session.execute(query.order_by(Bank.name, LoanProduct.name, LoanProduct.id)).all()
    return [_product_read(p, b) for p, b in rows]


# --- authorisations and the credit report ---------------------------------------------------------


def _auth_read(row: ReportAuthorisation, now: datetime) -> AuthorisationRead:
    return AuthorisationRead(
        id=row.id,
        entity_id=row.entity_id,
        bank_id=row.bank_id,
        granted_at=row.granted_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        valid=row.revoked_at is None and row.expires_at > now,
    )


def authorise(
    session: Session,
    *,
    actor: User | None,
    data: AuthorisationCreate,
    now: datetime | None = None,
    synthetic: bool = False,
) -> AuthorisationRead:
    """Record the entity's consent to share its credit report with a bank (or every bank) for some days."""
    _need(actor, "credit.manage")
    now = now or utcnow()
    entity = credit_service.visible_entity(session, viewer=actor, entity_id=data.entity_id)
    if data.bank_id is not None:
        _bank(session, data.bank_id)
    row = ReportAuthorisation(
        entity_id=entity.id,
        bank_id=data.bank_id,
        granted_at=now,
        expires_at=now + timedelta(days=data.days),
        granted_by_id=actor.id if actor else None,
        synthetic=synthetic,
    )
    session.add(row)
    session.flush()
    return _auth_read(row, now)


def revoke(
    session: Session, *, actor: User | None, authorisation_id: int, now: datetime | None = None
) -> AuthorisationRead:
    _need(actor, "credit.manage")
    now = now or utcnow()
    row = session.get(ReportAuthorisation, authorisation_id)
    if row is None:
        raise NotFound(f"authorisation {authorisation_id} not found")
    credit_service.visible_entity(session, viewer=actor, entity_id=row.entity_id)
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return _auth_read(row, now)


def authorisations_of(
    session: Session, *, viewer: User | None, entity_id: int, now: datetime | None = None
) -> list[AuthorisationRead]:
    credit_service.visible_entity(session, viewer=viewer, entity_id=entity_id)
    now = now or utcnow()
    rows = session.scalars(
        select(ReportAuthorisation)
        .where(ReportAuthorisation.entity_id == entity_id)
        .order_by(ReportAuthorisation.id.desc())
    )
    return [_auth_read(r, now) for r in rows]


def _authorised(session: Session, entity_id: int, bank_id: int, now: datetime) -> ReportAuthorisation | None:
    """The entity's authorisation for the bank valid now (the one lasting longest), if any."""
    return session.scalars(
        select(ReportAuthorisation)
        .where(
            ReportAuthorisation.entity_id == entity_id,
            or_(ReportAuthorisation.bank_id == bank_id, ReportAuthorisation.bank_id.is_(None)),
            ReportAuthorisation.revoked_at.is_(None),
            ReportAuthorisation.expires_at > now,
        )
        .order_by(ReportAuthorisation.expires_at.desc())
    ).first()


def _tax_grade(session: Session, entity_id: int) -> str | None:
    """The entity's latest tax credit grade in force."""
    return session.scalar(
        select(CreditRecord.grade)
        .where(
            CreditRecord.entity_id == entity_id,
            CreditRecord.kind == "tax_grade",
            CreditRecord.status == "active",
        )
        .order_by(CreditRecord.decided_on.desc(), CreditRecord.id.desc())
        .limit(1)
    )


def _years(entity: Entity, today: date) -> int | None:
    if entity.established_on is None:
        return None
    years = today.year - entity.established_on.year
    return years - ((today.month, today.day) < (entity.established_on.month, entity.established_on.day))


def credit_report(
    session: Session, *, viewer: User | None, bank_id: int, entity_id: int, now: datetime | None = None
) -> CreditReport:
    """The entity's credit report for a bank's staff: only under a valid authorisation for that bank (a
    missing, expired or revoked one answers 404, as for an entity the bank cannot know)."""
    bank = _managed_bank(session, viewer, bank_id)
    now = now or utcnow()
    entity = session.get(Entity, entity_id)
    granted = _authorised(session, entity_id, bank.id, now) if entity is not None else None
    if entity is None or granted is None:
        raise NotFound(f"no credit report of entity {entity_id} is shared with {bank.name}")
    counts = dict(
        session.execute(
            select(CreditRecord.kind, func.count())
            .where(CreditRecord.entity_id == entity.id, CreditRecord.status == "active")
            .group_by(CreditRecord.kind)
        ).all()
    )
    return CreditReport(
        entity_id=entity.id,
        code=entity.code,
        name=entity.name,
        kind=entity.kind,
        industry=entity.industry_code,
        established_on=entity.established_on,
        years_in_business=_years(entity, today_of(now)),
        status=entity.status,
        risk_class=entity.risk_class,
        score=entity.score,
        tax_grade=_tax_grade(session, entity.id),
        active_penalties=int(counts.get("penalty", 0)),
        abnormal_listings=int(counts.get("abnormal", 0)),
        dishonest_listings=int(counts.get("dishonest", 0)),
        authorised_until=granted.expires_at,
    )


# --- matching -------------------------------------------------------------------------------------


def check_product(
    product: LoanProduct, entity: Entity, *, tax_grade: str | None, today: date
) -> list[RuleCheck]:
    """Each rule of the product against the entity, with what was compared."""
    checks = []
    if product.risk_classes:
        ok = entity.risk_class in product.risk_classes
        checks.append(
            RuleCheck(
                rule="risk_class",
                ok=ok,
                detail=f"class {entity.risk_class or 'not evaluated'}; "
                f"the product takes {', '.join(product.risk_classes)}",
            )
        )
    if product.sections or product.divisions:
        ok = (entity.industry_section or "") in product.sections or (
            entity.industry_code or ""
        ) in product.divisions
        wanted = ", ".join([*product.sections, *product.divisions])
        checks.append(
            RuleCheck(
                rule="industry",
                ok=ok,
                detail=f"industry {entity.industry_code or 'unknown'} (section "
                f"{entity.industry_section or '-'}); the product takes {wanted}",
            )
        )
    if product.min_years:
        years = _years(entity, today)
        checks.append(
            RuleCheck(
                rule="years",
                ok=years is not None and years >= product.min_years,
                detail=f"{years if years is not None else 'unknown'} years in business; "
                f"at least {product.min_years} wanted",
            )
        )
    if product.tax_grades:
        checks.append(
            RuleCheck(
                rule="tax_grade",
                ok=tax_grade in product.tax_grades,
                detail=f"tax credit grade {tax_grade or 'none'}; the product takes "
                f"{', '.join(product.tax_grades)}",
            )
        )
    if entity.status != "active":
        checks.append(RuleCheck(rule="status", ok=False, detail=f"the entity is {entity.status}"))
    return checks


def match(
    session: Session, *, viewer: User | None, entity_id: int, now: datetime | None = None
) -> list[ProductMatch]:
    """Every active product for an entity, those it qualifies for first (lowest rate first), each with
    its rules checked."""
    entity = credit_service.visible_entity(session, viewer=viewer, entity_id=entity_id)
    today = today_of(now or utcnow())
    grade = _tax_grade(session, entity.id)
    rows = session.execute(
        select(LoanProduct, Bank)
        .join(Bank, Bank.id == LoanProduct.bank_id)
        .where(LoanProduct.active.is_(True))
    ).all()
    found = []
    for product, bank in rows:
        checks = check_product(product, entity, tax_grade=grade, today=today)
        found.append(
            ProductMatch(
                product=_product_read(product, bank), matches=all(c.ok for c in checks), checks=checks
            )
        )
    return sorted(found, key=lambda m: (not m.matches, m.product.rate, m.product.id))


# --- applications ---------------------------------------------------------------------------------


def _app_read(app: LoanApplication, entity: Entity, product: LoanProduct, bank: Bank) -> ApplicationRead:
    return ApplicationRead(
        id=app.id,
        entity_id=entity.id,
        entity_name=entity.name,
        product_id=product.id,
        product_name=product.name,
        bank_name=bank.name,
        amount=app.amount,
        status=app.status,
        credit_line=app.credit_line,
        loan_amount=app.loan_amount,
        refusal_reason=app.refusal_reason,
        submitted_at=app.submitted_at,
        decided_at=app.decided_at,
        issued_at=app.issued_at,
        synthetic=app.synthetic,
    )


def _joined(session: Session, app: LoanApplication) -> ApplicationRead:
    entity, product = session.get(Entity, app.entity_id), session.get(LoanProduct, app.product_id)
    assert entity is not None and product is not None
    bank = session.get(Bank, product.bank_id)
    assert bank is not None
    return _app_read(app, entity, product, bank)


def apply(
    session: Session,
    *,
    actor: User | None,
    data: ApplicationCreate,
    now: datetime | None = None,
    synthetic: bool = False,
) -> ApplicationRead:
    """An entity's application for a product: the bank must be authorised to see its credit report, the
    amount within the product's maximum, and no application of the entity for it still open."""
    _need(actor, "credit.manage")
    now = now or utcnow()
    entity = credit_service.visible_entity(session, viewer=actor, entity_id=data.entity_id)
    product = session.get(LoanProduct, data.product_id)
    if product is None or not product.active:
        raise ValidationFailed(f"no loan product {data.product_id} on offer", field="product_id")
    bank = session.get(Bank, product.bank_id)
    assert bank is not None
    if data.amount > product.max_amount:
        raise ValidationFailed(
            f"{product.name} lends at most {product.max_amount} yuan; {data.amount} asked", field="amount"
        )
    if _authorised(session, entity.id, bank.id, now) is None:
        raise ValidationFailed(
            f"{entity.name} has not authorised {bank.name} to see its credit report: record the "
            "authorisation first",
            field="entity_id",
        )
    if session.scalar(
        select(LoanApplication.id).where(
            LoanApplication.entity_id == entity.id,
            LoanApplication.product_id == product.id,
            LoanApplication.status == "submitted",
        )
    ):
        raise Conflict(
            f"{entity.name} already has an application for {product.name} waiting", field="product_id"
        )
    app = LoanApplication(
        entity_id=entity.id,
        product_id=product.id,
        amount=data.amount,
        submitted_at=now,
        synthetic=synthetic,
    )
    session.add(app)
    session.flush()
    return _app_read(app, entity, product, bank)


def decide(
    session: Session,
    *,
    actor: User | None,
    application_id: int,
    data: ApplicationDecision,
    now: datetime | None = None,
) -> ApplicationRead:
    """The bank's decision: approve with a credit line (at most the product's maximum), refuse with the
    reason, or issue a loan (at most the approved line)."""
    now = now or utcnow()
    app = session.get(LoanApplication, application_id)
    product = session.get(LoanProduct, app.product_id) if app is not None else None
    if app is None or product is None:
        raise NotFound(f"loan application {application_id} not found")
    _managed_bank(session, actor, product.bank_id)
    if data.action is None:
        raise ValidationFailed("give the action: approve, refuse or issue", field="action")
    allowed = {"submitted": ("approve", "refuse"), "approved": ("issue",)}.get(app.status, ())
    if data.action not in allowed:
        raise Conflict(
            f"an application that is {app.status} cannot be {data.action}d; "
            f"allowed: {', '.join(allowed) or 'none'}",
            code="invalid_transition",
            field="action",
        )
    if data.action == "approve":
        if data.credit_line is None:
            raise ValidationFailed("an approval needs its credit_line", field="credit_line")
        if data.credit_line > product.max_amount:
            raise ValidationFailed(
                f"the credit line is more than the product's maximum ({product.max_amount})",
                field="credit_line",
            )
        app.status, app.credit_line, app.decided_at = "approved", data.credit_line, now
    elif data.action == "refuse":
        if not data.reason.strip():
            raise ValidationFailed("a refusal needs its reason", field="reason")
        app.status, app.refusal_reason, app.decided_at = "refused", data.reason.strip(), now
    else:
        assert app.credit_line is not None
        if data.loan_amount is None:
            raise ValidationFailed("issuing needs the loan_amount", field="loan_amount")
        if data.loan_amount > app.credit_line:
            raise ValidationFailed(
                f"the loan is more than the approved credit line ({app.credit_line})", field="loan_amount"
            )
        app.status, app.loan_amount, app.issued_at = "issued", data.loan_amount, now
    app.decided_by_id = actor.id if actor else app.decided_by_id
    session.flush()
    return _joined(session, app)


def _application_scope(viewer: User | None) -> ColumnElement[bool]:
    """A bank's staff see their bank's applications; register staff those of entities in their scope."""
    if viewer is None or sees_everything(viewer):
        return true()
    parts: list[ColumnElement[bool]] = []
    if has_permission(viewer, "lending.manage") and viewer.org_unit_id is not None:
        parts.append(LoanProduct.bank_id.in_(select(Bank.id).where(Bank.org_unit_id == viewer.org_unit_id)))
    if has_permission(viewer, "credit.view"):
        parts.append(credit_service.visibility_condition(viewer, credit_service.Filters()))
    if not parts:
        raise Forbidden("your role may not see loan applications (needs credit.view or lending.manage)")
    return or_(*parts)


def list_applications(
    session: Session,
    *,
    viewer: User | None,
    entity_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ApplicationRead]:
    query = (
        select(LoanApplication, Entity, LoanProduct, Bank)
        .join(Entity, Entity.id == LoanApplication.entity_id)
        .join(LoanProduct, LoanProduct.id == LoanApplication.product_id)
        .join(Bank, Bank.id == LoanProduct.bank_id)
        .where(_application_scope(viewer))
    )
    if entity_id is not None:
        query = query.where(LoanApplication.entity_id == entity_id)
    if status is not None:
        query = query.where(LoanApplication.status == status)
    rows = session.execute(query.order_by(LoanApplication.id.desc()).limit(limit).offset(offset)).all()
    return [_app_read(a, e, p, b) for a, e, p, b in rows]


# --- figures --------------------------------------------------------------------------------------


def figures(session: Session) -> Figures:
    """The platform's figures, counted from its records: firms registered (that authorised a bank or
    applied), credit lines granted (approved, including those since drawn) and loans issued."""
    firms = select(ReportAuthorisation.entity_id).union(select(LoanApplication.entity_id)).subquery()
    granted: Any = session.execute(
        select(func.count(), func.coalesce(func.sum(LoanApplication.credit_line), 0)).where(
            LoanApplication.status.in_(("approved", "issued"))
        )
    ).one()
    issued: Any = session.execute(
        select(func.count(), func.coalesce(func.sum(LoanApplication.loan_amount), 0)).where(
            LoanApplication.status == "issued"
        )
    ).one()
    return Figures(
        banks=session.scalar(select(func.count(Bank.id))) or 0,
        products=session.scalar(select(func.count(LoanProduct.id)).where(LoanProduct.active.is_(True))) or 0,
        registered_firms=session.scalar(select(func.count()).select_from(firms)) or 0,
        applications=session.scalar(select(func.count(LoanApplication.id))) or 0,
        credit_lines_granted=int(granted[0]),
        credit_line_total=int(granted[1]),
        loans_issued=int(issued[0]),
        loan_total=int(issued[1]),
    )


# --- demo -----------------------------------------------------------------------------------------

# Synthetic banks and products (names of real kinds of lenders in Hebi, products invented): labelled
# synthetic, made through the same functions as real ones.
DEMO_BANKS = (
    ("demo-hebi-rcb", "鹤壁农商银行（合成）"),
    ("demo-zhongyuan", "中原银行鹤壁分行（合成）"),
    ("demo-postal", "邮储银行鹤壁分行（合成）"),
)
DEMO_PRODUCTS: tuple[tuple[Any, ...], ...] = (
    # bank, name, max amount, rate, months, classes, sections, divisions, min years, tax grades
    (0, "信易贷·税信贷", 3_000_000, 3.85, 12, ["A", "B"], [], [], 2, ["A", "B"]),
    (0, "惠农快贷", 500_000, 4.35, 12, ["A", "B", "C"], ["A"], [], 1, []),
    (1, "科创信用贷", 10_000_000, 3.65, 36, ["A"], ["C", "I", "M"], [], 3, ["A", "B", "M"]),
    (1, "商户经营贷", 1_000_000, 4.9, 24, ["A", "B", "C"], ["F", "H"], [], 1, []),
    (2, "小微易贷", 2_000_000, 4.15, 12, ["A", "B"], [], [], 0, ["A", "B", "M"]),
)


def seed_demo(session: Session, rng: random.Random, *, now: datetime, entity_ids: Sequence[int]) -> Figures:
    """Banks, products and, for some of the given entities, authorisations and applications with
    decisions as the matching allows: all synthetic, through the service functions."""
    banks = [
        create_bank(session, actor=None, data=BankCreate(code=code, name=name), synthetic=True)
        for code, name in DEMO_BANKS
    ]
    for b, name, amount, rate, months, classes, sections, divisions, years, grades in DEMO_PRODUCTS:
        publish_product(
            session,
            actor=None,
            synthetic=True,
            data=ProductCreate(
                bank_id=banks[b].id,
                name=name,
                max_amount=amount,
                rate=rate,
                term_months=months,
                risk_classes=classes,
                sections=sections,
                divisions=divisions,
                min_years=years,
                tax_grades=grades,
            ),
        )
    for entity_id in entity_ids:
        authorise(
            session,
            actor=None,
            synthetic=True,
            now=now - timedelta(days=rng.randrange(1, 90)),
            data=AuthorisationCreate(entity_id=entity_id, days=180),
        )
        offers = [m for m in match(session, viewer=None, entity_id=entity_id, now=now) if m.matches]
        if not offers or rng.random() < 0.3:
            continue
        offer = rng.choice(offers).product
        amount = min(offer.max_amount, rng.choice((100_000, 200_000, 300_000, 500_000, 1_000_000)))
        app = apply(
            session,
            actor=None,
            synthetic=True,
            now=now - timedelta(days=rng.randrange(1, 30)),
            data=ApplicationCreate(entity_id=entity_id, product_id=offer.id, amount=amount),
        )
        fate = rng.random()
        if fate < 0.15:
            decide(
                session,
                actor=None,
                application_id=app.id,
                now=now,
                data=ApplicationDecision(action="refuse", reason="经营流水不足（合成）"),
            )
        elif fate < 0.85:
            line = amount if rng.random() < 0.7 else amount // 2
            decide(
                session,
                actor=None,
                application_id=app.id,
                now=now,
                data=ApplicationDecision(action="approve", credit_line=line),
            )
            if rng.random() < 0.85:
                decide(
                    session,
                    actor=None,
                    application_id=app.id,
                    now=now,
                    data=ApplicationDecision(action="issue", loan_amount=line - line % 10_000 or line),
                )
    return figures(session)
