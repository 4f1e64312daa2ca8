"""Risk assessment of projects (一评): a high-risk project stays stopped until its mitigations are done."""

from __future__ import annotations

import io
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.cases.helpers import scope_of


def register(client: TestClient, name: str = "淇河湿地公园征地", **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/api/governance/projects",
        json={"name": name, "owner_unit_code": "dept-planning", "description": "征收集体土地", **extra},
    )
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


def advance(client: TestClient, project: dict[str, Any], to: str) -> Any:
    return client.post(f"/api/governance/projects/{project['id']}/advance", json={"to": to})


def test_a_high_risk_project_is_refused_until_its_mitigations_are_done(
    client: TestClient, db: Database
) -> None:
    login(client, "village1.operator")
    project = register(client)
    assert project["division_code"] == scope_of(db, "village1.operator")
    assert advance(client, project, "approved").json()["detail"]["missing"] == ["risk assessment"]

    assessed = client.post(
        f"/api/governance/projects/{project['id']}/assessments",
        json={"level": "high", "factors": ["征地补偿标准", "群众安置意愿"], "conclusion": "暂缓实施"},
    )
    assert assessed.status_code == 201, assessed.text
    assert assessed.json()["blocked"] is True
    before = client.get("/api/governance/projects").json()["counts"]

    refused = advance(client, project, "approved")
    assert refused.status_code == 409
    assert "mitigation" in refused.json()["message"]

    measures = [
        client.post(
            f"/api/governance/projects/{project['id']}/mitigations",
            json={"measure": measure, "responsible_unit_code": unit, "due_date": "2030-01-31"},
        ).json()
        for measure, unit in (("召开听证会", "dept-justice"), ("公示补偿方案", "dept-planning"))
    ]
    client.post(
        f"/api/governance/projects/{project['id']}/mitigations/{measures[0]['id']}/done",
        json={"note": "已召开"},
    ).raise_for_status()
    still = advance(client, project, "approved")
    assert still.status_code == 409
    assert still.json()["detail"]["missing"] == [f"mitigation #{measures[1]['id']}: 公示补偿方案"]
    assert "公示补偿方案" in still.json()["message"] and "召开听证会" not in still.json()["message"]
    assert advance(client, project, "proceeding").status_code == 409  # not approved yet

    client.post(
        f"/api/governance/projects/{project['id']}/mitigations/{measures[1]['id']}/done", json={}
    ).raise_for_status()
    approved = advance(client, project, "approved")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["blocked"] is False
    assert advance(client, project, "proceeding").json()["status"] == "proceeding"

    after = client.get("/api/governance/projects").json()["counts"]
    assert after["blocked"] == before["blocked"] - 1
    assert after["released"] == before["released"] + 1


def test_a_low_risk_project_goes_ahead_without_mitigations(client: TestClient) -> None:
    login(client, "village1.operator")
    project = register(client, "村道硬化")
    client.post(
        f"/api/governance/projects/{project['id']}/assessments", json={"level": "low"}
    ).raise_for_status()
    assert advance(client, project, "approved").json()["status"] == "approved"


def test_bad_input_names_the_field(client: TestClient) -> None:
    login(client, "village1.operator")
    unknown = client.post("/api/governance/projects", json={"name": "x", "owner_unit_code": "dept-nowhere"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "owner_unit_code"
    project = register(client)
    level = client.post(f"/api/governance/projects/{project['id']}/assessments", json={"level": "extreme"})
    assert level.status_code == 422 and "level" in level.json()["message"]


def test_a_village_operator_cannot_see_another_villages_projects(client: TestClient, db: Database) -> None:
    login(client, "village2.operator")
    theirs = register(client, "二村垃圾中转站选址")
    logout(client)
    login(client, "village1.operator")
    assert client.get(f"/api/governance/projects/{theirs['id']}").status_code == 404
    assert client.get(f"/governance/projects/{theirs['id']}").status_code == 404
    assert (
        client.post(f"/api/governance/projects/{theirs['id']}/advance", json={"to": "approved"}).status_code
        == 404
    )
    listed = client.get("/api/governance/projects?limit=500").json()
    assert theirs["id"] not in [p["id"] for p in listed["items"]]
    refused = client.post(
        "/api/governance/projects",
        json={
            "name": "越权登记",
            "owner_unit_code": "dept-planning",
            "division_code": scope_of(db, "village2.operator"),
        },
    )
    assert refused.status_code == 403


def test_the_pages_show_the_stopped_projects_and_export_them(client: TestClient) -> None:
    login(client, "city.operator")
    page = client.get("/governance/projects")
    assert page.status_code == 200
    assert "风险评估" in page.text and "data-blocked" in page.text  # the seed has stopped projects
    export = client.get("/api/governance/projects?format=xlsx&blocked=true")
    sheet = load_workbook(io.BytesIO(export.content), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) - 1 == client.get("/api/governance/projects?blocked=true").json()["total"] > 0
    assert all(r[5] == "high" for r in rows[1:])


def test_the_project_page_records_mitigations_and_refuses_approval_with_the_reason(
    client: TestClient,
) -> None:
    login(client, "village1.operator")
    project = register(client)
    url = f"/governance/projects/{project['id']}"
    client.post(url, data={"op": "assess", "level": "high", "factors": "舆情风险\n环境影响"})
    refused = client.post(url, data={"op": "advance", "to": "approved"})
    assert refused.status_code == 409 and "mitigation" in refused.text
    client.post(
        url,
        data={"op": "mitigate", "measure": "开展环评公众参与", "responsible_unit_code": "dept-environment"},
    )
    page = client.get(url)
    assert "开展环评公众参与" in page.text and "舆情风险" in page.text
