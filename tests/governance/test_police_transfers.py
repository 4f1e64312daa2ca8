"""Police transfers (警网融合): a 110 call becomes one case however often it is sent, and its closing
pushes the result, signed, to the police system's webhook."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.cases.models import Case
from cityops.config import Settings
from cityops.core import webhooks
from cityops.core.auth.sessions import issue_token
from cityops.core.db import Database, utcnow
from cityops.governance.models import PoliceTransfer
from tests.accounts.helpers import get_user, login, logout
from tests.cases.helpers import act, point_in_village, scope_of
from tests.core.webhook_receiver import WebhookReceiver

URL = "/api/governance/police-transfers"


def bearer(db: Database, username: str) -> dict[str, str]:
    """The Authorization header of a fresh API token of the user (the police system's account)."""
    with db.session() as session:
        _row, token = issue_token(session, user=get_user(db, username), name="110 platform", days=None)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def police(db: Database) -> dict[str, str]:
    return bearer(db, "police.handler")


@pytest.fixture
def village(db: Database) -> str:
    return scope_of(db, "village1.operator")


def transfer(db: Database, village_code: str, **overrides: Any) -> dict[str, Any]:
    lon, lat, _grid = point_in_village(db, village_code)
    body: dict[str, Any] = {
        "incident_no": "J4106002026112500123", "category": "neighbour_dispute",
        "description": "报警人称邻居在楼道堆放杂物引发争吵", "lon": lon, "lat": lat,
        "caller_name": "李四", "caller_phone": "13700001111",
        "reported_at": "2026-11-25T08:30:00+08:00", "callback_url": "http://127.0.0.1:9/hooks/police",
    }
    body.update(overrides)
    return body


def cases_of(db: Database, incident_no: str) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Case)
                              .where(Case.title.contains(incident_no))) or 0


def test_a_transfer_sent_twice_makes_one_case(client: TestClient, db: Database, police: dict[str, str],
                                              village: str) -> None:
    body = transfer(db, village)
    first = client.post(URL, json=body, headers=police)
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["incident_no"] == body["incident_no"] and created["status"] == "reported"
    assert created["handling_unit"]["code"] == f"centre-{village}"
    again = client.post(URL, json=body, headers=police)
    assert again.status_code == 200 and again.json()["case_id"] == created["case_id"]
    assert cases_of(db, body["incident_no"]) == 1
    # The village centre sees the call as a police case with the caller, like any other report.
    login(client, "village1.operator")
    case = client.get(f"/api/cases/{created['case_id']}").json()
    assert case["source"] == "police" and case["type_code"] == "dispute" and case["category"] == "neighbour"
    assert case["reporter_phone"] == "13700001111" and case["number"] == created["case_number"]


def test_concurrent_duplicates_make_one_case(app: FastAPI, db: Database, police: dict[str, str],
                                            village: str) -> None:
    body = transfer(db, village, incident_no="J-CONCURRENT-1")
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def send() -> None:
        with TestClient(app) as own:
            barrier.wait()
            answers.append(own.post(URL, json=body, headers=police))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 201], [a.text for a in answers]
    assert answers[0].json()["case_id"] == answers[1].json()["case_id"]
    assert cases_of(db, "J-CONCURRENT-1") == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"category": "alien_landing"}, "category"),
    ({"lon": 2.35, "lat": 48.85}, "lon"),
    ({"lat": 95}, "lat"),
    ({"incident_no": None}, "incident_no"),
    ({"incident_no": ""}, "incident_no"),
    ({"callback_url": "ftp://police.local/x"}, "callback_url"),
    ({"caller_phone": "call me"}, "caller_phone"),
    ({"reported_at": "yesterday"}, "reported_at"),
])
def test_bad_transfers_name_the_field(client: TestClient, db: Database, police: dict[str, str], village: str,
                                      change: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**transfer(db, village), **change}.items() if v is not None}
    response = client.post(URL, json=body, headers=police)
    assert response.status_code == 422, response.text
    answer = response.json()
    named = answer.get("field") or [e["field"] for e in answer["detail"]["errors"]]
    assert field in named, answer
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PoliceTransfer)) == 0


def test_only_the_police_department_transfers(client: TestClient, db: Database, village: str) -> None:
    body = transfer(db, village, incident_no="J-NOT-POLICE")
    assert client.post(URL, json=body).status_code == 401
    housing = client.post(URL, json=body, headers=bearer(db, "housing.handler"))
    assert housing.status_code == 403  # same role, another department
    login(client, "village1.operator")
    assert client.post(URL, json=body).status_code == 403
    logout(client)
    assert cases_of(db, "J-NOT-POLICE") == 0


def test_categories_are_listed_for_the_police_system(client: TestClient, police: dict[str, str]) -> None:
    listed = client.get("/api/governance/police-transfer-categories", headers=police).json()
    by_code = {c["code"]: c for c in listed}
    assert by_code["street_light"]["type_code"] == "urban" and by_code["noise"]["category"] == "noise"


