"""Random inspection (双随机、一公开): the categories file, the draw by risk class with the configured
ratios, its reproducibility from the recorded seed, and who may be drawn as inspector."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, or_, select, update

from cityops.core.auth.models import OrgUnit, User
from cityops.core.db import Database
from cityops.core.errors import Conflict, ValidationFailed
from cityops.credit import inspections
from cityops.credit.models import (
    Entity,
    EntityTag,
    InspectionPlan,
    InspectionTask,
    InspectorConflict,
    InspectorQualification,
)

YEAR = 2026
CLASSES = ("A", "B", "C", "D", None)


def classify(db: Database) -> None:
    """Give the entities risk classes in turn by id (A, B, C, D, unclassified), so every class has some."""
    with db.session() as session:
        ids = list(session.scalars(select(Entity.id).order_by(Entity.id)))
        for n, cls in enumerate(CLASSES):
            chosen = ids[n :: len(CLASSES)]
            session.execute(update(Entity).where(Entity.id.in_(chosen)).values(risk_class=cls))


def plan(db: Database, **options: Any) -> inspections.PlanFigures:
    values: dict[str, Any] = {"year": YEAR, "seed": 7, "start": date(YEAR, 1, 5)} | options
    with db.session() as session:
        return inspections.plan_year(session, options=inspections.PlanOptions(**values), actor=None)


def user_id(db: Database, username: str) -> int:
    with db.sessions() as session:
        found = session.scalar(select(User.id).where(User.username == username))
        assert found is not None
        return found


def test_the_categories_file_names_24_categories_of_real_departments() -> None:
    from cityops.accounts.demo import DEPARTMENTS

    registry = inspections.load_categories()
    assert len(registry.categories) == 24
    departments = {f"dept-{slug}" for slug, _zh, _en in DEPARTMENTS}
    assert {c.department for c in registry.categories} <= departments
    assert len({c.department for c in registry.categories}) >= 10
    assert all(len(c.items) >= 2 for c in registry.categories)


def test_a_bad_categories_file_is_refused_with_its_line_and_field(tmp_path: Path) -> None:
    text = inspections.DATA.read_text(encoding="utf-8")
    bad = tmp_path / "inspection_categories.yaml"
    bad.write_text(text.replace('industries: ["13", "14", "15", "62"]', 'industries: ["13", "X9"]', 1))
    with pytest.raises(inspections.CategoriesError) as refused:
        inspections.load_categories(bad)
    line = next(n for n, row in enumerate(bad.read_text().splitlines(), 1) if "X9" in row)
    assert f"line {line}: categories.0.industries.1:" in str(refused.value)
    assert "'X9'" in str(refused.value)
    bad.write_text(text.replace("ratios: {A: 0.03", "ratios: {A: 0.09", 1))
    with pytest.raises(inspections.CategoriesError, match=r"class A is 0\.09, outside its bounds 0-0\.05"):
        inspections.load_categories(bad)


def _population(db: Database, category: inspections.Category) -> dict[str | None, set[int]]:
    """The category's entities in business by their class, found here by SQL on its own."""
    with db.sessions() as session:
        tagged = select(EntityTag.entity_id).where(EntityTag.tag.in_(category.tags or ["-"]))
        query = select(Entity.id, Entity.risk_class).where(
            Entity.status == "active",
            or_(
                Entity.industry_code.in_(category.industries),
                Entity.industry_section.in_(category.industries),
                Entity.id.in_(tagged),
            ),
        )
        if category.kinds:
            query = query.where(Entity.kind.in_(category.kinds))
        out: dict[str | None, set[int]] = {}
        for entity_id, cls in session.execute(query):
            out.setdefault(cls, set()).add(entity_id)
        return out


