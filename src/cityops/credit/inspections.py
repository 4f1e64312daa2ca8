"""Inspections of business entities: the 24 categories, inspectors' qualifications and conflicts of
interest, the year's random inspection (双随机、一公开) and the joint visits it becomes.

A year's plan, per category: the category's entities in business are grouped by risk class (an entity
not yet classified is drawn as the configured class, B by default, and counted as unclassified too) and
each class's share of them is drawn with a seeded RNG, rounded to the nearest entity; the seed is kept
with the plan, so the same seed over the same population (proved by its digest) draws the same entities
and inspectors. For each entity two inspectors are drawn from those of the category's department who are
qualified for it and free of conflicts with the entity: a declared conflict with it or with its village,
or being its legal representative (the same resident ID number). All tasks of an entity then become one
joint visit whose team is every task's inspectors (joint_visits.py routes and schedules them). Results
are recorded per check item for the whole visit at once, and what is recorded is published without
personal information.

Services flush, never commit."""

from __future__ import annotations

import hashlib
import math
import random
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.orm import Session

from cityops.core.auth import audit
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.roles import has_permission
from cityops.core.auth.scope import scope_filter
from cityops.core.calendar import DEFAULT_TIMEZONE
from cityops.core.db import table_of, utcnow
from cityops.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityops.core.yaml_config import ConfigFileError, load_yaml_file
from cityops.credit import industries, joint_visits
from cityops.credit import service as credit_service
from cityops.credit.models import (
    CONFLICT_RELATIONS,
    KINDS,
    RISK_CLASSES,
    Entity,
    EntityTag,
    InspectionItemResult,
    InspectionPlan,
    InspectionTask,
    InspectorConflict,
    InspectorQualification,
    JointVisit,
    VisitInspector,
)

DATA = Path(__file__).resolve().parent / "data" / "inspection_categories.yaml"
OFFICE = ZoneInfo(DEFAULT_TIMEZONE)
UNCLASSIFIED = "unclassified"
INSPECTOR_ROLE = "inspector"
TEAM_PER_TASK = 2
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,29}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=120)]
RiskClass = Literal["A", "B", "C", "D"]


class CategoriesError(ConfigFileError):
    """The inspection categories file cannot be used; the message names the line and field."""


# --- the categories -----------------------------------------------------------------------------------


class CheckItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    name_zh: Text
    name_en: Text

    def name(self, locale: str) -> str:
        return self.name_zh if locale == "zh" else self.name_en


def _no_repeats(codes: Iterable[str], what: str) -> None:
    twice = [code for code, n in Counter(codes).items() if n > 1]
    if twice:
        raise ValueError(f"{what} {twice[0]!r} is listed twice")


