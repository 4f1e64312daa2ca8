"""The inbox: the user's unit, the cases assigned to them, open or all, overdue, deadline order."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from cityops.cases import repository
from cityops.cases.models import OPEN_CONDITION, Case
from cityops.cases.workflow import FINAL_STATES
from cityops.core.db import Database, utcnow
from tests.accounts.helpers import login, logout
from tests.cases.helpers import act, report, scope_of


def numbers(client: TestClient, **params: str) -> list[str]:
    response = client.get("/api/cases", params=params)
    assert response.status_code == 200, response.text
    return [c["number"] for c in response.json()["items"]]


def test_boxes_open_only_overdue_and_deadline_order(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    village = scope_of(db, "village1.operator")
    first = report(client, db, village, title="收件箱甲")
    second = report(client, db, village, title="收件箱乙")
    third = report(client, db, village, title="收件箱丙")
    started = act(client, act(client, first, "accept"), "start")  # the operator takes it on
    assert numbers(client, box="mine") == [first["number"]]
    assert set(numbers(client, box="unit")) >= {first["number"], second["number"], third["number"]}
    rejected = client.post(f"/api/cases/{third['id']}/actions/reject",
                           json={"version": third["version"], "reason": "不属于受理范围"})
    assert rejected.status_code == 200, rejected.text
    assert third["number"] in numbers(client, box="unit")
    assert third["number"] not in numbers(client, box="unit", open_only="true")
    # The second case's deadline passed; the first's is the soonest of the rest.
    with db.session() as session:
        session.execute(update(Case).where(Case.id == second["id"])
                        .values(deadline_at=utcnow() - timedelta(hours=1)))
        session.execute(update(Case).where(Case.id == started["id"])
                        .values(deadline_at=utcnow() + timedelta(hours=1)))
    assert numbers(client, box="unit", overdue="true") == [second["number"]]
    ordered = numbers(client, box="unit", open_only="true", sort="deadline")
    assert ordered[:2] == [second["number"], first["number"]]
    bad = client.get("/api/cases", params={"box": "everyone"})
    assert bad.status_code == 422 and "box" in bad.text


def test_the_inbox_page_shows_countdowns_in_chinese(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    case = report(client, db, scope_of(db, "village1.operator"), title="倒计时案件")
    page = client.get("/cases")
    assert page.status_code == 200 and case["number"] in page.text
    assert "本单位案件" in page.text and "个工作小时" in page.text
    with db.session() as session:
        session.execute(update(Case).where(Case.id == case["id"])
                        .values(deadline_at=utcnow() - timedelta(days=3)))
    overdue = client.get("/cases", params={"overdue": "1"})
    assert case["number"] in overdue.text and "已超期" in overdue.text
    assert client.get("/cases", params={"sort": "sideways"}).status_code == 422


def test_long_lists_count_up_to_a_cap(client: TestClient, db: Database,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A city-wide list does not count a million rows for its header: past the cap it says 'N+'."""
    monkeypatch.setattr(repository, "COUNT_CAP", 2)
    login(client, "village1.operator")
    for title in ("计数甲", "计数乙", "计数丙"):
        report(client, db, scope_of(db, "village1.operator"), title=title)
    body = client.get("/api/cases", params={"box": "scope"}).json()
    assert body["total"] == 3 and body["total_is_lower_bound"]
    assert len(body["items"]) > 2  # the page itself is not capped
    assert "2+" in client.get("/cases", params={"box": "scope", "open": "0"}).text


def test_the_open_condition_of_the_deadline_index_matches_the_workflow() -> None:
    assert set(re.findall(r"'(\w+)'", OPEN_CONDITION)) == set(FINAL_STATES)


def test_a_case_routed_to_my_unit_from_elsewhere_is_in_my_lists(client: TestClient, db: Database) -> None:
    """A village scope lists its division's cases, its unit's cases from outside it, and its reports."""
    village1, village2 = scope_of(db, "village1.operator"), scope_of(db, "village2.operator")
    login(client, "village2.operator")
    other = report(client, db, village2, title="转来的案件")
    moved = client.post(f"/api/cases/{other['id']}/actions/reroute", json={
        "version": other["version"], "org_unit_code": f"centre-{village1}", "reason": "属甲村管辖"})
    assert moved.status_code == 200, moved.text
    logout(client)
    login(client, "village1.operator")
    own = report(client, db, village1, title="本村案件")
    listed = numbers(client, box="scope")
    assert own["number"] in listed and other["number"] in listed
