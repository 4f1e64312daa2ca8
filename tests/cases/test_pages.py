"""The case pages: the inbox, the case page with its timeline, and the action form."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.cases.helpers import report, scope_of


def test_the_inbox_lists_cases_in_scope_in_chinese(client: TestClient, db: Database) -> None:
    village1, village2 = scope_of(db, "village1.operator"), scope_of(db, "village2.operator")
    login(client, "village2.operator")
    foreign = report(client, db, village2, title="乙村页面纠纷")
    logout(client)
    login(client, "village1.operator")
    own = report(client, db, village1, title="甲村页面纠纷")
    page = client.get("/cases", params={"q": "村页面纠纷"})
    assert page.status_code == 200
    assert own["number"] in page.text and "甲村页面纠纷" in page.text
    assert foreign["number"] not in page.text
    assert "已上报" in page.text and "王**" in page.text and "13812345678" not in page.text
    assert client.get(f"/cases/{foreign['id']}").status_code == 404


def test_the_case_page_shows_the_timeline_and_acts(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    case = report(client, db, scope_of(db, "village1.operator"))
    page = client.get(f"/cases/{case['id']}")
    assert page.status_code == 200 and case["number"] in page.text
    assert "13812345678" in page.text  # a centre operator may see the reporter (audited)
    assert 'value="accept"' in page.text
    moved = client.post(f"/cases/{case['id']}/act", data={"action": "accept", "version": "1",
                                                           "comment": "页面受理"}, follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == f"/cases/{case['id']}"
    page = client.get(f"/cases/{case['id']}")
    assert "已受理" in page.text and "页面受理" in page.text
    stale = client.post(f"/cases/{case['id']}/act", data={"action": "dispatch", "version": "1"})
    assert stale.status_code == 409 and "stale version" in stale.text


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/cases", follow_redirects=False)
    assert response.status_code in (303, 307) and "/login" in response.headers["location"]