def test_each_class_is_drawn_at_its_ratio(db: Database) -> None:
    classify(db)
    ratios = {"A": 0.05, "B": 0.2, "C": 0.5, "D": 1.0}
    plan(db, ratios=ratios)
    registry = inspections.load_categories()
    checked = 0
    with db.sessions() as session:
        for p in session.scalars(select(InspectionPlan).where(InspectionPlan.year == YEAR)):
            population = _population(db, registry.category(p.category))
            drawn = Counter(
                session.scalars(select(InspectionTask.drawn_as).where(InspectionTask.plan_id == p.id))
            )
            for cls in ("A", "B", "C", "D"):
                members = len(population.get(cls, ())) + (len(population.get(None, ())) if cls == "B" else 0)
                expected = math.floor(ratios[cls] * members + 0.5)
                assert drawn[cls] == expected == p.drawn[cls], (p.category, cls)
                assert p.population[cls] == members
                checked += members
            # Each class only gives its own entities; unclassified ones are drawn as B.
            for entity_id, cls, drawn_as in session.execute(
                select(InspectionTask.entity_id, InspectionTask.risk_class, InspectionTask.drawn_as).where(
                    InspectionTask.plan_id == p.id
                )
            ):
                assert entity_id in population[cls]
                assert drawn_as == (cls or "B")
    assert checked > 100


def test_the_recorded_seed_repeats_the_draw(db: Database) -> None:
    classify(db)
    plan(db, seed=None)  # a random seed, kept with each plan
    with db.sessions() as session:
        plans = list(session.scalars(select(InspectionPlan).where(InspectionPlan.year == YEAR)))
        assert len({p.seed for p in plans}) == len(plans)
        for p in plans:
            same_population, ids = inspections.repeat_draw(session, plan_id=p.id, actor=None)
            assert same_population
            stored = session.scalars(select(InspectionTask.entity_id).where(InspectionTask.plan_id == p.id))
            assert sorted(ids) == sorted(stored)
        before = {
            (t.category, t.entity_id, t.first_inspector_id, t.second_inspector_id)
            for t in session.scalars(select(InspectionTask))
        }
        seeds = {p.category: p.seed for p in plans}
    # The whole year again from one given seed: the same draw twice; another seed, another draw.
    plan(db, seed=99, replace=True)
    with db.sessions() as session:
        first = {
            (t.category, t.entity_id, t.first_inspector_id, t.second_inspector_id)
            for t in session.scalars(select(InspectionTask))
        }
    plan(db, seed=99, replace=True)
    with db.sessions() as session:
        again = {
            (t.category, t.entity_id, t.first_inspector_id, t.second_inspector_id)
            for t in session.scalars(select(InspectionTask))
        }
        assert {p.category: p.seed for p in session.scalars(select(InspectionPlan))} != seeds
    assert first == again != before


def test_conflicted_inspectors_are_never_drawn_for_the_entity(db: Database) -> None:
    classify(db)
    with db.session() as session:
        market = session.scalar(select(OrgUnit.id).where(OrgUnit.code == "dept-market"))
        pool = list(
            session.scalars(
                select(InspectorQualification.user_id)
                .join(User, User.id == InspectorQualification.user_id)
                .where(InspectorQualification.category == "food_safety", User.org_unit_id == market)
                .order_by(User.id)
            )
        )
        assert len(pool) >= 3
        session.execute(delete(InspectorConflict))
        # Three food businesses of class D, each drawn for sure (D at 100 %).
        food = list(
            session.scalars(
                select(Entity)
                .where(
                    Entity.industry_code == "62", Entity.status == "active", Entity.village_code.is_not(None)
                )
                .order_by(Entity.id)
                .limit(3)
            )
        )
        assert len(food) == 3
        for entity in food:
            entity.risk_class = "D"
        own, village, rep = food
        inspections.declare_conflict(
            session, user_id=pool[0], entity_id=own.id, relation="relative", actor=None
        )
        inspections.declare_conflict(
            session, user_id=pool[1], village_code=village.village_code, relation="home_village", actor=None
        )
        # The legal representative of the third is an inspector (the same resident ID number).
        inspector = session.get(User, pool[2])
        assert inspector is not None and inspector.id_number
        rep.legal_rep_id_number = inspector.id_number
        excluded = {own.id: pool[0], village.id: pool[1], rep.id: pool[2]}
        same_village = set(
            session.scalars(select(Entity.id).where(Entity.village_code == village.village_code))
        )
    plan(db, ratios={"D": 1.0})
    with db.sessions() as session:
        tasks = list(session.scalars(select(InspectionTask)))
        for entity_id, inspector_id in excluded.items():
            food_task = [t for t in tasks if t.entity_id == entity_id and t.category == "food_safety"]
            assert len(food_task) == 1
            assert inspector_id not in (food_task[0].first_inspector_id, food_task[0].second_inspector_id)
        # The home-village conflict covers every entity of the village, in every category.
        assert all(
            pool[1] not in (t.first_inspector_id, t.second_inspector_id)
            for t in tasks
            if t.entity_id in same_village
        )


