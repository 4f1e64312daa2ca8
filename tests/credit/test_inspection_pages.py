"""Inspection pages and API as their users meet them: the inspector view's pending items from several
departments, the phone form of a joint visit, the calendar, the plans page, the published results, and the
CLI that plans a year."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.core.auth.models import User
from cityops.core.db import Database
from cityops.credit import inspections
from cityops.credit.models import Entity, InspectionTask, JointVisit, VisitInspector
from tests.accounts.helpers import login, logout
from tests.accounts.test_cli import env_for, run
from tests.credit.test_inspections import YEAR, classify, plan
from tests.credit.test_joint_visits import many_departments


def planned_visit(db: Database) -> tuple[str, inspections.VisitRead, str]:
    """The entity with tasks of several departments, its joint visit, and the username of a team member."""
    classify(db)
    entity_id = many_departments(db)
    plan(db, ratios={"D": 1.0})
    with db.sessions() as session:
        visit_id = session.scalar(select(JointVisit.id).where(JointVisit.entity_id == entity_id))
        assert visit_id is not None
        visit = inspections.get_visit(session, viewer=None, visit_id=visit_id)
        member = session.scalar(
            select(User.username)
            .join(VisitInspector, VisitInspector.user_id == User.id)
            .where(VisitInspector.visit_id == visit_id)
            .order_by(User.id)
        )
        code = session.scalar(select(Entity.code).where(Entity.id == entity_id))
        assert member is not None and code is not None
    return code, visit, member


def test_the_inspector_view_lists_pending_items_from_several_departments(
    client: TestClient, db: Database
) -> None:
    code, _visit, _member = planned_visit(db)
    login(client, "inspector")
    page = client.get(f"/credit/entities/{code}/inspect")
    assert page.status_code == 200, page.text
    assert f'hx-get="/credit/entities/{code}/pending-items"' in page.text
    fragment = client.get(f"/credit/entities/{code}/pending-items")
    assert fragment.status_code == 200, fragment.text
    for department in ("dept-market", "dept-hrss", "dept-fire", "dept-emergency"):
        assert f'data-department="{department}"' in fragment.text
    assert "从业人员健康证明" in fragment.text and "疏散通道、安全出口畅通" in fragment.text
    api = client.get(f"/api/credit/inspections/entities/{code}/pending")
    assert {p["department_code"] for p in api.json()} >= {"dept-market", "dept-fire", "dept-emergency"}
    logout(client)
    login(client, "village1.grid")  # no inspections.manage
    assert client.get(f"/credit/entities/{code}/pending-items").status_code == 403


def test_the_phone_form_refuses_partial_results_then_records_the_whole_visit(
    client: TestClient, db: Database
) -> None:
    code, visit, member = planned_visit(db)
    login(client, member)
    form = client.get(f"/credit/inspections/visits/{visit.id}")
    assert form.status_code == 200
    assert 'name="viewport"' in form.text
    for task in visit.tasks:
        assert f'data-task="{task.id}"' in form.text
    values = {f"r.{t.id}.{i.code}": "compliant" for t in visit.tasks for i in t.items}
    fire = next(t for t in visit.tasks if t.category == "fire_safety")
    left_out = f"{fire.id}.{fire.items[0].code}"
    partial = {k: v for k, v in values.items() if k != f"r.{left_out}"}
    refused = client.post(f"/credit/inspections/visits/{visit.id}", data=partial)
    assert refused.status_code == 422
    assert fire.items[0].name in refused.text
    assert f'class="item missing" data-item="{left_out}"' in refused.text
    assert 'value="compliant" checked' in refused.text  # what was chosen is kept
    values[f"r.{fire.id}.{fire.items[1].code}"] = "non_compliant"
    values[f"n.{fire.id}.{fire.items[1].code}"] = "灭火器过期"
    done = client.post(f"/credit/inspections/visits/{visit.id}", data=values)
    assert done.status_code == 200, done.text
    assert 'data-status="done"' in done.text and "灭火器过期" in done.text
    read = client.get(f"/api/credit/inspections/visits/{visit.id}").json()
    assert read["status"] == "done"
    assert {t["result"] for t in read["tasks"]} == {"compliant", "non_compliant"}
    again = client.post(f"/api/credit/inspections/visits/{visit.id}/results", json={"findings": []})
    assert again.status_code == 409
    assert client.get(f"/credit/entities/{code}/pending-items").text.count("data-department") == 0
    logout(client)
    # Published for everyone, without inspectors or the risk class.
    public = client.get("/credit/inspections/results", params={"year": YEAR})
    assert public.status_code == 200
    assert visit.entity_name in public.text and 'data-result="non_compliant"' in public.text
    assert all(m.display_name not in public.text for m in visit.team)
    api = client.get("/api/credit/inspections/results", params={"year": YEAR}).json()
    assert api["total"] == len(visit.tasks)
    assert set(api["items"][0]) == {
        "year",
        "category",
        "category_name",
        "department",
        "entity_code",
        "entity_name",
        "result",
        "recorded_on",
    }


def test_the_api_refuses_partial_results_naming_them(client: TestClient, db: Database) -> None:
    _code, visit, member = planned_visit(db)
    login(client, member)
    findings = [
        {"task_id": t.id, "item": i.code, "result": "compliant"} for t in visit.tasks for i in t.items
    ]
    refused = client.post(
        f"/api/credit/inspections/visits/{visit.id}/results", json={"findings": findings[1:]}
    )
    assert refused.status_code == 422
    body = refused.json()
    assert body["field"] == "findings"
    assert body["detail"]["missing"] == [
        {"task_id": findings[0]["task_id"], "category": visit.tasks[0].category, "item": findings[0]["item"]}
    ]
    logout(client)
    login(client, "village1.grid")
    assert client.get(f"/api/credit/inspections/visits/{visit.id}").status_code == 404


def test_the_calendar_shows_an_inspectors_week_in_route_order(client: TestClient, db: Database) -> None:
    _code, visit, member = planned_visit(db)
    assert visit.scheduled_on is not None
    login(client, member)
    page = client.get("/credit/inspections/calendar", params={"week": visit.scheduled_on.isoformat()})
    assert page.status_code == 200
    assert f'data-visit="{visit.id}"' in page.text
    # 2026-10-01 is National Day: that week's Thursday is shown as no working day.
    holiday = client.get("/credit/inspections/calendar", params={"week": "2026-10-01"})
    assert 'data-day="2026-10-01" data-working="no"' in holiday.text
    mine = client.get("/api/credit/inspections/visits", params={"year": YEAR}).json()
    assert visit.id in {v["id"] for v in mine}
    assert [v["scheduled_on"] for v in mine] == sorted(v["scheduled_on"] for v in mine)


def test_the_plans_page_plans_a_year_and_shows_its_figures(client: TestClient, db: Database) -> None:
    classify(db)
    login(client, "inspector")
    empty = client.get("/credit/inspections", params={"year": 2025})
    assert empty.status_code == 200
    made = client.post("/credit/inspections/plan", data={"year": "2025", "seed": "5"}, follow_redirects=False)
    assert made.status_code == 303
    page = client.get("/credit/inspections", params={"year": 2025})
    figures = client.get("/api/credit/inspections/figures", params={"year": 2025}).json()
    assert figures["tasks"] > figures["visits"] > 0
    assert f'<td data-figure="visits_saved"><strong>{figures["visits_saved"]}</strong></td>' in page.text
    assert page.text.count("data-category=") == 24
    twice = client.post("/credit/inspections/plan", data={"year": "2025"})
    assert twice.status_code == 409 and "planned already" in twice.text
    plans = client.get("/api/credit/inspections/plans", params={"year": 2025}).json()
    assert len(plans) == 24 and all(p["seed"] >= 0 for p in plans)
    logout(client)
    login(client, "village1.grid")
    assert client.get("/credit/inspections").status_code == 403
    assert client.post("/api/credit/inspections/plans", json={"year": 2027}).status_code == 403


def test_an_inspector_declares_a_conflict_and_is_not_drawn_for_it(client: TestClient, db: Database) -> None:
    classify(db)
    with db.session() as session:
        entity = session.scalars(
            select(Entity).where(Entity.industry_code == "62", Entity.status == "active").order_by(Entity.id)
        ).first()
        assert entity is not None
        entity.risk_class = "D"
        code = entity.code
    login(client, "inspector")
    declared = client.post(
        "/api/credit/inspections/conflicts", json={"entity_code": code, "relation": "relative"}
    )
    assert declared.status_code == 201, declared.text
    twice = client.post(
        "/api/credit/inspections/conflicts", json={"entity_code": code, "relation": "relative"}
    )
    assert twice.status_code == 409
    bad = client.post("/api/credit/inspections/conflicts", json={"entity_code": code, "relation": "cousin"})
    assert bad.status_code == 422 and bad.json()["field"] == "relation"
    made = client.post("/api/credit/inspections/plans", json={"year": YEAR, "seed": 3, "ratios": {"D": 1.0}})
    assert made.status_code == 201, made.text
    me = declared.json()["user_id"]
    with db.sessions() as session:
        tasks = list(session.scalars(select(InspectionTask).where(InspectionTask.entity_id == entity.id)))
    assert tasks and all(me not in (t.first_inspector_id, t.second_inspector_id) for t in tasks)


def test_the_cli_plans_a_year_and_prints_its_figures(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    db = Database(env["CITYOPS_DATABASE_URL"])
    classify(db)
    out = run(
        env,
        "credit",
        "inspections",
        "plan",
        "--year",
        "2026",
        "--seed",
        "11",
        "--json",
        "--start",
        "2026-03-02",
    )
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    with db.sessions() as session:
        visits = list(session.scalars(select(JointVisit)))
        tasks = session.scalar(select(func.count()).select_from(InspectionTask))
    db.dispose()
    assert figures["visits"] == len(visits) and figures["visits_saved"] == tasks - len(visits) > 0
    assert min(v.scheduled_on for v in visits if v.scheduled_on) >= date(2026, 3, 2)
    text = run(env, "credit", "inspections", "figures", "--year", "2026")
    assert f"visits saved against separate inspections: {figures['visits_saved']}" in text.stdout
    again = run(env, "credit", "inspections", "plan", "--year", "2026")
    assert again.returncode == 2 and "planned already" in again.stderr
    bad = run(env, "credit", "inspections", "plan", "--year", "2026", "--replace", "--ratio", "A=0.5")
    assert bad.returncode == 2 and "ratio of class A is 0.5, outside its bounds 0-0.05" in bad.stderr
    assert "Traceback" not in again.stderr + bad.stderr
