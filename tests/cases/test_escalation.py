"""Deadlines in the engine and escalation on breach: a citizen report through Open311 escalates by
itself to the township when its deadline passes across the National Day holiday, is resolved there,
and the figures count it as resolved at township level."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.cases import service
from cityops.cases.models import Case, CaseEvent
from cityops.cases.schemas import ActionRequest
from cityops.config import Settings
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.sessions import issue_token
from cityops.core.db import Database
from tests.accounts.helpers import login
from tests.cases.helpers import act, point_in_village, scope_of

BJ = ZoneInfo("Asia/Shanghai")


def bj(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=BJ)


class Clock:
    """The case service's clock, set by the test (intake and actions through the API read it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(service, "utcnow", fake)
    yield fake


@pytest.fixture
def api_key(db: Database) -> str:
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == "city.operator"))
        assert user is not None
        _row, token = issue_token(session, user=user, name="open311 app", days=30)
    return token


def unit_code(db: Database, unit_id: int | None) -> str | None:
    with db.sessions() as session:
        unit = session.get(OrgUnit, unit_id) if unit_id is not None else None
        return unit.code if unit is not None else None


def township_of(db: Database) -> str:
    return scope_of(db, "township.operator")


def post_hazard(client: TestClient, db: Database, key: str) -> str:
    lon, lat, _grid = point_in_village(db, scope_of(db, "village1.operator"))
    response = client.post("/open311/v2/requests.json", data={
        "api_key": key, "service_code": "hazard-other", "lat": str(lat), "long": str(lon),
        "description": "路边井盖缺失，夜间行人易跌落", "attribute[immediate_danger]": "false"})
    assert response.status_code == 201, response.text
    number: str = response.json()[0]["service_request_id"]
    return number


def db_case(db: Database, case_id: int) -> Case:
    with db.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case


def case_by_number(db: Database, number: str) -> Case:
    with db.sessions() as session:
        case = session.scalar(select(Case).where(Case.number == number))
        assert case is not None
        return case


def township_figures(client: TestClient, db: Database) -> dict[tuple[str, str | None], dict[str, Any]]:
    response = client.get("/api/cases/figures", params={"division": township_of(db),
                                                        "start": "2024-09-01", "end": "2024-10-31"})
    assert response.status_code == 200, response.text
    return {(f["name"], f["level"]): f for f in response.json()["figures"]}


def test_open311_report_escalates_across_the_holiday_and_is_resolved_at_township(
        client: TestClient, db: Database, api_key: str, clock: Clock) -> None:
    village = scope_of(db, "village1.operator")
    township = township_of(db)
    assert village.startswith(township)

    # Reported on the last working afternoon before National Day.
    clock.now = bj(2024, 9, 30, 15, 0)
    number = post_hazard(client, db, api_key)
    case = case_by_number(db, number)
    assert unit_code(db, case.org_unit_id) == f"centre-{village}"
    assert case.level == "village" and case.status == "reported"
    # 8 working hours: 3 on 30 September, none during 1-7 October, 5 on 8 October (office hours
    # 08:30-12:00 and 14:30-18:00).
    assert case.deadline_at == bj(2024, 10, 8, 16, 0)

    # The last holiday: nothing is due yet.
    assert case.id not in service.escalate_overdue(db, now=bj(2024, 10, 7, 20, 0))
    assert case_by_number(db, number).level == "village"
    # Just after the deadline on the first working day, it escalates by itself.
    at = bj(2024, 10, 8, 16, 30)
    assert case.id in service.escalate_overdue(db, now=at)
    case = case_by_number(db, number)
    assert case.level == "township" and case.status == "escalated"
    assert unit_code(db, case.org_unit_id) == f"centre-{township}"
    assert case.deadline_at is not None and case.deadline_at > at  # the township's own 24 hours

    # Every hop keeps its moment and deadline on the timeline.
    with db.sessions() as session:
        events = list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                                      .order_by(CaseEvent.at, CaseEvent.id)))
    assert [(e.action, e.level, e.at) for e in events] == [
        ("report", "village", bj(2024, 9, 30, 15, 0)), ("escalate", "township", at)]
    assert events[0].data["deadline_at"] == bj(2024, 10, 8, 16, 0).astimezone(UTC).isoformat()
    assert events[1].data["reason"] == service.AUTO_REASON and events[1].data["auto"] is True
    assert events[1].actor_id is None

    # The township centre takes it over and resolves it before its deadline.
    login(client, "township.operator")
    before = township_figures(client, db)
    clock.now = bj(2024, 10, 9, 10, 0)
    seen = client.get(f"/api/cases/{case.id}").json()
    assert seen["org_unit"]["code"] == f"centre-{township}" and seen["overdue"] is False
    seen = act(client, seen, "accept")
    seen = act(client, seen, "start")
    seen = act(client, seen, "resolve", result="已补装井盖并设置警示")
    assert seen["status"] == "resolved" and seen["level"] == "township"

    after = township_figures(client, db)
    resolved = after[("resolved_at_level", "township")]
    assert resolved["value"] == before.get(("resolved_at_level", "township"), {"value": 0})["value"] + 1
    assert after[("on_time", "township")]["value"] == \
        before.get(("on_time", "township"), {"value": 0})["value"] + 1
    assert ("satisfaction", None) not in after  # no data, no figure
    # The figure drills down to its cases.
    response = client.get(resolved["cases_url"] + "&limit=500")
    assert response.status_code == 200, response.text
    listed = response.json()
    assert case.id in [c["id"] for c in listed["items"]]
    assert listed["total"] == resolved["value"]
    escalated = client.get(after[("escalated_auto", None)]["cases_url"] + "&limit=500").json()
    assert case.id in [c["id"] for c in escalated["items"]]


