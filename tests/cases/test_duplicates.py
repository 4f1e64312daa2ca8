"""Possible duplicates: suggested on intake and on the case page; merging keeps the reporter informed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cityops.cases import duplicates
from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.cases.helpers import act, point_in_village, report, scope_of

TITLE = "东风路幸福小区门口污水井盖破损"
SAME = "幸福小区门口井盖破损，污水外溢"
OTHER = "村委会旁邻居家狗咬人"
DANGER = {"immediate_danger": False}


def similar(client: TestClient, case: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    query = {
        "type_code": case["type_code"],
        "category": case["category"],
        "lon": case["lon"],
        "lat": case["lat"],
        "title": SAME,
        **params,
    }
    response = client.get("/api/cases/similar", params=query)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def test_bigram_similarity_tells_the_same_problem_from_another() -> None:
    assert duplicates.similarity(TITLE, "", SAME, "") > 0.4
    assert duplicates.similarity(TITLE, "", OTHER, "") == 0.0
    assert duplicates.bigrams("井盖 A12") == {"井盖", "a12"}


def test_a_similar_report_nearby_is_suggested_and_an_unrelated_one_is_not(
    client: TestClient, db: Database
) -> None:
    village = scope_of(db, "village1.operator")
    login(client, "village1.operator")
    first = report(client, db, village, type_code="hazard", category="other", title=TITLE, fields=DANGER)
    unrelated = report(client, db, village, type_code="hazard", category="other", title=OTHER, fields=DANGER)
    other_category = report(
        client, db, village, type_code="hazard", category="fire", title=TITLE, fields=DANGER
    )
    found = similar(client, first)
    ids = [c["id"] for c in found]
    assert first["id"] in ids
    assert unrelated["id"] not in ids and other_category["id"] not in ids
    assert found[0]["id"] == first["id"] and found[0]["distance_m"] < 1 and found[0]["score"] > 0.5
    # Far away (a point in another village) nothing is suggested.
    lon, lat, _grid = point_in_village(db, scope_of(db, "village2.operator"))
    assert first["id"] not in [c["id"] for c in similar(client, first, lon=lon, lat=lat)]
    # A closed case is no longer a candidate.
    act(client, first, "reject", reason="重复")
    assert first["id"] not in [c["id"] for c in similar(client, first)]


def test_the_similar_list_asks_for_a_known_type_and_stays_in_scope(client: TestClient, db: Database) -> None:
    login(client, "village2.operator")
    foreign = report(
        client,
        db,
        scope_of(db, "village2.operator"),
        type_code="hazard",
        category="other",
        title=TITLE,
        fields=DANGER,
    )
    logout(client)
    login(client, "village1.operator")
    assert foreign["id"] not in [c["id"] for c in similar(client, foreign)]
    assert client.get(f"/api/cases/{foreign['id']}/similar").status_code == 404
    bad = client.get(
        "/api/cases/similar", params={"type_code": "nope", "category": "x", "lon": 114.3, "lat": 35.7}
    )
    assert bad.status_code in (404, 422) and "type_code" in bad.text
    missing = client.get("/api/cases/similar", params={"type_code": "hazard", "category": "other"})
    assert missing.status_code == 422 and "lon" in missing.text


def test_merging_from_the_case_page_informs_the_reporter(client: TestClient, db: Database) -> None:
    village = scope_of(db, "village1.operator")
    login(client, "village1.operator")
    target = report(client, db, village, type_code="hazard", category="other", title=TITLE, fields=DANGER)
    logout(client)
    login(client, "citizen")
    duplicate = report(
        client,
        db,
        village,
        type_code="hazard",
        category="other",
        title=SAME,
        fields=DANGER,
        reporter_name=None,
        reporter_phone=None,
    )
    logout(client)
    login(client, "village1.operator")
    listed = client.get(f"/api/cases/{duplicate['id']}/similar").json()
    assert [c["id"] for c in listed][:1] == [target["id"]]
    page = client.get(f"/cases/{duplicate['id']}")
    assert "疑似重复案件" in page.text and target["number"] in page.text and "合并到此案件" in page.text
    merged = client.post(
        f"/cases/{duplicate['id']}/merge",
        data={"version": str(duplicate["version"]), "merged_into": str(target["id"])},
        follow_redirects=False,
    )
    assert merged.status_code == 303, merged.text
    assert client.get(f"/api/cases/{duplicate['id']}").json()["status"] == "merged"
    target_timeline = client.get(f"/api/cases/{target['id']}/timeline").json()
    assert (
        target_timeline[-1]["action"] == "merged_in" and target_timeline[-1]["comment"] == duplicate["number"]
    )
    assert client.get(f"/api/cases/{duplicate['id']}/timeline").json()[-1]["action"] == "merge"
    assert "合并了重复案件" in client.get(f"/cases/{target['id']}").text
    assert f'href="/cases/{target["id"]}"' in client.get(f"/cases/{duplicate['id']}").text
    logout(client)
    login(client, "citizen")
    notices = client.get("/api/notifications").json()["items"]
    told = [n for n in notices if duplicate["number"] in n["title"] and target["number"] in n["title"]]
    assert len(told) == 1 and told[0]["link"] == f"/cases/{duplicate['id']}"
    assert "已合并到案件" in told[0]["title"]
    # Open311 shows the merged report as closed.
    number = duplicate["number"]
    logout(client)
    public = client.get(f"/open311/v2/requests/{number}.json")
    assert public.status_code == 200, public.text
    assert public.json()[0]["status"] == "closed"


def test_merging_into_a_closed_or_unknown_case_is_refused(client: TestClient, db: Database) -> None:
    village = scope_of(db, "village1.operator")
    login(client, "village1.operator")
    case = report(client, db, village, type_code="hazard", category="other", title=TITLE, fields=DANGER)
    refused = client.post(f"/cases/{case['id']}/merge", data={"version": "1", "merged_into": str(case["id"])})
    assert refused.status_code == 422 and "itself" in refused.text
