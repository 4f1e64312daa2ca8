"""The dispatch console: the queue of cases waiting for a centre, with inline moves."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityops.accounts.demo import DEMO_PASSWORD
from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.cases.helpers import act, report, scope_of
from tests.web.test_browser import assets_built, browser  # noqa: F401 - fixtures used below


def _row(page: str, number: str) -> str:
    """The console's table row of a case (empty if it is not listed)."""
    found = re.search(rf'<tr id="case-\d+" data-case="{re.escape(number)}".*?</tr>', page, re.S)
    return found.group(0) if found else ""


def test_the_console_lists_the_village_operators_new_cases_only(client: TestClient, db: Database) -> None:
    village1, village2 = scope_of(db, "village1.operator"), scope_of(db, "village2.operator")
    login(client, "village2.operator")
    foreign = report(client, db, village2, title="乙村待派纠纷")
    logout(client)
    login(client, "village1.operator")
    own = report(client, db, village1, title="甲村待派纠纷")
    page = client.get("/cases/dispatch")
    assert page.status_code == 200
    assert "派遣台" in page.text  # the page and its nav entry, in Chinese
    row = _row(page.text, own["number"])
    assert "甲村待派纠纷" in row and "已上报" in row
    assert 'data-action="accept"' in row and 'data-action="reject"' in row and 'data-action="escalate"' in row
    assert "工作小时" in row  # the working-time countdown
    assert foreign["number"] not in page.text and "乙村待派纠纷" not in page.text
    assert 'data-count="reported"' in page.text
    # The map gets the queued case as a marker.
    assert f'"number": "{own["number"]}"' in page.text or f'"number":"{own["number"]}"' in page.text


def test_dispatching_from_the_console_moves_the_case_and_a_stale_version_shows_why(
    client: TestClient, db: Database
) -> None:
    login(client, "village1.operator")
    case = report(client, db, scope_of(db, "village1.operator"), title="控制台派遣纠纷")
    accepted = client.post(
        f"/cases/dispatch/{case['id']}/act",
        data={"action": "accept", "version": str(case["version"])},
        follow_redirects=False,
    )
    assert accepted.status_code == 303 and accepted.headers["location"].startswith("/cases/dispatch")
    page = client.get("/cases/dispatch").text
    row = _row(page, case["number"])
    assert "已受理" in row and 'data-action="dispatch"' in row and 'data-action="accept"' not in row
    assert 'value="dept-housing"' in row  # a department it may go to
    moved = client.post(
        f"/cases/dispatch/{case['id']}/act",
        data={"action": "dispatch", "version": str(case["version"] + 1), "org_unit_code": "dept-housing"},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    now = client.get(f"/api/cases/{case['id']}").json()
    assert now["status"] == "dispatched" and now["org_unit"]["code"] == "dept-housing"
    assert case["number"] not in client.get("/cases/dispatch").text  # no longer waiting

    # Someone else moved the case meanwhile: the console says so instead of failing.
    other = report(client, db, scope_of(db, "village1.operator"), title="控制台过期纠纷")
    act(client, other, "accept")
    stale = client.post(
        f"/cases/dispatch/{other['id']}/act",
        data={"action": "reject", "version": str(other["version"]), "reason": "不属实"},
    )
    assert stale.status_code == 409
    assert "stale version" in stale.text and other["number"] in stale.text
    assert "Traceback" not in stale.text and 'role="alert"' in stale.text
    assert client.get(f"/api/cases/{other['id']}").json()["status"] == "accepted"


def test_cases_wait_for_the_centre_of_their_level(client: TestClient, db: Database) -> None:
    village1 = scope_of(db, "village1.operator")
    login(client, "village1.operator")
    # A street report is handled at the township; its category belongs to a department.
    street = report(
        client, db, village1, type_code="urban", category="garbage", title="街面垃圾待派", fields={}
    )
    escalated = act(
        client, report(client, db, village1, title="上报乡镇的纠纷"), "escalate", reason="村级无法调解"
    )
    console = client.get("/cases/dispatch").text
    assert street["number"] not in console and escalated["number"] not in console
    logout(client)
    login(client, "township.operator")
    console = client.get("/cases/dispatch").text
    assert "街面垃圾待派" in _row(console, street["number"])
    row = _row(console, escalated["number"])
    assert "已上报上级" in row
    assert 'data-action="accept"' in row and 'data-action="delegate"' in row
    # The township may hand a street report to a village centre inside it, or to a department.
    assert f'value="centre-{village1}"' in _row(console, street["number"])


def test_a_move_needing_a_reason_without_one_is_refused_on_the_console(
    client: TestClient, db: Database
) -> None:
    login(client, "village1.operator")
    case = report(client, db, scope_of(db, "village1.operator"))
    refused = client.post(
        f"/cases/dispatch/{case['id']}/act", data={"action": "reject", "version": str(case["version"])}
    )
    assert refused.status_code == 422 and "reason" in refused.text
    assert client.get(f"/api/cases/{case['id']}").json()["status"] == "reported"


def test_another_villages_case_cannot_be_moved_from_the_console(client: TestClient, db: Database) -> None:
    login(client, "village2.operator")
    foreign = report(client, db, scope_of(db, "village2.operator"))
    logout(client)
    login(client, "village1.operator")
    response = client.post(
        f"/cases/dispatch/{foreign['id']}/act", data={"action": "accept", "version": str(foreign["version"])}
    )
    assert response.status_code == 404


def test_citizens_and_grid_workers_may_not_open_the_console(client: TestClient) -> None:
    for username in ("citizen", "village1.grid"):
        login(client, username)
        assert client.get("/cases/dispatch").status_code == 403
        assert 'href="/cases/dispatch"' not in client.get("/").text
        logout(client)


@pytest.mark.browser
def test_clicking_a_marker_highlights_its_row(
    assets_built: None,  # noqa: F811
    live_server: str,
    browser: Any,  # noqa: F811
    client: TestClient,
    db: Database,
) -> None:
    from playwright.sync_api import expect

    login(client, "village1.operator")
    village1 = scope_of(db, "village1.operator")
    first, second = report(client, db, village1, title="地图一"), report(client, db, village1, title="地图二")
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server}/login?next=/cases/dispatch")
    page.fill("input[name=username]", "village1.operator")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("form[action^='/login'] [type=submit]").click()
    expect(page).to_have_url(f"{live_server}/cases/dispatch")
    expect(page.locator("#dispatch-map")).to_have_attribute("data-ready", "1")
    page.locator(f"path.marker-case-{second['id']}").click(force=True)
    expect(page.locator(f"#case-{second['id']}")).to_have_class("highlight")
    expect(page.locator(f"#case-{first['id']}")).not_to_have_class("highlight")
    assert not errors, errors