def test_a_second_sweep_at_the_same_moment_does_nothing_new(client: TestClient, db: Database,
                                                             api_key: str, clock: Clock) -> None:
    clock.now = bj(2024, 9, 30, 15, 0)
    number = post_hazard(client, db, api_key)
    at = bj(2024, 10, 8, 16, 30)
    first = service.sweep(db, now=at)
    assert case_by_number(db, number).id in first.escalated
    second = service.sweep(db, now=at)
    assert second.escalated == [] and second.flagged == []


def overdue_flags(db: Database, case_id: int) -> list[CaseEvent]:
    with db.sessions() as session:
        return list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                                            CaseEvent.action == "overdue")))


def accept_as_system(db: Database, case_id: int, now: datetime) -> None:
    with db.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        service.act(session, actor=None, case_id=case_id, action="accept", now=now,
                    body=ActionRequest(version=case.version))


def test_overdue_cases_that_cannot_escalate_are_flagged_once(client: TestClient, db: Database,
                                                             api_key: str, clock: Clock) -> None:
    clock.now = bj(2024, 9, 30, 15, 0)
    case_id = case_by_number(db, post_hazard(client, db, api_key)).id
    levels = []
    for _ in range(3):
        current = db_case(db, case_id)
        assert current.deadline_at is not None
        moment = current.deadline_at + timedelta(minutes=1)
        assert case_id in service.sweep(db, now=moment).escalated
        levels.append(db_case(db, case_id).level)
        if len(levels) == 1:
            # Escalated but not yet accepted at the township: no escalate move from that state, so
            # passing the township deadline flags it instead.
            township_deadline = db_case(db, case_id).deadline_at
            assert township_deadline is not None
            late = township_deadline + timedelta(minutes=1)
            report = service.sweep(db, now=late)
            assert case_id in report.flagged and case_id not in report.escalated
            assert db_case(db, case_id).level == "township"
            assert [f.level for f in overdue_flags(db, case_id)] == ["township"]
            accept_as_system(db, case_id, late)
            continue
        accept_as_system(db, case_id, moment)
    assert levels == ["township", "county", "city"]

    city = db_case(db, case_id)
    assert city.deadline_at is not None and city.status == "accepted"
    moment = city.deadline_at + timedelta(minutes=1)
    report = service.sweep(db, now=moment)
    assert case_id in report.flagged and case_id not in report.escalated
    assert db_case(db, case_id).level == "city"
    again = service.sweep(db, now=moment + timedelta(hours=1))
    assert case_id not in again.flagged and case_id not in again.escalated
    assert [f.level for f in overdue_flags(db, case_id)] == ["township", "city"]
    login(client, "city.operator")
    clock.now = moment
    seen = client.get(f"/api/cases/{case_id}").json()
    assert seen["overdue"] is True and seen["remaining_seconds"] < 0


