"""Notices about cases: the unit gets newly routed cases, watchers and participants hear of moves,
each notice goes out once even when delivery is interrupted, and nobody reads another's notices."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from cityops.cases import notify
from cityops.cases import service as case_service
from cityops.cases.models import CaseWatcher
from cityops.cases.schemas import ActionRequest, CaseCreate
from cityops.core.db import Database
from cityops.core.events import EventBus, OutboxEntry
from cityops.core.notifications import Notification
from cityops.places import service as places_service
from tests.accounts.helpers import get_user, login, logout, user_id
from tests.cases.helpers import act, case_body, report, scope_of


def titles(client: TestClient) -> list[str]:
    response = client.get("/api/notifications")
    assert response.status_code == 200, response.text
    return [n["title"] for n in response.json()["items"]]


def test_the_unit_hears_of_a_new_case_and_watchers_of_its_moves(client: TestClient, db: Database) -> None:
    village = scope_of(db, "village1.operator")
    login(client, "citizen")
    case = report(client, db, village, reporter_name=None, reporter_phone=None)
    logout(client)
    login(client, "village1.operator")
    assert f"本单位新案件 {case['number']}" in titles(client)
    logout(client)
    login(client, "village1.grid")
    assert client.post(f"/api/cases/{case['id']}/watch").json() == {"case_id": case["id"], "watching": True}
    assert client.post(f"/api/cases/{case['id']}/watch").status_code == 200  # twice is harmless
    logout(client)
    login(client, "village1.operator")
    case = act(client, case, "accept")
    # The one who moved it is not told of their own move.
    assert not [t for t in titles(client) if "已受理" in t and case["number"] in t]
    logout(client)
    login(client, "village1.grid")
    assert titles(client).count(f"案件 {case['number']}：已受理") == 1
    assert client.get("/api/notifications/unread-count").json()["unread"] >= 1
    client.delete(f"/api/cases/{case['id']}/watch")
    logout(client)
    login(client, "citizen")  # the reporter is kept informed
    assert f"案件 {case['number']}：已受理" in titles(client)
    logout(client)
    login(client, "village1.operator")
    act(client, case, "start")
    logout(client)
    login(client, "village1.grid")
    assert not [t for t in titles(client) if "处置中" in t and case["number"] in t]


def test_a_notice_is_delivered_once_even_when_delivery_is_interrupted(db: Database) -> None:
    """Commit without delivering (a crash right after the commit), deliver on restart, then deliver the
    same events again (a crash after delivering, before marking them sent): one notice each."""
    operator = get_user(db, "village1.operator")
    grid = user_id(db, "village1.grid")
    with db.session() as session:
        index = places_service.build_index(session)
        case = case_service.report_case(
            session,
            data=CaseCreate(**case_body(db, scope_of(db, "village1.operator"))),
            index=index,
            reporter=operator,
        )
        case_id, number = case.id, case.number
    with db.session() as session:
        session.add(CaseWatcher(case_id=case_id, user_id=grid))
    with db.session() as session:
        version = case_service.visible_case(session, viewer=operator, case_id=case_id).version
        case_service.act(
            session, actor=operator, case_id=case_id, action="accept", body=ActionRequest(version=version)
        )

    def notices() -> int:
        with db.sessions() as session:
            return (
                session.scalar(
                    select(func.count(Notification.id)).where(
                        Notification.user_id == grid, Notification.params["number"].as_string() == number
                    )
                )
                or 0
            )

    assert notices() == 0  # committed, not yet delivered
    bus = EventBus(db)
    notify.subscribe(bus)
    bus.drain()
    assert notices() == 2  # a new case for the unit, and the move of a watched case
    with db.session() as session:
        session.execute(update(OutboxEntry).values(published_at=None))
    restarted = EventBus(db)
    notify.subscribe(restarted)
    restarted.drain()
    assert notices() == 2


def test_one_reads_only_ones_own_notices(client: TestClient, db: Database) -> None:
    login(client, "village2.operator")
    report(client, db, scope_of(db, "village2.operator"))  # notifies village 2's centre
    logout(client)
    with db.sessions() as session:
        foreign = session.scalars(
            select(Notification).where(Notification.user_id != user_id(db, "village1.operator"))
        ).first()
        assert foreign is not None
        foreign_id = foreign.id
    login(client, "village1.operator")
    assert foreign_id not in [n["id"] for n in client.get("/api/notifications").json()["items"]]
    assert client.post(f"/api/notifications/{foreign_id}/read").status_code == 404
    assert client.post(f"/notifications/{foreign_id}/read").status_code == 404


def test_the_notifications_page_and_top_bar_count(client: TestClient, db: Database) -> None:
    login(client, "citizen")
    case = report(client, db, scope_of(db, "village1.operator"), reporter_name=None, reporter_phone=None)
    logout(client)
    login(client, "village1.operator")
    home = client.get("/")
    assert 'hx-get="/notifications/badge"' in home.text
    unread = client.get("/api/notifications/unread-count").json()["unread"]
    assert unread >= 1
    assert f'data-unread="{unread}"' in client.get("/notifications/badge").text
    page = client.get("/notifications")
    assert page.status_code == 200 and f"本单位新案件 {case['number']}" in page.text
    notice = next(n for n in client.get("/api/notifications").json()["items"] if case["number"] in n["title"])
    opened = client.post(f"/notifications/{notice['id']}/read", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/cases/{case['id']}"
    assert client.get("/api/notifications/unread-count").json()["unread"] == unread - 1
    assert client.post("/api/notifications/read-all").json() == {"unread": 0}
    assert "消息通知" in client.get("/notifications/badge").text
    assert 'class="badge"' not in client.get("/notifications/badge").text
    english = client.get("/api/notifications", params={"lang": "en"}).json()["items"]
    assert f"New case {case['number']} for your unit" in [n["title"] for n in english]


def test_history_written_after_the_fact_notifies_nobody(db: Database) -> None:
    """Cases seeded or imported with their past moments are not news: no notices at delivery."""
    long_ago = datetime(2024, 3, 4, 2, 0, tzinfo=UTC)
    with db.session() as session:
        index = places_service.build_index(session)
        data = CaseCreate(**case_body(db, scope_of(db, "village1.operator")))
        case = case_service.report_case(session, data=data, index=index, reporter=None, now=long_ago)
        case_service.act(
            session,
            actor=None,
            case_id=case.id,
            action="accept",
            now=long_ago,
            body=ActionRequest(version=case.version),
        )
        number = case.number
    bus = EventBus(db)
    notify.subscribe(bus)
    bus.drain()
    with db.sessions() as session:
        told = session.scalar(
            select(func.count(Notification.id)).where(Notification.params["number"].as_string() == number)
        )
    assert told == 0
