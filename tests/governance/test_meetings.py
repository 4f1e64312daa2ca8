"""The four meetings (四会): agendas from the cases escalated to the meeting's level in its division,
decisions that become cases or send the case to a unit."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.cases.helpers import act, report, scope_of


def escalated_case(client: TestClient, db: Database, username: str, title: str) -> dict[str, Any]:
    """A dispute reported in the user's village and escalated by its centre to the township."""
    login(client, username)
    case = report(client, db, scope_of(db, username)[:12], title=title)
    case = act(client, case, "escalate", reason="本村无法化解")
    assert case["level"] == "township"
    logout(client)
    return case


def schedule(client: TestClient, division_code: str | None = None, **extra: Any) -> dict[str, Any]:
    held_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {"held_at": held_at, **({"division_code": division_code} if division_code else {}), **extra}
    response = client.post("/api/governance/meetings", json=body)
    assert response.status_code == 201, response.text
    meeting: dict[str, Any] = response.json()
    return meeting


def draw(client: TestClient, meeting: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/api/governance/meetings/{meeting['id']}/agenda/draw")
    assert response.status_code == 200, response.text
    drawn: dict[str, Any] = response.json()
    return drawn


def agenda_numbers(meeting: dict[str, Any]) -> list[str]:
    return [item["case"]["number"] for item in meeting["agenda"] if item["case"]]


def test_the_agenda_holds_the_cases_escalated_to_the_level_in_the_meetings_division(
    client: TestClient, db: Database
) -> None:
    ours = escalated_case(client, db, "village1.operator", "一村宅基地纠纷上报乡镇")
    theirs = escalated_case(client, db, "village2.operator", "二村宅基地纠纷上报乡镇")
    township = scope_of(db, "township.operator")
    assert ours["division_code"].startswith(township) and not theirs["division_code"].startswith(township)

    # The city centre sees both cases; the township meeting still lists only its own township's.
    login(client, "city.operator")
    meeting = schedule(client, township)
    assert meeting["level"] == "township" and meeting["kind_zh"] == "综治联席会"
    drawn = draw(client, meeting)
    assert ours["number"] in agenda_numbers(drawn["meeting"])
    assert theirs["number"] not in agenda_numbers(drawn["meeting"])
    assert draw(client, meeting)["added"] == 0  # drawing again adds nothing twice

    other = draw(client, schedule(client, theirs["division_code"][:9]))["meeting"]
    assert theirs["number"] in agenda_numbers(other) and ours["number"] not in agenda_numbers(other)
    # A village meeting does not take up cases that went up to the township.
    village = draw(client, schedule(client, ours["division_code"][:12]))["meeting"]
    assert village["level"] == "village" and ours["number"] not in agenda_numbers(village)


def test_a_township_operator_draws_the_agenda_of_their_own_centre(client: TestClient, db: Database) -> None:
    ours = escalated_case(client, db, "village1.operator", "一村土地纠纷")
    login(client, "township.operator")
    meeting = schedule(client)
    assert meeting["division_code"] == scope_of(db, "township.operator")
    assert ours["number"] in agenda_numbers(draw(client, meeting)["meeting"])


def test_a_decision_becomes_a_new_case_or_sends_the_case_to_a_unit(client: TestClient, db: Database) -> None:
    first = escalated_case(client, db, "village1.operator", "一村排水沟纠纷")
    second = escalated_case(client, db, "village1.operator", "一村通道纠纷")
    login(client, "township.operator")
    meeting = draw(client, schedule(client))["meeting"]
    items = {item["case"]["number"]: item for item in meeting["agenda"] if item["case"]}

    url = f"/api/governance/meetings/{meeting['id']}/items/{items[first['number']]['id']}/decision"
    decided = client.post(
        url,
        json={
            "decision": "由城管部门清理排水沟",
            "outcome": "new_case",
            "new_case": {"type_code": "urban", "category": "water", "title": "会议决定：清理排水沟"},
        },
    )
    assert decided.status_code == 200, decided.text
    item = next(i for i in decided.json()["agenda"] if i["id"] == items[first["number"]]["id"])
    assert item["outcome"] == "new_case" and item["result_case"]["title"] == "会议决定：清理排水沟"
    new_case = client.get(f"/api/cases/{item['result_case']['id']}").json()
    assert new_case["status"] == "reported" and new_case["lon"] == first["lon"]
    assert client.post(url, json={"decision": "again"}).status_code == 409

    url = f"/api/governance/meetings/{meeting['id']}/items/{items[second['number']]['id']}/decision"
    assigned = client.post(
        url, json={"decision": "交司法所调解", "outcome": "assign", "org_unit_code": "dept-justice"}
    )
    assert assigned.status_code == 200, assigned.text
    case = client.get(f"/api/cases/{second['id']}").json()
    assert case["status"] == "dispatched" and case["org_unit"]["code"] == "dept-justice"

    missing = client.post(f"/api/governance/meetings/{meeting['id']}/agenda", json={})
    assert missing.status_code == 422 and missing.json()["field"] == "title"


def test_a_village_operator_cannot_see_another_villages_meetings(client: TestClient) -> None:
    login(client, "village2.operator")
    theirs = schedule(client)
    logout(client)
    login(client, "village1.operator")
    assert client.get(f"/api/governance/meetings/{theirs['id']}").status_code == 404
    assert client.get(f"/governance/meetings/{theirs['id']}").status_code == 404
    assert client.post(f"/api/governance/meetings/{theirs['id']}/agenda/draw").status_code == 404
    assert theirs["id"] not in [
        m["id"] for m in client.get("/api/governance/meetings?limit=500").json()["items"]
    ]
    refused = client.post(
        "/api/governance/meetings",
        json={"division_code": theirs["division_code"], "held_at": "2030-01-01T09:00:00"},
    )
    assert refused.status_code == 403


def test_the_meeting_page_draws_the_agenda_and_records_decisions(client: TestClient, db: Database) -> None:
    case = escalated_case(client, db, "village1.operator", "一村噪声纠纷")
    login(client, "township.operator")
    created = client.post(
        "/governance/meetings", data={"held_at": "2099-01-05T09:30"}, follow_redirects=False
    )
    assert created.status_code == 303
    url = created.headers["location"]
    client.post(url, data={"op": "draw"})
    page = client.get(url)
    assert (
        page.status_code == 200 and f'data-case="{case["number"]}"' in page.text and "综治联席会" in page.text
    )
    meeting = client.get("/api" + url).json()
    item = meeting["agenda"][0]
    client.post(
        url, data={"op": "decide", "item_id": item["id"], "decision": "列入重点关注", "outcome": "note"}
    )
    client.post(
        url,
        data={"op": "minutes", "attendees": "张主任, 李所长", "minutes": "研究了一村噪声纠纷", "held": "1"},
    )
    page = client.get(url)
    assert "列入重点关注" in page.text and 'data-status="held"' in page.text and "李所长" in page.text
    export = client.get("/api/governance/meetings?format=xlsx")
    rows = list(
        load_workbook(io.BytesIO(export.content), read_only=True).worksheets[0].iter_rows(values_only=True)
    )
    assert any(r[0] == meeting["id"] for r in rows[1:])


def test_the_next_meeting_takes_up_only_what_arrived_since_the_previous_one(
    client: TestClient, db: Database
) -> None:
    case = escalated_case(client, db, "village1.operator", "一村灌溉用水纠纷")
    login(client, "township.operator")
    soon = datetime.now(UTC) + timedelta(hours=1)
    first = client.post("/api/governance/meetings", json={"held_at": soon.isoformat()}).json()
    second = client.post(
        "/api/governance/meetings", json={"held_at": (soon + timedelta(days=14)).isoformat()}
    )
    # The case arrived before the first meeting: it is the first meeting's business, not the next one's.
    later = draw(client, second.json())
    assert datetime.fromisoformat(later["since"]) == datetime.fromisoformat(first["held_at"])
    assert case["number"] not in agenda_numbers(later["meeting"])
    assert case["number"] in agenda_numbers(draw(client, first)["meeting"])