def test_figures_are_scoped_to_the_viewer(client: TestClient, db: Database) -> None:
    township = township_of(db)
    village1 = scope_of(db, "village1.operator")
    login(client, "village1.operator")
    own = client.get("/api/cases/figures")
    assert own.status_code == 200 and own.json()["division_code"] == village1
    # Above or beside one's own scope answers like a missing division.
    assert client.get("/api/cases/figures", params={"division": township}).status_code == 404
    other = scope_of(db, "village2.operator")
    assert client.get("/api/cases/figures", params={"division": other}).status_code == 404
    assert client.get("/api/cases/figures/cases", params={"division": other, "figure": "reported"}
                      ).status_code == 404
    bad = client.get("/api/cases/figures", params={"division": "12345"})
    assert bad.status_code == 422
    wrong = client.get("/api/cases/figures/cases", params={"figure": "resolved_at_level"})
    assert wrong.status_code == 422 and "level" in wrong.json()["message"]
    backwards = client.get("/api/cases/figures", params={"start": "2024-10-02", "end": "2024-10-01"})
    assert backwards.status_code == 422


def test_figures_page_lists_each_figure_with_a_link_to_its_cases(client: TestClient, db: Database,
                                                                 api_key: str, clock: Clock) -> None:
    clock.now = bj(2024, 9, 30, 15, 0)
    number = post_hazard(client, db, api_key)
    service.escalate_overdue(db, now=bj(2024, 10, 8, 16, 30))
    login(client, "township.operator")
    page = client.get("/cases/figures", params={"start": "2024-09-01", "end": "2024-10-31"})
    assert page.status_code == 200
    assert "案件统计" in page.text and 'data-figure="escalated_auto"' in page.text
    assert "超时自动上报" in page.text
    cases = client.get("/cases/figures/cases", params={"figure": "escalated_auto", "start": "2024-09-01",
                                                       "end": "2024-10-31"})
    assert cases.status_code == 200 and number in cases.text
    # The case page shows the breach.
    clock.now = bj(2024, 10, 20, 10, 0)
    case_page = client.get(f"/cases/{case_by_number(db, number).id}")
    assert "已超时" in case_page.text
    other = scope_of(db, "village2.operator")
    assert client.get("/cases/figures", params={"division": other}).status_code == 404


def test_cli_sweep_escalates_as_of_a_given_moment(client: TestClient, db: Database, settings: Settings,
                                                  api_key: str, clock: Clock) -> None:
    clock.now = bj(2024, 9, 30, 15, 0)
    case_id = case_by_number(db, post_hazard(client, db, api_key)).id
    env = {**os.environ, "CITYOPS_DATABASE_URL": settings.database_url, "CITYOPS_ENVIRONMENT": "test"}
    cli = [sys.executable, "-m", "cityops.cli", "cases", "sweep"]
    bad = subprocess.run([*cli, "--now", "tomorrow"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "error: --now 'tomorrow'" in bad.stderr and "Traceback" not in bad.stderr
    done = subprocess.run([*cli, "--now", "2024-10-08T16:30:00+08:00", "--json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert case_id in json.loads(done.stdout)["escalated"]
    assert db_case(db, case_id).level == "township"


def test_waiting_on_the_reporter_stops_the_clock(client: TestClient, db: Database, api_key: str,
                                                 clock: Clock) -> None:
    clock.now = bj(2024, 9, 30, 15, 0)
    case_id = case_by_number(db, post_hazard(client, db, api_key)).id
    login(client, "village1.operator")
    seen = client.get(f"/api/cases/{case_id}").json()
    seen = act(client, seen, "accept")
    seen = act(client, seen, "start")
    clock.now = bj(2024, 9, 30, 16, 0)  # 7 of the 8 working hours left
    seen = act(client, seen, "pause", reason="等待反映人补充具体位置")
    # Paused past the original deadline: no escalation, no overdue flag.
    assert case_id not in service.sweep(db, now=bj(2024, 10, 8, 17, 0)).escalated
    clock.now = bj(2024, 10, 8, 17, 0)
    assert client.get(f"/api/cases/{case_id}").json()["overdue"] is False
    clock.now = bj(2024, 10, 9, 9, 30)
    seen = act(client, seen, "resume")
    # 7 working hours from 09:30 on 9 October: 6 that day, 1 on the 10th.
    assert datetime.fromisoformat(seen["deadline_at"]) == bj(2024, 10, 10, 9, 30)
    timeline = client.get(f"/api/cases/{case_id}/timeline").json()
    assert datetime.fromisoformat(timeline[-1]["data"]["deadline_at"]) == bj(2024, 10, 10, 9, 30)
