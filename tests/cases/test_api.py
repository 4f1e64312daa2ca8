"""The case API: intake and routing, lists in scope, the case page data, the timeline and actions."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from cityops.accounts import service as accounts_service
from cityops.cases.models import Case, CaseEvent
from cityops.core.db import Database
from cityops.core.events import OutboxEntry
from tests.accounts.helpers import login, logout
from tests.cases.helpers import act, case_body, point_in_village, report, scope_of


@pytest.fixture
def villages(db: Database) -> tuple[str, str]:
    return scope_of(db, "village1.operator"), scope_of(db, "village2.operator")


def outbox_count(db: Database, topic: str) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).where(OutboxEntry.topic == topic)) or 0


def listed(client: TestClient, **params: Any) -> list[int]:
    """Ids of the listed cases (the demo seed adds cases of its own, so tests search for theirs)."""
    response = client.get("/api/cases", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["items"]]


def test_a_report_is_routed_to_its_grid_and_village_centre(client: TestClient, db: Database,
                                                          villages: tuple[str, str]) -> None:
    village1, _ = villages
    login(client, "village1.grid")
    _lon, _lat, grid = point_in_village(db, village1)
    before = outbox_count(db, "cases.reported")
    case = report(client, db, village1)
    prefix, year, serial = case["number"].split("-")
    assert prefix == "HB" and len(year) == 4 and len(serial) == 6
    assert case["status"] == "reported" and case["level"] == "village" and case["version"] == 1
    assert case["grid_code"] == grid and case["division_code"] == grid and case["village_code"] == village1
    assert case["org_unit"]["code"] == f"centre-{village1}"
    assert case["fields"] == {"parties": 2}
    second = report(client, db, village1)
    assert second["number"] == f"HB-{year}-{int(serial) + 1:06d}"
    assert outbox_count(db, "cases.reported") == before + 2


def test_a_department_category_goes_to_the_department(client: TestClient, db: Database,
                                                      villages: tuple[str, str]) -> None:
    login(client, "village1.operator")
    case = report(client, db, villages[0], type_code="hazard", category="gas",
                  fields={"immediate_danger": True})
    assert case["org_unit"]["code"] == "dept-housing"
    # The housing bureau's handler sees it through its org unit, though the place is not theirs.
    logout(client)
    login(client, "housing.handler")
    assert client.get(f"/api/cases/{case['id']}").status_code == 200


@pytest.mark.parametrize(("change", "field"), [
    ({"type_code": "weather"}, "type_code"),
    ({"category": "aliens"}, "category"),
    ({"fields": {"parties": "many"}}, "fields.parties"),
    ({"fields": {}}, "fields.parties"),
    ({"lon": 2.35, "lat": 48.85}, "lon"),
    ({"lon": 1000}, "lon"),
    ({"title": ""}, "title"),
    ({"reporter_phone": "call me"}, "reporter_phone"),
    ({"source": "pigeon"}, "source"),
])
def test_bad_intake_names_the_field(client: TestClient, db: Database, villages: tuple[str, str],
                                    change: dict[str, Any], field: str) -> None:
    login(client, "village1.operator")
    response = client.post("/api/cases", json=case_body(db, villages[0], **change))
    assert response.status_code == 422, response.text
    body = response.json()
    named = body.get("field") or [e["field"] for e in body["detail"]["errors"]]
    assert field in named, body


def test_reports_arriving_together_each_get_their_own_case_or_error(live_server: str, db: Database,
                                                                     villages: tuple[str, str]) -> None:
    """Concurrent reports share transactions (group commit); each still gets its own number and
    timeline, and a bad one its own 422 without taking the others down."""
    with db.session() as session:
        token = accounts_service.create_token(session, actor=None, username="city.operator", name="t",
                                              days=1).token
    good = case_body(db, villages[0], title="同批受理测试")
    bodies = [good] * 30 + [{**good, "lon": 10.0, "lat": 10.0}] * 2

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=live_server, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            return await asyncio.gather(*(http.post("/api/cases", json=body) for body in bodies))

    responses = asyncio.run(post_all())
    assert [r.status_code for r in responses] == [201] * 30 + [422] * 2
    assert all(r.json()["field"] == "lon" for r in responses[30:])
    created = [r.json() for r in responses[:30]]
    assert len({c["number"] for c in created}) == 30 and len({c["id"] for c in created}) == 30
    assert all(c["status"] == "reported" for c in created)
    assert {c["org_unit"]["code"] for c in created} == {f"centre-{villages[0]}"}
    ids = [c["id"] for c in created]
    with db.sessions() as session:
        lines = session.scalars(select(CaseEvent.case_id).where(CaseEvent.case_id.in_(ids),
                                                                CaseEvent.action == "report")).all()
        written_at = set(session.scalars(select(Case.created_at).where(Case.id.in_(ids))))
    assert sorted(lines) == sorted(ids)
    assert outbox_count(db, "cases.reported") >= 30
    assert len(written_at) < 30  # fewer transactions than reports


def test_roles_without_report_permission_cannot_report(client: TestClient, db: Database,
                                                       villages: tuple[str, str]) -> None:
    login(client, "leader")
    assert client.post("/api/cases", json=case_body(db, villages[0])).status_code == 403


def test_lists_and_case_pages_stay_in_scope(client: TestClient, db: Database,
                                            villages: tuple[str, str]) -> None:
    village1, village2 = villages
    login(client, "village2.operator")
    foreign = report(client, db, village2, title="另一村的纠纷")
    logout(client)
    login(client, "village1.operator")
    own = report(client, db, village1, title="本村的纠纷")
    assert listed(client, q="村的纠纷") == [own["id"]]
    assert all(c["village_code"] == village1 for c in client.get("/api/cases").json()["items"])
    assert client.get(f"/api/cases/{foreign['id']}").status_code == 404
    assert client.get(f"/api/cases/{foreign['id']}/timeline").status_code == 404
    acted = client.post(f"/api/cases/{foreign['id']}/actions/accept", json={"version": 1})
    assert acted.status_code == 404
    logout(client)
    # The township above village 1 sees village 1's case but not village 2's (another township).
    login(client, "township.operator")
    assert listed(client, q="村的纠纷") == [own["id"]]
    logout(client)
    login(client, "admin")
    assert sorted(listed(client, q="村的纠纷")) == sorted([own["id"], foreign["id"]])


def test_lists_mask_the_reporter_and_the_case_shows_it_to_pii_roles(client: TestClient, db: Database,
                                                                    villages: tuple[str, str]) -> None:
    login(client, "village1.grid")
    case = report(client, db, villages[0])
    assert case["reporter_phone"] == "138****5678" and case["reporter_name"] == "王**"  # no pii.view
    logout(client)
    login(client, "village1.operator")
    row = client.get("/api/cases", params={"q": case["number"]}).json()["items"][0]
    assert row["reporter_phone"] == "138****5678" and row["reporter_name"] == "王**"
    full = client.get(f"/api/cases/{case['id']}").json()
    assert full["pii_visible"] and full["reporter_phone"] == "13812345678"


def test_filters_search_and_pagination(client: TestClient, db: Database, villages: tuple[str, str]) -> None:
    login(client, "village1.operator")
    first = report(client, db, villages[0], title="甲乙丙噪声扰民投诉", category="noise")
    second = report(client, db, villages[0], title="甲乙丙燃气泄漏", type_code="hazard", category="gas",
                    fields={"immediate_danger": True})
    act(client, first, "accept")
    assert listed(client, q="甲乙丙噪声") == [first["id"]]
    assert listed(client, q="甲乙丙", type_code="hazard") == [second["id"]]
    assert listed(client, q="甲乙丙", status="accepted") == [first["id"]]
    assert listed(client, q="甲乙丙", status=["accepted", "reported"]) == [second["id"], first["id"]]
    assert listed(client, q=first["number"]) == [first["id"]]
    assert listed(client, q="100%_") == []
    page = client.get("/api/cases", params={"q": "甲乙丙", "limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [c["id"] for c in page["items"]] == [first["id"]]
    bad = client.get("/api/cases", params={"status": "lost"})
    assert bad.status_code == 422 and bad.json()["field"] == "status"
    assert client.get("/api/cases", params={"level": "planet"}).json()["field"] == "level"


def test_excel_export_of_the_filtered_list(client: TestClient, db: Database,
                                           villages: tuple[str, str]) -> None:
    login(client, "village1.operator")
    report(client, db, villages[0], title="导出的案件")
    response = client.get("/api/cases", params={"format": "xlsx", "q": "导出"})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Number" and len(rows) == 2
    assert rows[1][3] == "导出的案件" and rows[1][9] == "138****5678"


def test_a_case_goes_from_report_to_closing_with_a_timeline(client: TestClient, db: Database,
                                                            villages: tuple[str, str]) -> None:
    login(client, "village1.operator")
    case = report(client, db, villages[0])
    assert "accept" in case["allowed_actions"]
    case = act(client, case, "accept", comment="受理")
    case = act(client, case, "dispatch", org_unit_code="dept-justice")
    assert case["status"] == "dispatched" and case["org_unit"]["code"] == "dept-justice"
    # Still visible to the village through the place, though the handling unit changed.
    case = act(client, case, "start")
    case = act(client, case, "pause", reason="等待当事人回复")
    assert case["paused_at"] is not None
    case = act(client, case, "resume")
    assert case["paused_at"] is None
    case = act(client, case, "resolve", result="双方达成调解协议")
    case = act(client, case, "verify")
    case = act(client, case, "close")
    assert case["status"] == "closed" and case["closed_at"] is not None and case["version"] == 9
    timeline = client.get(f"/api/cases/{case['id']}/timeline").json()
    assert [e["action"] for e in timeline] == ["report", "accept", "dispatch", "start", "pause", "resume",
                                               "resolve", "verify", "close"]
    assert timeline[1]["comment"] == "受理" and timeline[1]["from_status"] == "reported"
    assert timeline[2]["org_unit"]["code"] == "dept-justice"
    assert timeline[-1]["to_status"] == "closed" and timeline[-1]["actor_name"]
    with db.sessions() as session:
        moves = [e.payload["action"] for e in session.scalars(
            select(OutboxEntry).where(OutboxEntry.topic == "cases.transitioned")
            .order_by(OutboxEntry.id)) if e.payload["case_id"] == case["id"]]
    assert moves == [e["action"] for e in timeline[1:]]


def test_an_undeclared_move_answers_409_with_the_allowed_moves(client: TestClient, db: Database,
                                                               villages: tuple[str, str]) -> None:
    login(client, "village1.operator")
    case = report(client, db, villages[0])
    response = client.post(f"/api/cases/{case['id']}/actions/close", json={"version": 1})
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "invalid_transition"
    assert body["detail"]["allowed"] == ["accept", "escalate", "merge", "reject", "reroute"]


def test_a_stale_version_answers_409_and_loses_nothing(client: TestClient, db: Database,
                                                       villages: tuple[str, str]) -> None:
    login(client, "village1.operator")
    case = report(client, db, villages[0])
    accepted = act(client, case, "accept")
    # A second operator still holding version 1 tries to reject it.
    response = client.post(f"/api/cases/{case['id']}/actions/reject", json={"version": 1, "reason": "重复"})
    assert response.status_code == 409 and "stale version" in response.json()["message"]
    assert client.get(f"/api/cases/{case['id']}").json()["status"] == accepted["status"] == "accepted"


def test_guards_need_the_fields_and_the_permission(client: TestClient, db: Database,
                                                   villages: tuple[str, str]) -> None:
    login(client, "village1.operator")
    case = report(client, db, villages[0])
    missing = client.post(f"/api/cases/{case['id']}/actions/reject", json={"version": 1})
    assert missing.status_code == 422 and missing.json()["field"] == "reason"
    logout(client)
    login(client, "village1.grid")  # a grid worker handles cases but does not dispatch them
    refused = client.post(f"/api/cases/{case['id']}/actions/accept", json={"version": 1})
    assert refused.status_code == 403


def test_escalation_moves_the_case_to_the_township_centre(client: TestClient, db: Database,
                                                          villages: tuple[str, str]) -> None:
    village1 = villages[0]
    login(client, "village1.operator")
    case = report(client, db, village1)
    case = act(client, case, "escalate", reason="本级无法化解")
    assert case["status"] == "escalated" and case["level"] == "township" and case["version"] == 2
    assert case["org_unit"]["code"] == f"centre-{village1[:9]}"
    logout(client)
    login(client, "township.operator")
    case = act(client, case, "accept")
    case = act(client, case, "delegate", reason="由村调委会调解")
    assert case["level"] == "village" and case["org_unit"]["code"] == f"centre-{village1}"
    timeline = client.get(f"/api/cases/{case['id']}/timeline").json()
    assert [(e["action"], e["level"]) for e in timeline] == [
        ("report", "village"), ("escalate", "township"), ("accept", "township"), ("delegate", "village")]


def test_merge_into_another_open_case(client: TestClient, db: Database, villages: tuple[str, str]) -> None:
    login(client, "village1.operator")
    first = report(client, db, villages[0])
    second = report(client, db, villages[0])
    itself = client.post(f"/api/cases/{second['id']}/actions/merge",
                         json={"version": 1, "merged_into": second["id"]})
    assert itself.status_code == 422 and itself.json()["field"] == "merged_into"
    merged = act(client, second, "merge", merged_into=first["id"])
    assert merged["status"] == "merged" and merged["merged_into_id"] == first["id"]
    assert merged["allowed_actions"] == []


def test_a_citizen_sees_only_their_own_reports(client: TestClient, db: Database,
                                               villages: tuple[str, str]) -> None:
    login(client, "citizen")
    mine = report(client, db, villages[1], type_code="urban", category="lighting",
                  reporter_name=None, reporter_phone=None, fields={})
    assert mine["org_unit"]["code"] == "dept-urban" and mine["level"] == "township"
    logout(client)
    login(client, "village2.operator")
    report(client, db, villages[1])
    logout(client)
    login(client, "citizen")
    assert [c["id"] for c in client.get("/api/cases").json()["items"]] == [mine["id"]]
    assert client.get(f"/api/cases/{mine['id']}").json()["pii_visible"]


def test_two_sessions_acting_at_once_never_lose_an_update(db: Database, villages: tuple[str, str]) -> None:
    """Both read version 1; the second write finds the row changed and is refused."""
    from cityops.cases import service
    from cityops.cases.models import Case
    from cityops.cases.schemas import ActionRequest, CaseCreate
    from cityops.core.errors import Conflict
    from cityops.places import service as places_service

    with db.session() as session:
        index = places_service.build_index(session)
        case_id = service.report_case(session, data=CaseCreate(**case_body(db, villages[0])), index=index).id
    with db.sessions() as first, db.sessions() as second:
        assert second.get(Case, case_id) is not None  # the second operator opened the case
        service.act(first, actor=None, case_id=case_id, action="accept", body=ActionRequest(version=1))
        first.commit()
        with pytest.raises(Conflict, match="stale version"):
            service.act(second, actor=None, case_id=case_id, action="reject",
                        body=ActionRequest(version=1, reason="重复"))
    with db.sessions() as session:
        stored = session.get(Case, case_id)
        assert stored is not None and stored.status == "accepted" and stored.version == 2


def test_an_action_without_a_version_is_refused(client: TestClient, db: Database,
                                                villages: tuple[str, str]) -> None:
    login(client, "village1.operator")
    case = report(client, db, villages[0])
    response = client.post(f"/api/cases/{case['id']}/actions/accept", json={})
    assert response.status_code == 422 and response.json()["field"] == "version"
