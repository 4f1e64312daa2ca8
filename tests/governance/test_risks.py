"""Risk register: case patterns found by the searchlight scan, registered once, worked through the
excavator and road roller stages."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cityops.accounts.demo import DEMO_PASSWORD
from cityops.config import Settings
from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.cases.helpers import act, case_body, report, scope_of
from tests.web.test_browser import assets_built, browser  # noqa: F401 - fixtures used below

GARBAGE = {"type_code": "urban", "category": "garbage", "title": "小区东门垃圾堆放", "fields": {}}


def holding(client: TestClient, case_ids: set[int]) -> list[dict[str, Any]]:
    """The risks whose cases include any of these."""
    found = []
    for risk in client.get("/api/governance/risks?limit=500").json()["items"]:
        detail = client.get(f"/api/governance/risks/{risk['id']}").json()
        if case_ids & {c["id"] for c in detail["cases"]}:
            found.append(detail)
    return found


def scan(client: TestClient) -> dict[str, int]:
    response = client.post("/api/governance/risks/scan")
    assert response.status_code == 200, response.text
    counts: dict[str, int] = response.json()
    return counts


def garbage_cluster(client: TestClient, db: Database, username: str, n: int = 3) -> list[dict[str, Any]]:
    village = scope_of(db, username)[:12]
    return [report(client, db, village, **GARBAGE) for _ in range(n)]


def test_a_cluster_of_one_category_in_one_place_is_registered_once(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    cases = garbage_cluster(client, db, "village1.operator")
    assert scan(client)["registered"] >= 1
    risks = holding(client, {c["id"] for c in cases})
    assert len(risks) == 1
    risk = risks[0]
    assert risk["kind"] == "cluster" and risk["stage"] == "searchlight"
    assert {c["id"] for c in cases} <= {c["id"] for c in risk["cases"]}
    assert risk["division_code"].startswith(scope_of(db, "village1.operator")[:12])

    assert scan(client)["registered"] == 0  # scanned twice: still one risk
    assert [r["id"] for r in holding(client, {c["id"] for c in cases})] == [risk["id"]]

    later = garbage_cluster(client, db, "village1.operator", 1)[0]
    assert scan(client) == {"registered": 0, "updated": 1}
    again = holding(client, {later["id"]})
    assert [r["id"] for r in again] == [risk["id"]] and again[0]["case_count"] == risk["case_count"] + 1


def test_cases_of_different_categories_make_no_cluster(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    village = scope_of(db, "village1.operator")[:12]
    cases = [
        report(client, db, village, **GARBAGE),
        report(client, db, village, **GARBAGE),
        report(client, db, village, **{**GARBAGE, "category": "water", "title": "下水道堵塞"}),
    ]
    scan(client)
    assert holding(client, {c["id"] for c in cases}) == []


def test_the_scan_command_registers_a_pattern_once(
    client: TestClient, db: Database, settings: Settings
) -> None:
    login(client, "village1.operator")
    cases = garbage_cluster(client, db, "village1.operator")
    env = {**os.environ, "CITYOPS_DATABASE_URL": settings.database_url, "CITYOPS_ENVIRONMENT": "test"}
    runs = [
        subprocess.run(
            [sys.executable, "-m", "cityops.cli", "governance", "risks", "scan", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["registered"] >= 1 and second == {"registered": 0, "updated": 0}
    assert len(holding(client, {c["id"] for c in cases})) == 1


def test_repeat_disputes_between_the_same_parties_are_a_risk(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    village = scope_of(db, "village1.operator")[:12]
    body = case_body(db, village)
    made = []
    for title in ("孙家与李家宅基地纠纷", "孙家与李家再起争执"):
        response = client.post(
            "/api/governance/disputes",
            json={
                "category": "neighbour",
                "title": title,
                "lon": body["lon"],
                "lat": body["lat"],
                "parties": [
                    {"name": "孙大伟", "id_number": "410602198505053211"},
                    {"name": "李小红", "phone": "13800001111"},
                ],
            },
        )
        assert response.status_code == 201, response.text
        made.append(response.json()["case_id"])
    scan(client)
    kinds = {r["kind"] for r in holding(client, set(made))}
    assert "same_parties" in kinds


def test_a_risk_goes_from_searchlight_to_excavator_to_road_roller(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    cases = garbage_cluster(client, db, "village1.operator")
    scan(client)
    risk = holding(client, {c["id"] for c in cases})[0]
    url = f"/api/governance/risks/{risk['id']}"
    tasked = client.post(f"{url}/tasks", json={"org_unit_code": "dept-urban", "title": "清运垃圾并设置围挡"})
    assert tasked.status_code == 201, tasked.text
    risk = tasked.json()
    task_case = risk["tasks"][0]["case"]
    assert risk["stage"] == "excavator" and task_case["status"] == "dispatched"
    assert task_case["org_unit"]["code"] == "dept-urban"

    refused = client.post(f"{url}/stage", json={"to": "roller", "note": "定期回访"})
    assert refused.status_code == 409 and task_case["number"] in refused.json()["message"]
    case = client.get(f"/api/cases/{task_case['id']}").json()
    case = act(client, act(client, case, "start"), "resolve", result="已清运并设置围挡")
    assert client.post(f"{url}/stage", json={"to": "roller"}).json()["field"] == "note"
    assert (
        client.post(f"{url}/stage", json={"to": "roller", "note": "网格员每周回访"}).json()["stage"]
        == "roller"
    )
    assert client.post(f"{url}/stage", json={"to": "closed"}).json()["field"] == "root_cause"
    closed = client.post(f"{url}/stage", json={"to": "closed", "root_cause": "缺少垃圾收集点"})
    assert closed.json()["stage"] == "closed" and closed.json()["root_cause"] == "缺少垃圾收集点"


def test_a_village_operator_cannot_see_another_villages_risks(client: TestClient, db: Database) -> None:
    login(client, "village2.operator")
    theirs = garbage_cluster(client, db, "village2.operator")
    scan(client)
    risk = holding(client, {c["id"] for c in theirs})[0]
    logout(client)
    login(client, "village1.operator")
    assert client.get(f"/api/governance/risks/{risk['id']}").status_code == 404
    assert client.get(f"/governance/risks/{risk['id']}").status_code == 404
    assert (
        client.post(f"/api/governance/risks/{risk['id']}/stage", json={"to": "excavator"}).status_code == 404
    )
    assert holding(client, {c["id"] for c in theirs}) == []
    assert str(risk["id"]) not in [
        str(r[0])
        for r in list(
            load_workbook(io.BytesIO(client.get("/api/governance/risks?format=xlsx").content), read_only=True)
            .worksheets[0]
            .iter_rows(values_only=True)
        )[1:]
    ]


def test_the_risk_page_shows_the_map_and_the_list(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    cases = garbage_cluster(client, db, "village1.operator")
    client.post("/governance/risks/scan")
    risk = holding(client, {c["id"] for c in cases})[0]
    page = client.get("/governance/risks")
    assert page.status_code == 200
    assert 'id="risk-map"' in page.text and f'data-risk="{risk["id"]}"' in page.text
    assert "/static/vendor/leaflet/leaflet.js" in page.text and "风险台账" in page.text
    detail = client.get(f"/governance/risks/{risk['id']}")
    assert all(f'data-case="{c["number"]}"' in detail.text for c in cases)


def test_the_scheduler_job_runs_the_searchlight(client: TestClient, db: Database) -> None:
    from cityops.core import scheduler
    from cityops.governance.risks import service as risks_service

    login(client, "village1.operator")
    cases = garbage_cluster(client, db, "village1.operator")
    job = risks_service.risks_scan_job()
    assert scheduler.run_due(db, [job]) == ["governance.risks_scan"]
    state = next(j for j in scheduler.job_states(db) if j.name == "governance.risks_scan")
    assert state.last_error is None
    assert len(holding(client, {c["id"] for c in cases})) == 1


@pytest.mark.browser
def test_the_risk_map_draws_the_cluster_in_a_browser(
    assets_built: None,  # noqa: F811
    live_server: str,
    browser: Any,  # noqa: F811
    client: TestClient,
    db: Database,
) -> None:
    from playwright.sync_api import expect

    login(client, "village1.operator")
    cases = garbage_cluster(client, db, "village1.operator")
    scan(client)
    risk = holding(client, {c["id"] for c in cases})[0]
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server}/login?next=/governance/risks")
    page.fill("input[name=username]", "village1.operator")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("form[action^='/login'] [type=submit]").click()
    expect(page).to_have_url(f"{live_server}/governance/risks")
    expect(page.locator("#risk-map")).to_have_attribute("data-ready", "1")
    circles = page.locator("path.risk-circle.risk-searchlight")
    assert circles.count() >= 1
    circles.first.click(force=True)
    expect(page.locator(".leaflet-popup-content a")).to_have_attribute(
        "href", f"/governance/risks/{risk['id']}"
    )
    assert not errors, errors