def _industry(code: str) -> str:
    registry = industries.registry()
    if code not in registry.divisions and code not in registry.sections:
        raise ValueError(f"{code!r} is neither a GB/T 4754-2017 division (01-97) nor a section (A-T)")
    return code


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    name_zh: Text
    name_en: Text
    department: Annotated[str, StringConstraints(pattern=r"^dept-[a-z][a-z-]*$")]
    # GB/T 4754-2017 divisions (2 digits) or whole sections (A-T).
    industries: tuple[Annotated[str, AfterValidator(_industry)], ...] = ()
    tags: tuple[Annotated[str, StringConstraints(min_length=1, max_length=30)], ...] = ()
    kinds: tuple[Literal[KINDS], ...] = ()  # type: ignore[valid-type]
    items: tuple[CheckItem, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Category:
        if not self.industries and not self.tags:
            raise ValueError("a category needs industries or tags (or both) to apply to")
        _no_repeats((item.code for item in self.items), "check item")
        return self

    def name(self, locale: str) -> str:
        return self.name_zh if locale == "zh" else self.name_en


class Categories(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ratio_bounds: dict[str, tuple[float, float]]
    ratios: dict[str, float]
    unclassified_as: RiskClass = "B"
    capacity: int = Field(ge=1, le=20)
    categories: tuple[Category, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Categories:
        for name, table in (("ratio_bounds", self.ratio_bounds), ("ratios", self.ratios)):
            missing = [c for c in RISK_CLASSES if c not in table]
            if missing:
                raise ValueError(f"{name} lacks class {missing[0]}")
            unknown = [c for c in table if c not in RISK_CLASSES]
            if unknown:
                raise ValueError(f"{name}: {unknown[0]!r} is no risk class (A-D)")
        check_ratios(self.ratios, self.ratio_bounds)
        _no_repeats((c.code for c in self.categories), "category")
        return self

    def category(self, code: str) -> Category:
        for found in self.categories:
            if found.code == code:
                return found
        raise NotFound(f"no inspection category {code!r}")


def local_date(moment: datetime) -> date:
    """The day a moment falls on in the city (Beijing time)."""
    return moment.astimezone(OFFICE).date()


def check_ratios(ratios: Mapping[str, float], bounds: Mapping[str, tuple[float, float]]) -> None:
    """ValueError naming the class whose share lies outside its bounds."""
    for cls in RISK_CLASSES:
        low, high = bounds[cls]
        share = ratios[cls]
        if not low <= share <= high:
            raise ValueError(f"ratio of class {cls} is {share:g}, outside its bounds {low:g}-{high:g}")


@lru_cache(maxsize=4)
def load_categories(path: Path = DATA) -> Categories:
    return load_yaml_file(
        path, Categories, expected="a mapping with ratios and categories", error=CategoriesError
    )


# --- schemas ------------------------------------------------------------------------------------------


class ClassCoverage(BaseModel):
    risk_class: str
    active: int
    visited: int
    coverage: float


class PlanFigures(BaseModel):
    """A year's figures, computed from the plan's rows."""

    year: int
    plans: int
    tasks: int
    visits: int
    visits_saved: int  # separate inspections (one per task) minus joint visits
    unscheduled: int
    done: int
    entities_active: int
    visits_per_inspected_entity: float  # joint: 1 by construction
    separate_visits_per_inspected_entity: float
    visits_per_active_entity: float
    multi_department_visits: int
    max_departments_per_visit: int
    mean_team_size: float
    inspectors: int
    by_class: list[ClassCoverage]


class PlanRead(BaseModel):
    id: int
    year: int
    category: str
    category_name: str
    department: str
    seed: int
    ratios: dict[str, float]
    population: dict[str, int]
    drawn: dict[str, int]
    population_digest: str
    tasks: int
    done: int
    created_at: datetime


class TeamMember(BaseModel):
    id: int
    display_name: str
    department: str


class ItemRead(BaseModel):
    code: str
    name: str
    result: str | None = None
    note: str = ""


class TaskRead(BaseModel):
    id: int
    category: str
    category_name: str
    department_code: str
    department: str
    status: str
    result: str | None
    items: list[ItemRead]


class VisitSummary(BaseModel):
    id: int
    entity_code: str
    entity_name: str
    address: str
    lon: float | None
    lat: float | None
    scheduled_on: date | None
    sequence: int
    status: str
    categories: list[str]


class VisitRead(VisitSummary):
    """A visit with its team and every task's check items (categories: the tasks' categories)."""

    year: int
    entity_id: int
    recorded_at: datetime | None
    team: list[TeamMember]
    tasks: list[TaskRead]


class Finding(BaseModel):
    """The finding of one check item of one task of the visit."""

    model_config = ConfigDict(extra="forbid")

    task_id: int = Field(ge=1, le=2**31 - 1)
    item: Annotated[str, StringConstraints(max_length=30)]
    result: Literal["compliant", "non_compliant", "not_applicable"]
    note: Annotated[str, StringConstraints(max_length=500)] = ""


class VisitResults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    findings: list[Finding] = Field(default_factory=list, max_length=500)


class PendingTask(BaseModel):
    task_id: int
    year: int
    category: str
    category_name: str
    department_code: str
    department: str
    visit_id: int
    scheduled_on: date | None
    items: list[ItemRead]


class PublishedResult(BaseModel):
    """A recorded result as the public sees it: no inspector, no risk class, no personal information."""

    year: int
    category: str
    category_name: str
    department: str
    entity_code: str
    entity_name: str
    result: str
    recorded_on: date


class PublishedPage(BaseModel):
    items: list[PublishedResult]
    total: int
    limit: int
    offset: int


# --- permissions -------------------------------------------------------------------------------------


def _check_manage(actor: User | None) -> None:
    if actor is not None and not has_permission(actor, "inspections.manage"):
        raise Forbidden("your role may not plan or see inspections (needs permission 'inspections.manage')")


# --- qualifications and conflicts --------------------------------------------------------------------


def qualify(
    session: Session,
    *,
    user_id: int,
    categories: Sequence[str],
    actor: User | None,
    certified_on: date | None = None,
) -> list[str]:
    """Record an inspector's qualifications (the ones held already are kept); the categories now held."""
    _check_manage(actor)
    registry = load_categories()
    for code in categories:
        registry.category(code)
    user = session.get(User, user_id)
    if user is None or user.role != INSPECTOR_ROLE:
        raise ValidationFailed(f"user {user_id} is no inspector", field="user_id")
    held = set(
        session.scalars(
            select(InspectorQualification.category).where(InspectorQualification.user_id == user_id)
        )
    )
    for code in dict.fromkeys(categories):
        if code not in held:
            session.add(InspectorQualification(user_id=user_id, category=code, certified_on=certified_on))
    session.flush()
    return sorted(held | set(categories))


def declare_conflict(
    session: Session,
    *,
    user_id: int,
    relation: str,
    actor: User | None,
    entity_id: int | None = None,
    village_code: str | None = None,
    note: str = "",
) -> InspectorConflict:
    """Declare a conflict of interest of an inspector with an entity, or (home_village) with a village.
    An inspector declares their own; declaring for another needs inspections.manage."""
    if actor is not None and actor.id != user_id:
        _check_manage(actor)
    if relation not in CONFLICT_RELATIONS:
        raise ValidationFailed(
            f"unknown relation {relation!r}; known: {', '.join(CONFLICT_RELATIONS)}", field="relation"
        )
    if (relation == "home_village") != (village_code is not None) or (entity_id is None) == (
        village_code is None
    ):
        raise ValidationFailed(
            "give the entity of the conflict, or the village for relation home_village", field="entity"
        )
    inspector = session.get(User, user_id)
    if inspector is None or inspector.role != INSPECTOR_ROLE:
        raise ValidationFailed(f"user {user_id} is no inspector", field="user_id")
    if entity_id is not None and session.get(Entity, entity_id) is None:
        raise NotFound(f"entity {entity_id} not found")
    if village_code is not None and not (len(village_code) == 12 and village_code.isdigit()):
        raise ValidationFailed(f"{village_code!r} is not a village code (12 digits)", field="village_code")
    taken = session.scalar(
        select(InspectorConflict.id).where(
            InspectorConflict.user_id == user_id,
            InspectorConflict.entity_id == entity_id
            if entity_id is not None
            else InspectorConflict.village_code == village_code,
        )
    )
    if taken is not None:
        raise Conflict("this conflict of interest is declared already", field="entity")
    conflict = InspectorConflict(
        user_id=user_id, entity_id=entity_id, village_code=village_code, relation=relation, note=note[:200]
    )
    session.add(conflict)
    session.flush()
    return conflict


# --- the draw ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    id: int
    kind: str
    industry: str | None
    section: str | None
    risk_class: str | None
    village: str | None
    division: str
    legal_rep_id: str | None
    lon: float | None
    lat: float | None
    grid: str | None


@dataclass
class Inspectors:
    """Who may be drawn: per category, the qualified inspectors of its department; and their conflicts."""

    pools: dict[str, list[int]]
    conflicts_entity: dict[int, set[int]]  # entity id -> inspectors
    conflicts_village: dict[str, set[int]]  # village code -> inspectors
    by_id_number: dict[str, set[int]]  # resident ID number -> inspectors

    def excluded(self, entity: Candidate) -> set[int]:
        out = set(self.conflicts_entity.get(entity.id, ()))
        if entity.village:
            out |= self.conflicts_village.get(entity.village, set())
        if entity.legal_rep_id:
            out |= self.by_id_number.get(entity.legal_rep_id, set())
        return out


def load_population(session: Session) -> list[Candidate]:
    """Every entity in business, by id."""
    rows = session.execute(
        select(
            Entity.id,
            Entity.kind,
            Entity.industry_code,
            Entity.industry_section,
            Entity.risk_class,
            Entity.village_code,
            Entity.division_code,
            Entity.legal_rep_id_number,
            Entity.lon,
            Entity.lat,
            Entity.grid_code,
        )
        .where(Entity.status == "active")
        .order_by(Entity.id)
    )
    return [Candidate(*tuple(row)) for row in rows]


def load_tags(session: Session, tags: Iterable[str]) -> dict[int, set[str]]:
    wanted = sorted(set(tags))
    found: dict[int, set[str]] = defaultdict(set)
    if wanted:
        for entity_id, tag in session.execute(
            select(EntityTag.entity_id, EntityTag.tag).where(EntityTag.tag.in_(wanted))
        ):
            found[entity_id].add(tag)
    return found


def populations(
    registry: Categories, entities: Sequence[Candidate], tags: Mapping[int, set[str]]
) -> dict[str, dict[str, list[Candidate]]]:
    """Per category, its entities by the class they are drawn as, in id order."""
    by_industry: dict[str, list[Category]] = defaultdict(list)
    by_tag: dict[str, list[Category]] = defaultdict(list)
    for category in registry.categories:
        for code in category.industries:
            by_industry[code].append(category)
        for tag in category.tags:
            by_tag[tag].append(category)
    out: dict[str, dict[str, list[Candidate]]] = {
        c.code: {cls: [] for cls in RISK_CLASSES} for c in registry.categories
    }
    for entity in entities:
        found: dict[str, Category] = {}
        for key in (entity.industry, entity.section):
            if key:
                found.update((c.code, c) for c in by_industry.get(key, ()))
        for tag in tags.get(entity.id, ()):
            found.update((c.code, c) for c in by_tag.get(tag, ()))
        group = entity.risk_class or registry.unclassified_as
        for category in found.values():
            if not category.kinds or entity.kind in category.kinds:
                out[category.code][group].append(entity)
    return out


def population_digest(groups: Mapping[str, Sequence[Candidate]]) -> str:
    digest = hashlib.sha256()
    for cls in RISK_CLASSES:
        digest.update(f"{cls}:".encode())
        digest.update(",".join(str(e.id) for e in groups.get(cls, ())).encode())
        digest.update(b";")
    return digest.hexdigest()


def share(ratio: float, population: int) -> int:
    """How many of a class's entities a ratio draws: the share rounded to the nearest entity (half up)."""
    return math.floor(ratio * population + 0.5)


@dataclass(frozen=True)
class Drawn:
    entity: Candidate
    drawn_as: str
    inspectors: tuple[int, int]


def draw(
    category: Category,
    groups: Mapping[str, Sequence[Candidate]],
    ratios: Mapping[str, float],
    seed: int,
    inspectors: Inspectors,
) -> list[Drawn]:
    """The category's draw with this seed: each class's share of its entities, then two inspectors for each
    (the same seed over the same population and inspectors always gives the same result)."""
    rng = random.Random(seed)
    chosen: list[tuple[Candidate, str]] = []
    for cls in RISK_CLASSES:
        members = list(groups.get(cls, ()))
        picked = rng.sample(range(len(members)), share(ratios[cls], len(members)))
        chosen.extend((members[i], cls) for i in sorted(picked))
    pool = inspectors.pools.get(category.code, [])
    out = []
    for entity, cls in chosen:
        excluded = inspectors.excluded(entity)
        eligible = [u for u in pool if u not in excluded] if excluded else pool
        if len(eligible) < TEAM_PER_TASK:
            raise ValidationFailed(
                f"category {category.code}: {category.department} has {len(eligible)} qualified inspector(s) "
                f"free of conflicts with entity {entity.id}, {TEAM_PER_TASK} are needed "
                "(qualify more inspectors for the category)",
                field="category",
            )
        first, second = rng.sample(eligible, TEAM_PER_TASK)
        out.append(Drawn(entity, cls, (first, second)))
    return out


def load_inspectors(session: Session, registry: Categories, units: Mapping[str, OrgUnit]) -> Inspectors:
    qualified: dict[int, set[str]] = defaultdict(set)
    for user_id, code in session.execute(
        select(InspectorQualification.user_id, InspectorQualification.category)
    ):
        qualified[user_id].add(code)
    staff = session.execute(
        select(User.id, User.org_unit_id, User.id_number)
        .where(User.role == INSPECTOR_ROLE, User.is_active.is_(True), User.id.in_(list(qualified)))
        .order_by(User.id)
    ).all()
    pools: dict[str, list[int]] = {}
    for category in registry.categories:
        unit = units[category.department]
        pools[category.code] = [
            uid for uid, org, _n in staff if org == unit.id and category.code in qualified[uid]
        ]
    by_entity: dict[int, set[int]] = defaultdict(set)
    by_village: dict[str, set[int]] = defaultdict(set)
    for user_id, entity_id, village in session.execute(
        select(InspectorConflict.user_id, InspectorConflict.entity_id, InspectorConflict.village_code)
    ):
        if entity_id is not None:
            by_entity[entity_id].add(user_id)
        if village is not None:
            by_village[village].add(user_id)
    by_id_number: dict[str, set[int]] = defaultdict(set)
    for uid, _org, number in staff:
        if number:
            by_id_number[number].add(uid)
    return Inspectors(pools, by_entity, by_village, by_id_number)


def _units(session: Session, registry: Categories) -> dict[str, OrgUnit]:
    wanted = {c.department for c in registry.categories}
    units = {u.code: u for u in session.scalars(select(OrgUnit).where(OrgUnit.code.in_(wanted)))}
    for category in registry.categories:
        if category.department not in units:
            raise ValidationFailed(
                f"category {category.code}: no org unit {category.department}", field="department"
            )
    return units


def plan_seed(seed: int | None, year: int, category: str) -> int:
    """A category's seed: derived from a given seed (so one number repeats the whole year), else random."""
    if seed is None:
        return secrets.randbits(62)
    return int.from_bytes(hashlib.sha256(f"{seed}:{year}:{category}".encode()).digest()[:7], "big")


@dataclass
class PlanOptions:
    year: int
    seed: int | None = None
    ratios: dict[str, float] | None = None
    start: date | None = None
    capacity: int | None = None
    replace: bool = False
    registry: Categories = field(default_factory=load_categories)


def _clear_year(session: Session, year: int, *, replace: bool) -> None:
    existing = session.scalar(
        select(func.count()).select_from(InspectionPlan).where(InspectionPlan.year == year)
    )
    if not existing:
        return
    if not replace:
        raise Conflict(
            f"the inspections of {year} are planned already ({existing} plans); replace them to plan again",
            field="year",
        )
    done = session.scalar(
        select(func.count())
        .select_from(InspectionTask)
        .join(InspectionPlan)
        .where(InspectionPlan.year == year, InspectionTask.status == "done")
    )
    if done:
        raise Conflict(
            f"{done} inspections of {year} are recorded already: the year's plan cannot be replaced",
            field="year",
        )
    clear_year(session, year)


def clear_year(session: Session, year: int) -> None:
    """Delete a year's plans, visits and tasks (callers check first that nothing is recorded)."""
    visits = select(JointVisit.id).where(JointVisit.year == year).scalar_subquery()
    plans = select(InspectionPlan.id).where(InspectionPlan.year == year).scalar_subquery()
    session.execute(delete(InspectionTask).where(InspectionTask.plan_id.in_(plans)))
    session.execute(delete(VisitInspector).where(VisitInspector.visit_id.in_(visits)))
    session.execute(delete(JointVisit).where(JointVisit.year == year))
    session.execute(delete(InspectionPlan).where(InspectionPlan.year == year))


def plan_year(
    session: Session,
    *,
    options: PlanOptions,
    actor: User | None,
    progress: Callable[[str], None] | None = None,
) -> PlanFigures:
    """Draw every category's plan of the year, merge the tasks into joint visits, route and schedule them
    (see joint_visits); the year's figures. All or nothing: a category that cannot be staffed refuses the
    whole plan."""
    _check_manage(actor)
    step = progress or (lambda _label: None)
    registry = options.registry
    year = options.year
    if not 2000 <= year <= 2100:
        raise ValidationFailed(f"year {year} is out of range (2000-2100)", field="year")
    ratios = dict(registry.ratios)
    if options.ratios:
        unknown = [c for c in options.ratios if c not in RISK_CLASSES]
        if unknown:
            raise ValidationFailed(f"unknown risk class {unknown[0]!r} (A-D)", field="ratios")
        ratios.update(options.ratios)
        try:
            check_ratios(ratios, registry.ratio_bounds)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="ratios") from None
    capacity = options.capacity or registry.capacity
    if not 1 <= capacity <= 20:
        raise ValidationFailed("capacity must be 1-20 visits per inspector and day", field="capacity")
    start = options.start or date(year, 1, 1)
    if start.year != year:
        raise ValidationFailed(f"start {start} is not in {year}", field="start")
    days = joint_visits.working_days(start, date(year, 12, 31))
    if not days:
        raise ValidationFailed(f"no working day is left in {year} after {start}", field="start")
    _clear_year(session, year, replace=options.replace)
    units = _units(session, registry)
    step("population")
    entities = load_population(session)
    groups = populations(
        registry, entities, load_tags(session, {t for c in registry.categories for t in c.tags})
    )
    inspectors = load_inspectors(session, registry, units)
    plans: list[InspectionPlan] = []
    drawn_by_plan: list[list[Drawn]] = []
    for category in registry.categories:
        step(category.code)
        seed = plan_seed(options.seed, year, category.code)
        found = draw(category, groups[category.code], ratios, seed, inspectors)
        population = {cls: len(groups[category.code][cls]) for cls in RISK_CLASSES}
        population[UNCLASSIFIED] = sum(
            1 for cls in RISK_CLASSES for e in groups[category.code][cls] if e.risk_class is None
        )
        drawn = Counter(d.drawn_as for d in found)
        plans.append(
            InspectionPlan(
                year=year,
                category=category.code,
                org_unit_id=units[category.department].id,
                seed=seed,
                ratios=ratios,
                population=population,
                drawn={
                    **{cls: drawn.get(cls, 0) for cls in RISK_CLASSES},
                    UNCLASSIFIED: sum(1 for d in found if d.entity.risk_class is None),
                },
                population_digest=population_digest(groups[category.code]),
                created_by_id=actor.id if actor is not None else None,
            )
        )
        drawn_by_plan.append(found)
    session.add_all(plans)
    session.flush()
    step("joint visits")
    _write_visits(session, year, plans, drawn_by_plan, days, capacity)
    if actor is not None:
        audit.record(
            session,
            actor,
            "create",
            "credit_inspection_plans",
            None,
            detail={"year": year, "plans": len(plans)},
        )
    step("figures")
    return figures(session, year=year)


def _write_visits(
    session: Session,
    year: int,
    plans: Sequence[InspectionPlan],
    drawn_by_plan: Sequence[Sequence[Drawn]],
    days: Sequence[date],
    capacity: int,
) -> None:
    """One joint visit per drawn entity, its team every task's inspectors, routed and scheduled."""
    teams: dict[int, set[int]] = defaultdict(set)
    entities: dict[int, Candidate] = {}
    for found in drawn_by_plan:
        for d in found:
            teams[d.entity.id].update(d.inspectors)
            entities[d.entity.id] = d.entity
    ids = sorted(teams)
    stops = [
        joint_visits.Stop(
            i,
            township=(entities[i].village or entities[i].division)[:9],
            grid=entities[i].grid or entities[i].village or entities[i].division,
            lon=entities[i].lon,
            lat=entities[i].lat,
        )
        for i in ids
    ]
    order = joint_visits.route_order(stops)
    routed = [ids[k] for k in order]
    slots = joint_visits.schedule([teams[i] for i in routed], len(days), capacity)
    rows = [
        {
            "year": year,
            "entity_id": entity_id,
            "sequence": n,
            "scheduled_on": days[slot] if slot is not None else None,
            "status": "scheduled" if slot is not None else "unscheduled",
            "recorded_at": None,
            "recorded_by_id": None,
        }
        for n, (entity_id, slot) in enumerate(zip(routed, slots, strict=True))
    ]
    connection = session.connection()
    if rows:
        connection.execute(insert(table_of(JointVisit)), rows)
    visit_of = dict(
        session.execute(select(JointVisit.entity_id, JointVisit.id).where(JointVisit.year == year)).all()
    )
    members = [{"visit_id": visit_of[e], "user_id": u} for e in ids for u in sorted(teams[e])]
    if members:
        connection.execute(insert(table_of(VisitInspector)), members)
    tasks = [
        {
            "plan_id": plan.id,
            "entity_id": d.entity.id,
            "category": plan.category,
            "org_unit_id": plan.org_unit_id,
            "risk_class": d.entity.risk_class,
            "drawn_as": d.drawn_as,
            "first_inspector_id": d.inspectors[0],
            "second_inspector_id": d.inspectors[1],
            "visit_id": visit_of[d.entity.id],
            "status": "pending",
            "result": None,
            "recorded_at": None,
        }
        for plan, found in zip(plans, drawn_by_plan, strict=True)
        for d in found
    ]
    if tasks:
        connection.execute(insert(table_of(InspectionTask)), tasks)


def repeat_draw(session: Session, *, plan_id: int, actor: User | None) -> tuple[bool, list[int]]:
    """Repeat a plan's draw of entities with its recorded seed over today's population: whether the
    population is the one drawn from (same digest) and the entity ids the seed draws from it."""
    _check_manage(actor)
    plan = session.get(InspectionPlan, plan_id)
    if plan is None:
        raise NotFound(f"inspection plan {plan_id} not found")
    registry = load_categories()
    category = registry.category(plan.category)
    groups = populations(registry, load_population(session), load_tags(session, category.tags))[plan.category]
    # The entities only: inspectors are drawn after them from the same RNG, so the entities need none.
    rng = random.Random(plan.seed)
    ids: list[int] = []
    for cls in RISK_CLASSES:
        members = groups[cls]
        picked = rng.sample(range(len(members)), share(plan.ratios[cls], len(members)))
        ids.extend(members[i].id for i in sorted(picked))
    return population_digest(groups) == plan.population_digest, ids


# --- figures -----------------------------------------------------------------------------------------


def figures(session: Session, *, year: int) -> PlanFigures:
    """The year's figures from its rows: tasks, joint visits and the visits they save, visits per
    entity, and coverage per risk class of the entities in business."""
    plans = (
        session.scalar(select(func.count()).select_from(InspectionPlan).where(InspectionPlan.year == year))
        or 0
    )
    tasks = (
        session.scalar(
            select(func.count())
            .select_from(InspectionTask)
            .join(InspectionPlan)
            .where(InspectionPlan.year == year)
        )
        or 0
    )
    by_status = dict(
        session.execute(
            select(JointVisit.status, func.count()).where(JointVisit.year == year).group_by(JointVisit.status)
        ).all()
    )
    visits = sum(by_status.values())
    per_visit = (
        select(InspectionTask.visit_id, func.count(func.distinct(InspectionTask.org_unit_id)).label("n"))
        .join(JointVisit, JointVisit.id == InspectionTask.visit_id)
        .where(JointVisit.year == year)
        .group_by(InspectionTask.visit_id)
        .subquery()
    )
    multi, most = session.execute(
        select(func.count().filter(per_visit.c.n > 1), func.max(per_visit.c.n))
    ).one()
    team = (
        select(VisitInspector.visit_id, func.count().label("n"))
        .join(JointVisit)
        .where(JointVisit.year == year)
        .group_by(VisitInspector.visit_id)
        .subquery()
    )
    mean_team = session.scalar(select(func.avg(team.c.n))) or 0.0
    inspectors = (
        session.scalar(
            select(func.count(func.distinct(VisitInspector.user_id)))
            .join(JointVisit)
            .where(JointVisit.year == year)
        )
        or 0
    )
    cls_of = func.coalesce(Entity.risk_class, UNCLASSIFIED)
    active = dict(
        session.execute(select(cls_of, func.count()).where(Entity.status == "active").group_by(cls_of)).all()
    )
    visited = dict(
        session.execute(
            select(cls_of, func.count())
            .join(JointVisit, JointVisit.entity_id == Entity.id)
            .where(JointVisit.year == year)
            .group_by(cls_of)
        ).all()
    )
    entities_active = sum(active.values())
    return PlanFigures(
        year=year,
        plans=plans,
        tasks=tasks,
        visits=visits,
        visits_saved=tasks - visits,
        unscheduled=by_status.get("unscheduled", 0),
        done=by_status.get("done", 0),
        entities_active=entities_active,
        visits_per_inspected_entity=1.0 if visits else 0.0,
        separate_visits_per_inspected_entity=round(tasks / visits, 3) if visits else 0.0,
        visits_per_active_entity=round(visits / entities_active, 4) if entities_active else 0.0,
        multi_department_visits=multi or 0,
        max_departments_per_visit=most or 0,
        mean_team_size=round(float(mean_team), 2),
        inspectors=inspectors,
        by_class=[
            ClassCoverage(
                risk_class=cls,
                active=active.get(cls, 0),
                visited=visited.get(cls, 0),
                coverage=round(visited.get(cls, 0) / active[cls], 4) if active.get(cls) else 0.0,
            )
            for cls in (*RISK_CLASSES, UNCLASSIFIED)
        ],
    )


# --- reading plans and visits ------------------------------------------------------------------------


def list_plans(session: Session, *, viewer: User | None, year: int, locale: str = "zh") -> list[PlanRead]:
    _check_manage(viewer)
    registry = load_categories()
    counts = {
        (pid, status): n
        for pid, status, n in session.execute(
            select(InspectionTask.plan_id, InspectionTask.status, func.count())
            .join(InspectionPlan)
            .where(InspectionPlan.year == year)
            .group_by(InspectionTask.plan_id, InspectionTask.status)
        )
    }
    out = []
    for plan, unit in session.execute(
        select(InspectionPlan, OrgUnit)
        .join(OrgUnit)
        .where(InspectionPlan.year == year)
        .order_by(InspectionPlan.id)
    ):
        category = registry.category(plan.category)
        out.append(
            PlanRead(
                id=plan.id,
                year=plan.year,
                category=plan.category,
                category_name=category.name(locale),
                department=unit.name if locale == "zh" else (unit.name_en or unit.name),
                seed=plan.seed,
                ratios=plan.ratios,
                population=plan.population,
                drawn=plan.drawn,
                population_digest=plan.population_digest,
                tasks=counts.get((plan.id, "pending"), 0) + counts.get((plan.id, "done"), 0),
                done=counts.get((plan.id, "done"), 0),
                created_at=plan.created_at,
            )
        )
    return out


def _unit_name(unit: OrgUnit, locale: str) -> str:
    return unit.name if locale == "zh" else (unit.name_en or unit.name)


def list_visits(
    session: Session,
    *,
    viewer: User | None,
    inspector_id: int | None = None,
    first: date | None = None,
    last: date | None = None,
    year: int | None = None,
    limit: int = 200,
    locale: str = "zh",
) -> list[VisitSummary]:
    """Joint visits in route order: an inspector's (any inspector may list their own; others' need
    inspections.manage), within dates; entities outside the viewer's scope are left out."""
    if viewer is not None and inspector_id != viewer.id:
        _check_manage(viewer)
    query = select(JointVisit, Entity).join(Entity, Entity.id == JointVisit.entity_id)
    if inspector_id is not None:
        query = query.join(VisitInspector, VisitInspector.visit_id == JointVisit.id).where(
            VisitInspector.user_id == inspector_id
        )
    if viewer is not None and inspector_id != viewer.id:
        query = query.where(scope_filter(viewer, Entity.division_code))
    if first is not None:
        query = query.where(JointVisit.scheduled_on >= first)
    if last is not None:
        query = query.where(JointVisit.scheduled_on <= last)
    if year is not None:
        query = query.where(JointVisit.year == year)
    rows = session.execute(query.order_by(JointVisit.scheduled_on, JointVisit.sequence).limit(limit)).all()
    registry = load_categories()
    cats: dict[int, list[str]] = defaultdict(list)
    if rows:
        for visit_id, category in session.execute(
            select(InspectionTask.visit_id, InspectionTask.category)
            .where(InspectionTask.visit_id.in_([v.id for v, _e in rows]))
            .order_by(InspectionTask.id)
        ):
            cats[visit_id].append(registry.category(category).name(locale))
    return [
        VisitSummary(
            id=v.id,
            entity_code=e.code,
            entity_name=e.name,
            address=e.address,
            lon=e.lon,
            lat=e.lat,
            scheduled_on=v.scheduled_on,
            sequence=v.sequence,
            status=v.status,
            categories=cats[v.id],
        )
        for v, e in rows
    ]


def _visible_visit(
    session: Session, viewer: User | None, visit_id: int
) -> tuple[JointVisit, Entity, list[int]]:
    """The visit if the viewer is on its team or may manage inspections of its entity (404 otherwise)."""
    visit = session.get(JointVisit, visit_id)
    if visit is None:
        raise NotFound(f"visit {visit_id} not found")
    team = list(session.scalars(select(VisitInspector.user_id).where(VisitInspector.visit_id == visit_id)))
    if viewer is not None and viewer.id not in team:
        if not has_permission(viewer, "inspections.manage"):
            raise NotFound(f"visit {visit_id} not found")
        entity = credit_service.visible_entity(session, viewer=viewer, entity_id=visit.entity_id)
    else:
        entity = session.get(Entity, visit.entity_id)  # type: ignore[assignment]
    if entity is None:
        raise NotFound(f"visit {visit_id} not found")
    return visit, entity, team


def get_visit(session: Session, *, viewer: User | None, visit_id: int, locale: str = "zh") -> VisitRead:
    visit, entity, team = _visible_visit(session, viewer, visit_id)
    registry = load_categories()
    tasks = list(
        session.scalars(
            select(InspectionTask).where(InspectionTask.visit_id == visit.id).order_by(InspectionTask.id)
        )
    )
    units = {
        u.id: u
        for u in session.scalars(select(OrgUnit).where(OrgUnit.id.in_({t.org_unit_id for t in tasks})))
    }
    recorded: dict[tuple[int, str], InspectionItemResult] = {
        (r.task_id, r.item): r
        for r in session.scalars(
            select(InspectionItemResult).where(InspectionItemResult.task_id.in_([t.id for t in tasks]))
        )
    }
    members = session.execute(
        select(User, OrgUnit)
        .outerjoin(OrgUnit, OrgUnit.id == User.org_unit_id)
        .where(User.id.in_(team))
        .order_by(User.id)
    ).all()
    task_reads = []
    for task in tasks:
        category = registry.category(task.category)
        items = []
        for item in category.items:
            found = recorded.get((task.id, item.code))
            items.append(
                ItemRead(
                    code=item.code,
                    name=item.name(locale),
                    result=found.result if found else None,
                    note=found.note if found else "",
                )
            )
        unit = units[task.org_unit_id]
        task_reads.append(
            TaskRead(
                id=task.id,
                category=task.category,
                category_name=category.name(locale),
                department_code=unit.code,
                department=_unit_name(unit, locale),
                status=task.status,
                result=task.result,
                items=items,
            )
        )
    return VisitRead(
        id=visit.id,
        year=visit.year,
        entity_id=entity.id,
        entity_code=entity.code,
        entity_name=entity.name,
        address=entity.address,
        lon=entity.lon,
        lat=entity.lat,
        scheduled_on=visit.scheduled_on,
        sequence=visit.sequence,
        status=visit.status,
        recorded_at=visit.recorded_at,
        categories=[t.category_name for t in task_reads],
        team=[
            TeamMember(id=u.id, display_name=u.display_name, department=_unit_name(o, locale) if o else "")
            for u, o in members
        ],
        tasks=task_reads,
    )


# --- recording a visit -------------------------------------------------------------------------------


def record_visit(
    session: Session,
    *,
    visit_id: int,
    findings: Sequence[Finding],
    actor: User | None,
    request: Request | None = None,
    now: datetime | None = None,
    locale: str = "zh",
) -> VisitRead:
    """Record the findings of every check item of every task of a joint visit, at once: a finding for
    each item is required (the missing ones are named), a non-compliant item needs a note saying what
    was found, and only a member of the visit's team may record it, once."""
    visit = session.get(JointVisit, visit_id)
    if visit is None:
        raise NotFound(f"visit {visit_id} not found")
    team = set(session.scalars(select(VisitInspector.user_id).where(VisitInspector.visit_id == visit_id)))
    if actor is not None and actor.id not in team:
        if not has_permission(actor, "inspections.manage"):
            raise NotFound(f"visit {visit_id} not found")
        raise Forbidden("only a member of the visit's team may record its results")
    if visit.status == "done":
        raise Conflict(f"visit {visit_id} was recorded already at {visit.recorded_at:%Y-%m-%d %H:%M} UTC")
    registry = load_categories()
    tasks = {
        t.id: t for t in session.scalars(select(InspectionTask).where(InspectionTask.visit_id == visit_id))
    }
    given: dict[tuple[int, str], Finding] = {}
    for n, finding in enumerate(findings):
        task = tasks.get(finding.task_id)
        if task is None:
            raise ValidationFailed(
                f"findings.{n}: task {finding.task_id} is not part of visit {visit_id}", field="findings"
            )
        codes = {item.code for item in registry.category(task.category).items}
        if finding.item not in codes:
            raise ValidationFailed(
                f"findings.{n}: {task.category} has no check item {finding.item!r}; its "
                f"items: {', '.join(sorted(codes))}",
                field="findings",
            )
        if (finding.task_id, finding.item) in given:
            raise ValidationFailed(
                f"findings.{n}: {task.category}.{finding.item} is given twice", field="findings"
            )
        if finding.result == "non_compliant" and not finding.note.strip():
            raise ValidationFailed(
                f"findings.{n}: {task.category}.{finding.item} is not compliant: say what "
                "was found in its note",
                field="findings",
            )
        given[(finding.task_id, finding.item)] = finding
    missing = [
        (task, item)
        for task in sorted(tasks.values(), key=lambda t: t.id)
        for item in registry.category(task.category).items
        if (task.id, item.code) not in given
    ]
    if missing:
        names = "; ".join(
            f"{registry.category(t.category).name(locale)}: {item.name(locale)}" for t, item in missing
        )
        raise ValidationFailed(
            f"{len(missing)} check item(s) have no result: {names}",
            field="findings",
            detail={
                "missing": [
                    {"task_id": t.id, "category": t.category, "item": item.code} for t, item in missing
                ]
            },
        )
    now = now or utcnow()
    session.execute(
        insert(table_of(InspectionItemResult)),
        [
            {"task_id": f.task_id, "item": f.item, "result": f.result, "note": f.note.strip()}
            for f in given.values()
        ],
    )
    for task in tasks.values():
        bad = any(f.result == "non_compliant" for (tid, _i), f in given.items() if tid == task.id)
        task.status, task.result, task.recorded_at = "done", "non_compliant" if bad else "compliant", now
    visit.status, visit.recorded_at = "done", now
    visit.recorded_by_id = actor.id if actor is not None else None
    session.flush()
    if actor is not None:
        audit.record(
            session,
            actor,
            "update",
            "credit_joint_visit",
            visit.id,
            request=request,
            detail={"tasks": len(tasks), "items": len(given)},
        )
    return get_visit(session, viewer=None, visit_id=visit.id, locale=locale)


# --- pending items and published results -------------------------------------------------------------


def pending_items(session: Session, entity_id: int, *, locale: str = "zh") -> list[PendingTask]:
    """Every department's inspection items still to do at the entity, oldest plan first."""
    registry = load_categories()
    rows = session.execute(
        select(InspectionTask, InspectionPlan.year, JointVisit.scheduled_on, OrgUnit)
        .join(InspectionPlan, InspectionPlan.id == InspectionTask.plan_id)
        .join(JointVisit, JointVisit.id == InspectionTask.visit_id)
        .join(OrgUnit, OrgUnit.id == InspectionTask.org_unit_id)
        .where(InspectionTask.entity_id == entity_id, InspectionTask.status == "pending")
        .order_by(InspectionPlan.year, OrgUnit.code, InspectionTask.category)
    ).all()
    out = []
    for task, year, scheduled_on, unit in rows:
        category = registry.category(task.category)
        out.append(
            PendingTask(
                task_id=task.id,
                year=year,
                category=task.category,
                category_name=category.name(locale),
                department_code=unit.code,
                department=_unit_name(unit, locale),
                visit_id=task.visit_id,
                scheduled_on=scheduled_on,
                items=[ItemRead(code=i.code, name=i.name(locale)) for i in category.items],
            )
        )
    return out


def entity_pending_items(
    session: Session, *, viewer: User | None, code: str, request: Request | None = None, locale: str = "zh"
) -> tuple[Entity, list[PendingTask]]:
    """An entity's pending items for the inspector view: inspections.manage and the entity in scope; the
    read is audited (a plan is not for the entity's eyes before the visit)."""
    _check_manage(viewer)
    entity_id = session.scalar(select(Entity.id).where(Entity.code == code.strip().upper()))
    if entity_id is None:
        raise NotFound(f"entity {code} not found")
    entity = credit_service.visible_entity(session, viewer=viewer, entity_id=entity_id)
    if viewer is not None:
        audit.record(
            session,
            viewer,
            "read",
            "credit_pending_items",
            entity.id,
            division_code=entity.division_code,
            request=request,
        )
    return entity, pending_items(session, entity.id, locale=locale)


def published_results(
    session: Session,
    *,
    year: int | None = None,
    category: str | None = None,
    limit: int = 50,
    offset: int = 0,
    locale: str = "zh",
) -> PublishedPage:
    """The recorded results of random inspections, newest first (公示): entity, category and result."""
    registry = load_categories()
    condition = and_(InspectionTask.status == "done")
    if year is not None:
        condition = and_(condition, InspectionPlan.year == year)
    if category:
        if category not in {c.code for c in registry.categories}:
            raise ValidationFailed(f"no inspection category {category!r}", field="category")
        condition = and_(condition, InspectionTask.category == category)
    base = (
        select(InspectionTask, InspectionPlan.year, Entity.code, Entity.name, OrgUnit)
        .join(InspectionPlan, InspectionPlan.id == InspectionTask.plan_id)
        .join(Entity, Entity.id == InspectionTask.entity_id)
        .join(OrgUnit, OrgUnit.id == InspectionTask.org_unit_id)
        .where(condition)
    )
    total = (
        session.scalar(
            select(func.count())
            .select_from(InspectionTask)
            .join(InspectionPlan, InspectionPlan.id == InspectionTask.plan_id)
            .where(condition)
        )
        or 0
    )
    rows = session.execute(
        base.order_by(InspectionTask.recorded_at.desc(), InspectionTask.id.desc()).limit(limit).offset(offset)
    ).all()
    return PublishedPage(
        items=[
            PublishedResult(
                year=y,
                category=t.category,
                category_name=registry.category(t.category).name(locale),
                department=_unit_name(u, locale),
                entity_code=code,
                entity_name=name,
                result=t.result or "",
                recorded_on=local_date(t.recorded_at or utcnow()),
            )
            for t, y, code, name, u in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


def inspector_ids(session: Session) -> list[tuple[int, str]]:
    """(id, display name) of the active inspectors, for choosing a calendar."""
    return [
        (i, n)
        for i, n in session.execute(
            select(User.id, User.display_name)
            .where(User.role == INSPECTOR_ROLE, User.is_active.is_(True))
            .order_by(User.id)
        )
    ]
