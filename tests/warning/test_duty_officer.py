"""The duty officer (值班员): issues warnings and confirms what the stations propose in the division of
their scope. An officer of another county is refused with the reason (and nothing changes), and a grid
worker may do neither."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from cityops.accounts import service as accounts_service
from cityops.core.auth.roles import has_permission
from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.warning.helpers import issue_body, square_in
from tests.warning.test_monitor import load_river_levels, messages, send, station_warnings

QIXIAN = "410622"  # 淇县: the river station qihe_gaocun warns for three of its villages
XUNXIAN = "410621"  # 浚县: gcz_weixian and weihe_daokou warn for villages here
PASSWORD = "Duty-officer-2024"


def officer_of(db: Database, county: str) -> str:
    """A duty officer of a county's operations centre (scope: the county); their username."""
    username = f"duty.{county}"
    with db.session() as session:
        accounts_service.create_user(
            session, username=username, display_name="县值班员", role="duty_officer", password=PASSWORD,
            org_unit_code=f"centre-{county}", scope_code=county)
    return username


def pending_red(db: Database, code: str) -> int:
    """Readings taking a river station to red, which waits for an operator (the shipped file confirms
    orange and red); the pending warning's id."""
    send(db, code, [5.0])  # above red at both stations used here (gcz_weixian 4.7, qihe_gaocun 4.5)
    [warning] = station_warnings(db, code)
    assert warning.status == "pending" and warning.level == "red"
    return warning.id


def refused(answer: Any, *words: str) -> None:
    assert answer.status_code == 403, answer.text
    for word in words:
        assert word in answer.json()["message"]


def test_the_role_may_issue_and_respond_but_not_dispatch_cases() -> None:
    class Officer:
        role = "duty_officer"

    for permission in ("warnings.view", "warnings.issue", "warnings.respond", "places.read", "devices.view"):
        assert has_permission(Officer(), permission)
    for permission in ("cases.dispatch", "users.manage", "pii.view"):
        assert not has_permission(Officer(), permission)


def test_the_citys_duty_officer_issues_by_hand_and_confirms_a_stations_red(
    client: TestClient, db: Database
) -> None:
    load_river_levels(db)
    pending = pending_red(db, "gcz_weixian")
    login(client, "duty.officer")  # the demo's duty officer of the city
    issued = client.post("/api/warnings", json=issue_body(db, level="red", division_codes=[XUNXIAN]))
    assert issued.status_code == 201, issued.text
    assert issued.json()["status"] == "issued" and issued.json()["level"] == "red"
    confirmed = client.post("/api/warnings/stations/gcz_weixian/confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["warning_status"] == "issued" and confirmed.json()["warning_level"] == "red"
    assert [(m.msg_type, m.level) for m in messages(db, pending)] == [("Alert", "red")]
    lifted = client.post(f"/api/warnings/{issued.json()['id']}/cancel", json={"reason": "降雨已停止"})
    assert lifted.status_code == 200 and lifted.json()["status"] == "cancelled"


def test_a_duty_officer_of_another_county_is_refused_with_the_reason(
    client: TestClient, db: Database
) -> None:
    load_river_levels(db)
    theirs = pending_red(db, "gcz_weixian")  # 浚县's station
    ours = pending_red(db, "qihe_gaocun")  # 淇县's station
    login(client, "admin")
    xun = client.post("/api/warnings", json=issue_body(db, division_codes=[XUNXIAN])).json()
    logout(client)

    login(client, officer_of(db, QIXIAN), PASSWORD)
    # In their own county they issue and confirm ...
    own = client.post("/api/warnings", json=issue_body(db, division_codes=[QIXIAN]))
    assert own.status_code == 201, own.text
    confirmed = client.post("/api/warnings/stations/qihe_gaocun/confirm")
    assert confirmed.status_code == 200 and confirmed.json()["warning_status"] == "issued"
    assert [m.msg_type for m in messages(db, ours)] == ["Alert"]
    # ... but not in another: each refusal names what lies outside and the officer's scope.
    refused(client.post("/api/warnings", json=issue_body(db, division_codes=[XUNXIAN])),
            XUNXIAN, "outside your scope 410622")
    refused(client.post("/api/warnings", json=issue_body(db, division_codes=[], area=square_in(db, XUNXIAN),
                                                         area_desc="浚县城区")),
            "reaches beyond", "410622")
    refused(client.post("/api/warnings/stations/gcz_weixian/confirm"),
            "station gcz_weixian", "outside your scope 410622")
    refused(client.post(f"/api/warnings/{theirs}/issue"), f"warning {theirs}", "outside your scope")
    refused(client.post(f"/api/warnings/{xun['id']}/update", json={"level": "red"}), "outside your scope")
    refused(client.post(f"/api/warnings/{xun['id']}/cancel", json={"reason": "误报"}), "outside your scope")
    # Nothing changed: 浚县's station still waits, its warning is as the city issued it.
    [waiting] = station_warnings(db, "gcz_weixian")
    assert waiting.status == "pending" and messages(db, theirs) == []
    logout(client)
    login(client, "admin")
    assert client.get(f"/api/warnings/{xun['id']}").json()["status"] == "issued"
    assert client.get(f"/api/warnings/{xun['id']}").json()["level"] == "blue"


def test_a_grid_worker_may_neither_issue_nor_confirm(client: TestClient, db: Database) -> None:
    load_river_levels(db)
    pending = pending_red(db, "gcz_weixian")
    login(client, "village1.grid")
    refused(client.post("/api/warnings", json=issue_body(db)), "warnings.issue")
    refused(client.post("/api/warnings/stations/gcz_weixian/confirm"), "warnings.issue")
    assert client.get("/api/warnings").status_code == 200  # they read warnings all the same
    [still] = station_warnings(db, "gcz_weixian")
    assert still.id == pending and still.status == "pending"
