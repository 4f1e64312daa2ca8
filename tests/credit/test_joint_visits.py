"""Joint inspection (进一次门, 查多项事): one visit per entity covering every department's tasks, recorded
in one go, the calendar on working days within capacity, the route, and the figures."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from cityops.core.auth.models import OrgUnit, User
from cityops.core.db import Database
from cityops.core.errors import Conflict, Forbidden, ValidationFailed
from cityops.credit import inspections, joint_visits
from cityops.credit.models import (
    Entity,
    EntityTag,
    InspectionItemResult,
    InspectionTask,
    JointVisit,
    VisitInspector,
)
from tests.credit.test_inspections import YEAR, classify, plan


def many_departments(db: Database) -> int:
    """An active restaurant of class D tagged as a fire-safety key unit and a hazardous-chemicals user: with
    D drawn at 100 % it gets tasks of the market regulator, human resources, fire and emergency."""
    with db.session() as session:
        entity = session.scalars(
            select(Entity).where(Entity.status == "active", Entity.kind == "enterprise").order_by(Entity.id)
        ).first()
        assert entity is not None
        entity.industry_code, entity.industry_section, entity.risk_class = "62", "H", "D"
        session.add_all(
            [
                EntityTag(entity_id=entity.id, tag="消防重点单位", source="manual"),
                EntityTag(entity_id=entity.id, tag="危险化学品", source="manual"),
            ]
        )
        return entity.id


def findings(visit: inspections.VisitRead) -> list[inspections.Finding]:
    return [
        inspections.Finding(task_id=t.id, item=i.code, result="compliant")
        for t in visit.tasks
        for i in t.items
    ]


@pytest.fixture
def planned(db: Database) -> tuple[int, inspections.VisitRead]:
    classify(db)
    entity_id = many_departments(db)
    plan(db, ratios={"D": 1.0})
    with db.sessions() as session:
        visit_id = session.scalar(select(JointVisit.id).where(JointVisit.entity_id == entity_id))
        assert visit_id is not None
        return entity_id, inspections.get_visit(session, viewer=None, visit_id=visit_id)


def test_a_joint_visit_covers_every_departments_items_in_one_record(
    db: Database, planned: tuple[int, inspections.VisitRead]
) -> None:
    entity_id, visit = planned
    departments = {t.department_code for t in visit.tasks}
    assert {"dept-market", "dept-hrss", "dept-fire", "dept-emergency"} <= departments
    # The team covers every category: each task's two drawn inspectors are on it.
    with db.sessions() as session:
        team = set(session.scalars(select(VisitInspector.user_id).where(VisitInspector.visit_id == visit.id)))
        for task in session.scalars(select(InspectionTask).where(InspectionTask.entity_id == entity_id)):
            assert task.visit_id == visit.id
            assert {task.first_inspector_id, task.second_inspector_id} <= team
        member = session.get(User, min(team))
        assert member is not None
        session.expunge(member)
    items = sum(len(t.items) for t in visit.tasks)
    sent = findings(visit)
    sent[0] = inspections.Finding(
        task_id=sent[0].task_id, item=sent[0].item, result="non_compliant", note="健康证过期"
    )
    with db.session() as session:
        done = inspections.record_visit(session, visit_id=visit.id, findings=sent, actor=member)
    assert done.status == "done"
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InspectionItemResult)) == items
        results = dict(
            session.execute(
                select(InspectionTask.id, InspectionTask.result).where(InspectionTask.visit_id == visit.id)
            ).all()
        )
        assert results[sent[0].task_id] == "non_compliant"
        assert Counter(results.values())["compliant"] == len(visit.tasks) - 1
        assert inspections.pending_items(session, entity_id) == []
        published = inspections.published_results(session, year=YEAR)
        assert {r.category for r in published.items} == {t.category for t in visit.tasks}
    with db.session() as session, pytest.raises(Conflict, match="recorded already"):
        inspections.record_visit(session, visit_id=visit.id, findings=sent, actor=member)


def test_partial_results_are_refused_naming_the_missing_items(
    db: Database, planned: tuple[int, inspections.VisitRead]
) -> None:
    _entity_id, visit = planned
    sent = findings(visit)
    fire = next(t for t in visit.tasks if t.category == "fire_safety")
    left_out = [f for f in sent if f.task_id == fire.id][:2]
    with db.session() as session, pytest.raises(ValidationFailed) as refused:
        inspections.record_visit(
            session, visit_id=visit.id, actor=None, findings=[f for f in sent if f not in left_out]
        )
    assert "2 check item(s) have no result" in refused.value.message
    for finding in left_out:
        name = next(i.name for i in fire.items if i.code == finding.item)
        assert f"消防安全: {name}" in refused.value.message
    assert refused.value.detail["missing"] == [
        {"task_id": fire.id, "category": "fire_safety", "item": f.item} for f in left_out
    ]
    with db.session() as session, pytest.raises(ValidationFailed, match="say what was found"):
        bad = [inspections.Finding(task_id=f.task_id, item=f.item, result="non_compliant") for f in sent]
        inspections.record_visit(session, visit_id=visit.id, actor=None, findings=bad)
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InspectionItemResult)) == 0
        assert session.scalar(select(JointVisit.status).where(JointVisit.id == visit.id)) == "scheduled"


def test_only_the_team_records_the_visit(db: Database, planned: tuple[int, inspections.VisitRead]) -> None:
    _entity_id, visit = planned
    with db.sessions() as session:
        outsider = session.scalars(
            select(User)
            .where(User.role == "inspector", User.id.not_in([m.id for m in visit.team]))
            .order_by(User.id)
        ).first()
        assert outsider is not None
        session.expunge(outsider)
    with db.session() as session, pytest.raises(Forbidden, match="team"):
        inspections.record_visit(session, visit_id=visit.id, findings=findings(visit), actor=outsider)


def test_pending_items_list_every_departments_tasks(
    db: Database, planned: tuple[int, inspections.VisitRead]
) -> None:
    entity_id, visit = planned
    with db.sessions() as session:
        pending = inspections.pending_items(session, entity_id)
    assert {p.department_code for p in pending} >= {"dept-market", "dept-hrss", "dept-fire", "dept-emergency"}
    assert {p.task_id for p in pending} == {t.id for t in visit.tasks}
    food = next(p for p in pending if p.category == "food_safety")
    assert [i.code for i in food.items] == ["licence", "health_certificates", "purchase_records", "storage"]
    assert all(p.visit_id == visit.id for p in pending)


def test_visits_saved_is_tasks_minus_visits(db: Database) -> None:
    classify(db)
    found = plan(db, ratios={"A": 0.05, "B": 0.2, "C": 0.6, "D": 1.0})
    with db.sessions() as session:
        tasks = session.execute(select(InspectionTask.entity_id, InspectionTask.category)).all()
    entities = {entity_id for entity_id, _category in tasks}
    assert found.tasks == len(tasks)
    assert found.visits == len(entities)
    assert found.visits_saved == len(tasks) - len(entities) > 0
    assert found.multi_department_visits > 0
    assert found.separate_visits_per_inspected_entity == round(len(tasks) / len(entities), 3)
    by_class = {row.risk_class: row for row in found.by_class}
    assert by_class["D"].coverage > by_class["A"].coverage


def test_the_calendar_skips_holidays_and_keeps_capacity(db: Database) -> None:
    # From the Mid-Autumn festival through National Day 2026: 25-27 September and 1-7 October are holidays,
    # Saturday 10 October is a working day (调休).
    days = joint_visits.working_days(date(2026, 9, 24), date(2026, 10, 12))
    assert date(2026, 10, 1) not in days and date(2026, 9, 25) not in days
    assert date(2026, 10, 10) in days and date(2026, 10, 11) not in days
    classify(db)
    with db.session() as session:
        session.execute(update(Entity).values(risk_class="D"))
    found = plan(db, ratios={"D": 0.7}, start=date(2026, 9, 24), capacity=1)
    with db.sessions() as session:
        scheduled = session.execute(
            select(VisitInspector.user_id, JointVisit.scheduled_on)
            .join(JointVisit)
            .where(JointVisit.scheduled_on.is_not(None))
        ).all()
    assert scheduled
    year_days = set(joint_visits.working_days(date(2026, 9, 24), date(2026, 12, 31)))
    assert {d for _u, d in scheduled} <= year_days
    holidays = {date(2026, 9, 25), date(2026, 9, 26), date(2026, 9, 27)} | {
        date(2026, 10, d) for d in range(1, 8)
    }
    assert not holidays & {d for _u, d in scheduled}
    assert min(d for _u, d in scheduled) == date(2026, 9, 24)
    per_day = Counter(scheduled)
    assert max(per_day.values()) == 1  # capacity 1: nobody has two visits on a day
    assert found.unscheduled == found.visits - len(_scheduled_visits(db))


def _scheduled_visits(db: Database) -> set[int]:
    with db.sessions() as session:
        return set(session.scalars(select(JointVisit.id).where(JointVisit.scheduled_on.is_not(None))))


def test_the_route_goes_township_by_township_grid_by_grid_to_the_nearest_neighbour() -> None:
    def stop(entity_id: int, township: str, grid: str, lon: float | None) -> joint_visits.Stop:
        return joint_visits.Stop(entity_id, township, grid, lon, 35.7 if lon is not None else None)

    stops = [
        stop(1, "410611100", "g2", 114.30),
        stop(2, "410611100", "g1", 114.10),
        stop(3, "410611100", "g1", 114.14),
        stop(4, "410611001", "g9", 114.90),  # the township first in code order
        stop(5, "410611100", "g1", None),  # no coordinates: last of its township
        stop(6, "410611100", "g1", 114.12),
        stop(7, "410611100", "g2", 114.20),
    ]
    order = [stops[i].entity_id for i in joint_visits.route_order(stops)]
    # Grid g1 (westernmost centre) first, westernmost stop first; then g2 from its stop nearest the last.
    assert order == [4, 2, 6, 3, 7, 1, 5]


def test_a_team_meets_on_a_day_every_member_has_room() -> None:
    # Visit 1 shares inspector 2 with visit 0 (day 0 full for them at capacity 1): day 1. Visit 2 may not
    # start before day 1 (the sweep) and shares inspector 3 with visit 1: no day left.
    assert joint_visits.schedule([{1, 2}, {2, 3}, {1, 3}], days=2, capacity=1) == [0, 1, None]
    # The sweep spreads visits over the year instead of filling the first days.
    assert joint_visits.schedule([{1}] * 4, days=8, capacity=4) == [0, 2, 4, 6]


def test_the_schedule_skips_full_days_like_a_plain_search() -> None:
    """The pointer-jumping schedule gives the days a plain day-by-day search gives."""
    import random

    def plain(teams: list[set[int]], days: int, capacity: int) -> list[int | None]:
        load: Counter[tuple[int, int]] = Counter()
        out: list[int | None] = []
        for i, team in enumerate(teams):
            day = i * days // len(teams)
            while day < days and any(load[(u, day)] >= capacity for u in team):
                day += 1
            if day < days:
                load.update((u, day) for u in team)
            out.append(day if day < days else None)
        return out

    rng = random.Random(4)
    for _ in range(30):
        teams = [set(rng.sample(range(12), rng.randint(1, 4))) for _ in range(rng.randint(1, 120))]
        days, capacity = rng.randint(1, 25), rng.randint(1, 3)
        assert joint_visits.schedule(teams, days, capacity) == plain(teams, days, capacity)


def test_the_plan_uses_the_departments_it_names(db: Database) -> None:
    classify(db)
    plan(db, ratios={"D": 1.0})
    with db.sessions() as session:
        used = set(
            session.scalars(
                select(OrgUnit.code).join(InspectionTask, InspectionTask.org_unit_id == OrgUnit.id)
            )
        )
    registry = inspections.load_categories()
    assert used <= {c.department for c in registry.categories}
    assert len(used) >= 8


@pytest.mark.postgres
def test_a_year_planned_and_recorded_on_postgres(pg_url: str, tmp_path: Path) -> None:
    from cityops import all_models
    from cityops.core.db import Base
    from cityops.core.seeding import seed

    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        seed(db, scale="small", seed=7, quiet=True, files_root=tmp_path / "files")
        classify(db)
        entity_id = many_departments(db)
        found = plan(db, ratios={"D": 1.0})
        assert found.visits_saved == found.tasks - found.visits > 0
        with db.sessions() as session:
            visit_id = session.scalar(select(JointVisit.id).where(JointVisit.entity_id == entity_id))
            assert visit_id is not None
            visit = inspections.get_visit(session, viewer=None, visit_id=visit_id)
        with db.session() as session:
            inspections.record_visit(session, visit_id=visit.id, findings=findings(visit), actor=None)
        with db.sessions() as session:
            assert inspections.pending_items(session, entity_id) == []
            assert inspections.figures(session, year=YEAR).done == 1
            plan_id = session.scalar(select(func.min(InspectionTask.plan_id)))
            assert plan_id is not None
            same, ids = inspections.repeat_draw(session, plan_id=plan_id, actor=None)
            assert same and ids
        with pytest.raises(Conflict, match="recorded already"):
            plan(db, replace=True)
    finally:
        db.dispose()