def test_only_qualified_inspectors_of_the_department_are_drawn(db: Database) -> None:
    classify(db)
    with db.session() as session:
        # An inspector of the market regulator without qualifications, and one qualified for food safety
        # whose department is another.
        market = session.scalar(select(OrgUnit.id).where(OrgUnit.code == "dept-market"))
        fire = session.scalar(select(OrgUnit.id).where(OrgUnit.code == "dept-fire"))
        session.add_all(
            [
                User(
                    username="inspector.unqualified",
                    display_name="甲",
                    password_hash="-",
                    role="inspector",
                    org_unit_id=market,
                    scope_code="410600",
                ),
                User(
                    username="inspector.elsewhere",
                    display_name="乙",
                    password_hash="-",
                    role="inspector",
                    org_unit_id=fire,
                    scope_code="410600",
                ),
            ]
        )
        session.flush()
        elsewhere = session.scalar(select(User.id).where(User.username == "inspector.elsewhere"))
        assert elsewhere is not None
        session.add(InspectorQualification(user_id=elsewhere, category="food_safety"))
    plan(db, ratios={"A": 0.05, "B": 0.2, "C": 0.6, "D": 1.0})
    unqualified, elsewhere = user_id(db, "inspector.unqualified"), user_id(db, "inspector.elsewhere")
    with db.sessions() as session:
        qualified = set(
            session.execute(select(InspectorQualification.user_id, InspectorQualification.category))
        )
        unit_of = dict(session.execute(select(User.id, User.org_unit_id)).all())
        tasks = list(session.scalars(select(InspectionTask)))
        assert len(tasks) > 50
        for t in tasks:
            pair = (t.first_inspector_id, t.second_inspector_id)
            assert pair[0] != pair[1]
            for inspector in pair:
                assert (inspector, t.category) in qualified
                assert unit_of[inspector] == t.org_unit_id
                assert inspector not in (unqualified, elsewhere)


def test_a_category_without_two_free_inspectors_refuses_the_whole_plan(db: Database) -> None:
    classify(db)
    with db.session() as session:
        session.execute(delete(InspectorQualification).where(InspectorQualification.category == "grain"))
        session.add(InspectorQualification(user_id=user_id(db, "inspector.grain.01"), category="grain"))
    with pytest.raises(ValidationFailed, match="category grain: dept-grain has 1 qualified inspector"):
        plan(db, ratios={"D": 1.0})
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InspectionPlan)) == 0


def test_a_planned_year_is_replaced_only_when_asked(db: Database) -> None:
    classify(db)
    first = plan(db)
    with pytest.raises(Conflict, match="planned already"):
        plan(db)
    again = plan(db, replace=True)
    assert again.tasks == first.tasks and again.visits == first.visits
    with pytest.raises(ValidationFailed, match=r"ratio of class D is 0\.5"):
        plan(db, replace=True, ratios={"D": 0.5})
