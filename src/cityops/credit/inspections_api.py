"""JSON routes of inspections: the categories, a year's plan and figures, joint visits and their results,
an entity's pending items, qualifications and conflicts of interest, and the published results."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from cityops.core.auth.deps import CurrentUser, require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import NotFound
from cityops.core.i18n import locale_of
from cityops.credit import inspections
from cityops.credit.models import Entity

MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Year = Annotated[int, Query(ge=2000, le=2100)]
Manager = Annotated[User, Depends(require_permission("inspections.manage"))]
CodePath = Annotated[str, Path(min_length=18, max_length=18, description="The unified social credit code")]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such record in your scope"},
    422: {"description": "Invalid input; names the field"},
}

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/credit/inspections", tags=["credit inspections"])


class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int = Field(ge=2000, le=2100)
    seed: int | None = Field(default=None, ge=0, le=2**62)
    ratios: dict[Annotated[str, StringConstraints(max_length=1)], float] | None = Field(
        default=None, max_length=4
    )
    start: date | None = None
    capacity: int | None = Field(default=None, ge=1, le=20)
    replace: bool = False


class QualificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int = Field(ge=1, le=MAX_ID)
    categories: list[Annotated[str, StringConstraints(max_length=30)]] = Field(min_length=1, max_length=24)
    certified_on: date | None = None


class ConflictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Default: yourself")
    entity_code: Annotated[str, StringConstraints(max_length=18)] | None = None
    village_code: Annotated[str, StringConstraints(max_length=12)] | None = None
    relation: Annotated[str, StringConstraints(max_length=16)]
    note: Annotated[str, StringConstraints(max_length=200)] = ""


class ConflictRead(BaseModel):
    id: int
    user_id: int
    entity_id: int | None
    village_code: str | None
    relation: str


class CategoryRead(BaseModel):
    code: str
    name: str
    department: str
    industries: list[str]
    tags: list[str]
    kinds: list[str]
    items: list[inspections.ItemRead]


@router.get("/categories", response_model=list[CategoryRead])
def categories(request: Request, user: CurrentUser) -> list[CategoryRead]:
    """The inspection categories with their department, the entities they apply to and their check items."""
    locale = locale_of(request)
    return [
        CategoryRead(
            code=c.code,
            name=c.name(locale),
            department=c.department,
            industries=list(c.industries),
            tags=list(c.tags),
            kinds=list(c.kinds),
            items=[inspections.ItemRead(code=i.code, name=i.name(locale)) for i in c.items],
        )
        for c in inspections.load_categories().categories
    ]


@router.get("/plans", response_model=list[inspections.PlanRead])
def plans(request: Request, session: SessionDep, user: Manager, year: Year) -> list[inspections.PlanRead]:
    """The year's plans: seed, ratios, population and draw by class, tasks and how many are done."""
    return inspections.list_plans(session, viewer=user, year=year, locale=locale_of(request))


@router.post("/plans", response_model=inspections.PlanFigures, status_code=201, responses=ERRORS)
def plan(session: SessionDep, user: Manager, body: PlanRequest) -> inspections.PlanFigures:
    """Draw the year's random inspections of every category and merge them into scheduled joint visits
    (409 when the year is planned and `replace` is not set, or when results are recorded already)."""
    options = inspections.PlanOptions(
        year=body.year,
        seed=body.seed,
        ratios=body.ratios,
        start=body.start,
        capacity=body.capacity,
        replace=body.replace,
    )
    return inspections.plan_year(session, options=options, actor=user)


@router.get("/figures", response_model=inspections.PlanFigures)
def figures(session: SessionDep, user: Manager, year: Year) -> inspections.PlanFigures:
    """Tasks, joint visits, visits saved against separate inspections, coverage per risk class."""
    return inspections.figures(session, year=year)


@router.get("/visits", response_model=list[inspections.VisitSummary], responses=ERRORS)
def visits(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    inspector_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Default: yourself")] = None,
    first: date | None = None,
    last: date | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[inspections.VisitSummary]:
    """An inspector's joint visits in calendar and route order (others' need inspections.manage)."""
    return inspections.list_visits(
        session,
        viewer=user,
        inspector_id=inspector_id or user.id,
        first=first,
        last=last,
        year=year,
        limit=limit,
        locale=locale_of(request),
    )


@router.get("/visits/{joint_visit_id}", response_model=inspections.VisitRead, responses=ERRORS)
def visit(
    request: Request, session: SessionDep, user: CurrentUser, joint_visit_id: Id
) -> inspections.VisitRead:
    """A joint visit: the entity, the team, every department's task with its check items and findings."""
    return inspections.get_visit(session, viewer=user, visit_id=joint_visit_id, locale=locale_of(request))


@router.post("/visits/{joint_visit_id}/results", response_model=inspections.VisitRead, responses=ERRORS)
def record(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    joint_visit_id: Id,
    body: inspections.VisitResults,
) -> inspections.VisitRead:
    """Record the findings of every check item of the visit at once (a member of its team): 422 naming the
    items without a result; nothing is recorded unless all are."""
    return inspections.record_visit(
        session,
        visit_id=joint_visit_id,
        findings=body.findings,
        actor=user,
        request=request,
        locale=locale_of(request),
    )


@router.get("/entities/{entity_code}/pending", response_model=list[inspections.PendingTask], responses=ERRORS)
def pending(
    request: Request, session: SessionDep, user: Manager, entity_code: CodePath
) -> list[inspections.PendingTask]:
    """Every department's pending inspection items at the entity (audited)."""
    _entity, found = inspections.entity_pending_items(
        session, viewer=user, code=entity_code, request=request, locale=locale_of(request)
    )
    return found


@router.post("/qualifications", response_model=list[str], responses=ERRORS)
def qualify(session: SessionDep, user: Manager, body: QualificationRequest) -> list[str]:
    """Record an inspector's qualifications for categories; the categories they now hold."""
    return inspections.qualify(
        session, user_id=body.user_id, categories=body.categories, actor=user, certified_on=body.certified_on
    )


@router.post("/conflicts", response_model=ConflictRead, status_code=201, responses=ERRORS)
def declare(session: SessionDep, user: CurrentUser, body: ConflictRequest) -> ConflictRead:
    """Declare a conflict of interest with an entity (by its code) or, for home_village, a village: your
    own, or another inspector's with inspections.manage."""
    entity_id = None
    if body.entity_code is not None:
        entity_id = session.scalar(select(Entity.id).where(Entity.code == body.entity_code.strip().upper()))
        if entity_id is None:
            raise NotFound(f"entity {body.entity_code} not found", field="entity_code")
    found = inspections.declare_conflict(
        session,
        user_id=body.user_id or user.id,
        relation=body.relation,
        actor=user,
        entity_id=entity_id,
        village_code=body.village_code,
        note=body.note,
    )
    return ConflictRead(
        id=found.id,
        user_id=found.user_id,
        entity_id=found.entity_id,
        village_code=found.village_code,
        relation=found.relation,
    )


@router.get("/results", response_model=inspections.PublishedPage, responses=ERRORS)
def results(
    request: Request,
    session: SessionDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    category: Annotated[str | None, Query(max_length=30)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> inspections.PublishedPage:
    """The published results of random inspections (公示), open to all: entity, category, result."""
    return inspections.published_results(
        session, year=year, category=category or None, limit=limit, offset=offset, locale=locale_of(request)
    )
