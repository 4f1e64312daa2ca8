"""Reporter feedback at closing: once per closing, shown on the page; not satisfied reopens the case."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from cityops.cases import feedback
from cityops.cases.models import Case
from cityops.core.db import Database
from tests.accounts.helpers import get_user, login, logout
from tests.cases.helpers import act, report, scope_of

LONG_AGO = datetime(2020, 1, 6, 8, 0, tzinfo=UTC)


def closed_case_of_the_citizen(client: TestClient, db: Database) -> dict[str, Any]:
    """A case the citizen reported, handled and closed by the village centre; its first deadline is long
    past, so a reopening's fresh deadline is told apart from it."""
    login(client, "citizen")
    case = report(client, db, scope_of(db, "village1.operator"), reporter_name=None, reporter_phone=None)
    logout(client)
    with db.session() as session:
        session.execute(update(Case).where(Case.id == case["id"]).values(deadline_at=LONG_AGO))
    login(client, "village1.operator")
    case = client.get(f"/api/cases/{case['id']}").json()
    for action, fields in [
        ("accept", {}),
        ("start", {}),
        ("resolve", {"result": "已调解"}),
        ("verify", {}),
        ("close", {}),
    ]:
        case = act(client, case, action, **fields)
    logout(client)
    return case


def test_not_satisfied_reopens_the_case_with_a_fresh_deadline(client: TestClient, db: Database) -> None:
    case = closed_case_of_the_citizen(client, db)
    login(client, "citizen")
    before = datetime.now(UTC)
    rated = client.post(f"/api/cases/{case['id']}/feedback", json={"rating": 1, "comment": "问题没有解决"})
    assert rated.status_code == 201, rated.text
    assert rated.json()["channel"] == "reporter"
    now = client.get(f"/api/cases/{case['id']}").json()
    assert now["status"] == "reopened" and now["closed_at"] is None
    assert datetime.fromisoformat(now["deadline_at"]) > before > LONG_AGO
    timeline = client.get(f"/api/cases/{case['id']}/timeline").json()
    assert [e["action"] for e in timeline[-2:]] == ["feedback", "reopen"]
    assert timeline[-2]["data"]["rating"] == 1 and timeline[-2]["comment"] == "问题没有解决"
    assert timeline[-1]["actor_id"] is None
    assert datetime.fromisoformat(timeline[-1]["data"]["deadline_at"]) == datetime.fromisoformat(
        now["deadline_at"]
    )
    # Not closed any more: nothing to rate until it is closed again.
    again = client.post(f"/api/cases/{case['id']}/feedback", json={"rating": 5})
    assert again.status_code == 409 and again.json()["field"] == "rating"


def test_satisfied_keeps_the_case_closed_and_is_given_once(client: TestClient, db: Database) -> None:
    case = closed_case_of_the_citizen(client, db)
    login(client, "citizen")
    assert client.post(f"/api/cases/{case['id']}/feedback", json={"rating": 5}).status_code == 201
    assert client.get(f"/api/cases/{case['id']}").json()["status"] == "closed"
    twice = client.post(f"/api/cases/{case['id']}/feedback", json={"rating": 1})
    assert twice.status_code == 409 and "already" in twice.json()["message"]
    assert client.get(f"/api/cases/{case['id']}").json()["status"] == "closed"
    assert [f["rating"] for f in client.get(f"/api/cases/{case['id']}/feedback").json()] == [5]


def test_a_reopened_and_closed_again_case_is_rated_again(client: TestClient, db: Database) -> None:
    case = closed_case_of_the_citizen(client, db)
    login(client, "citizen")
    client.post(f"/api/cases/{case['id']}/feedback", json={"rating": 2})
    logout(client)
    login(client, "village1.operator")
    case = client.get(f"/api/cases/{case['id']}").json()
    for action, fields in [
        ("accept", {}),
        ("start", {}),
        ("resolve", {"result": "再次上门处理"}),
        ("verify", {}),
        ("close", {}),
    ]:
        case = act(client, case, action, **fields)
    # A centre operator records what the reporter said on the call-back.
    phoned = client.post(f"/api/cases/{case['id']}/feedback", json={"rating": 4, "comment": "电话回访满意"})
    assert phoned.status_code == 201 and phoned.json()["channel"] == "phone"
    ratings = client.get(f"/api/cases/{case['id']}/feedback").json()
    assert [f["rating"] for f in ratings] == [2, 4]
    page = client.get(f"/cases/{case['id']}")
    assert "电话回访满意" in page.text and "4/5" in page.text and "不满意" in page.text


def test_only_the_reporter_or_a_centre_may_rate(client: TestClient, db: Database) -> None:
    case = closed_case_of_the_citizen(client, db)
    login(client, "village1.grid")  # sees the case, but is neither its reporter nor a centre operator
    refused = client.post(f"/api/cases/{case['id']}/feedback", json={"rating": 1})
    assert refused.status_code == 403
    logout(client)
    login(client, "village2.operator")
    assert client.post(f"/api/cases/{case['id']}/feedback", json={"rating": 1}).status_code == 404
    logout(client)
    login(client, "citizen")
    bad = client.post(f"/api/cases/{case['id']}/feedback", json={"rating": 9})
    assert bad.status_code == 422 and "rating" in bad.text
    missing = client.post(f"/api/cases/{case['id']}/feedback", json={"comment": "忘了打分"})
    assert missing.status_code == 422 and missing.json()["field"] == "rating"


def test_the_page_form_rates_and_the_satisfaction_figure_counts_it(client: TestClient, db: Database) -> None:
    case = closed_case_of_the_citizen(client, db)
    login(client, "citizen")
    page = client.get(f"/cases/{case['id']}")
    assert 'action="/cases/{}/feedback"'.format(case["id"]) in page.text
    sent = client.post(
        f"/cases/{case['id']}/feedback", data={"rating": "3", "comment": "还行"}, follow_redirects=False
    )
    assert sent.status_code == 303
    page = client.get(f"/cases/{case['id']}")
    assert "3/5" in page.text and "基本满意" in page.text
    assert 'action="/cases/{}/feedback"'.format(case["id"]) not in page.text
    operator = get_user(db, "village1.operator")
    with db.sessions() as session:
        figure = feedback.satisfaction(session, viewer=operator)
    assert figure.count == 1 and figure.average == 3.0


def test_the_satisfaction_figure_averages_the_ratings_and_drills_down(
    client: TestClient, db: Database
) -> None:
    first = closed_case_of_the_citizen(client, db)
    second = closed_case_of_the_citizen(client, db)
    login(client, "citizen")
    client.post(f"/api/cases/{first['id']}/feedback", json={"rating": 5})
    client.post(f"/api/cases/{second['id']}/feedback", json={"rating": 2})
    logout(client)
    login(client, "village1.operator")
    figures = {f["name"]: f for f in client.get("/api/cases/figures").json()["figures"]}
    assert figures["rated"]["value"] == 2 and figures["satisfaction"]["value"] == 3.5
    rated = client.get(figures["satisfaction"]["cases_url"]).json()
    assert {c["id"] for c in rated["items"]} == {first["id"], second["id"]}
    page = client.get("/cases/figures")
    assert "满意度" in page.text and "3.50" in page.text