def test_closing_the_case_pushes_the_signed_result_to_the_police(
        client: TestClient, db: Database, settings: Settings, police: dict[str, str], village: str) -> None:
    with WebhookReceiver() as receiver:
        body = transfer(db, village, incident_no="J-E2E-1", callback_url=receiver.url)
        created = client.post(URL, json=body, headers=police).json()
        login(client, "village1.operator")
        case = client.get(f"/api/cases/{created['case_id']}").json()
        for action, fields in [("accept", {}), ("dispatch", {"org_unit_code": "dept-justice"}),
                               ("start", {}), ("resolve", {"result": "经调解，双方清理楼道杂物并握手言和"}),
                               ("verify", {})]:
            case = act(client, case, action, **fields)
        secret = webhooks.secret_from(settings)
        with webhooks.new_client(timeout_s=5) as http:
            # Nothing is pushed before the case closes.
            assert webhooks.deliver_due(db, secret=secret, client=http).attempted == 0
            case = act(client, case, "close", comment="回访满意")
            sent = webhooks.deliver_due(db, secret=secret, client=http)
            assert sent.delivered == 1
            # A second pass, or the close event delivered again, sends nothing more.
            assert webhooks.deliver_due(db, secret=secret, client=http,
                                        now=utcnow() + timedelta(days=1)).attempted == 0
    [(headers, raw)] = receiver.received
    assert webhooks.verify(secret, headers, raw, now=datetime.now(UTC))
    result = json.loads(raw)
    assert result["incident_no"] == "J-E2E-1" and result["case_number"] == created["case_number"]
    assert result["status"] == "closed" and result["result"] == "经调解，双方清理楼道杂物并握手言和"
    assert result["closing_comment"] == "回访满意" and result["closed_at"]
    assert result["handling_unit"]["code"] == "dept-justice"
    with db.sessions() as session:
        pushed = session.scalar(select(PoliceTransfer).where(PoliceTransfer.incident_no == "J-E2E-1"))
        assert pushed is not None and pushed.result_pushed_at is not None


def test_cases_not_from_the_police_push_nothing(client: TestClient, db: Database, village: str) -> None:
    login(client, "village1.operator")
    from tests.cases.helpers import report

    case = report(client, db, village)
    for action, fields in [("accept", {}), ("start", {}), ("resolve", {"result": "已调解"}),
                           ("verify", {}), ("close", {})]:
        case = act(client, case, action, **fields)
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(webhooks.WebhookDelivery)) == 0


def test_losing_the_race_on_the_incident_number_answers_the_first_case(
        db: Database, monkeypatch: pytest.MonkeyPatch, village: str) -> None:
    """The window two concurrent copies share: both looked, neither found the number yet."""
    from cityops.governance import repository, service
    from cityops.governance.schemas import PoliceTransferCreate
    from cityops.places import service as places_service

    class State:
        db: Database

    state = State()
    state.db = db
    sender = get_user(db, "police.handler")
    data = PoliceTransferCreate.model_validate(transfer(db, village, incident_no="J-RACE-1"))
    with db.session() as session:
        index = places_service.cache_for(state).index(session)
        first, created = service.receive_transfer(session, data=data, index=index, sender=sender)
        assert created
        first_case = first.case_id
    looked_up = repository.transfer_by_incident
    calls = iter([None])
    monkeypatch.setattr(repository, "transfer_by_incident",
                        lambda session, number: next(calls, looked_up(session, number)))
    with db.session() as session:
        second, created = service.receive_transfer(session, data=data, index=index, sender=sender)
        assert not created and second.case_id == first_case
    assert cases_of(db, "J-RACE-1") == 1


def test_the_police_system_looks_up_its_call(client: TestClient, db: Database, police: dict[str, str],
                                             village: str) -> None:
    created = client.post(URL, json=transfer(db, village, incident_no="J-LOOKUP-1"), headers=police).json()
    found = client.get(f"{URL}/J-LOOKUP-1", headers=police)
    assert found.status_code == 200 and found.json()["case_number"] == created["case_number"]
    assert client.get(f"{URL}/J-NOBODY", headers=police).status_code == 404
    assert client.get(f"{URL}/J-LOOKUP-1", headers=bearer(db, "housing.handler")).status_code == 403


def test_a_redelivered_close_event_queues_one_result_and_a_reopened_case_reports_again(
        app: FastAPI, client: TestClient, db: Database, police: dict[str, str], village: str) -> None:
    from cityops.core.events import Envelope, OutboxEntry, deliver_once
    from cityops.governance.events import POLICE_RESULT, on_case_transitioned

    created = client.post(URL, json=transfer(db, village, incident_no="J-AGAIN-1"), headers=police).json()
    login(client, "village1.operator")
    case = client.get(f"/api/cases/{created['case_id']}").json()
    for action, fields in [("accept", {}), ("start", {}), ("resolve", {"result": "已处理"}), ("verify", {}),
                           ("close", {})]:
        case = act(client, case, action, **fields)
    with db.sessions() as session:
        closing = session.scalars(select(OutboxEntry).where(OutboxEntry.topic == "cases.transitioned")
                                  .order_by(OutboxEntry.id.desc())).first()
        assert closing is not None and closing.payload["to_status"] == "closed"
        envelope = Envelope(closing.event_id, closing.topic, closing.payload, closing.created_at)
    # At-least-once delivery hands the same event over again: nothing more is queued.
    assert not deliver_once(db, POLICE_RESULT, on_case_transitioned, envelope)
    with db.session() as session:
        on_case_transitioned(session, envelope)  # even past the subscriber's own record
    for action, fields in [("reopen", {"reason": "报警人反映未解决"}), ("accept", {}), ("start", {}),
                           ("resolve", {"result": "再次上门处理完毕"}), ("verify", {}), ("close", {})]:
        case = act(client, case, action, **fields)
    with db.sessions() as session:
        queued = session.scalars(select(webhooks.WebhookDelivery).order_by(webhooks.WebhookDelivery.id)).all()
    assert [d.payload["result"] for d in queued] == ["已处理", "再次上门处理完毕"]
