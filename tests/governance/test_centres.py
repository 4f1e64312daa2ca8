"""Governance centres: duty rosters and the village's police officer, legal adviser and mediation
organisation, in scope, with phones masked per role, the dashboard and the roster export."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from cityops.core.auth.models import AuditEntry
from cityops.core.db import Database
from cityops.governance.centres.service import today
from tests.accounts.helpers import login, logout
from tests.cases.helpers import report, scope_of


def roster(person: str, phone: str, days: int = 2) -> dict[str, Any]:
    start = today()
    return {
        "entries": [
            {
                "duty_date": (start + timedelta(days=i)).isoformat(),
                "shift": "day",
                "person_name": person,
                "phone": phone,
            }
            for i in range(days)
        ]
    }


TRIO = {
    "police": {"name": "刘警官", "phone": "13511112222", "organisation": "大赉店派出所"},
    "legal": {"name": "陈律师", "phone": "13522223333", "organisation": "河南淇河律师事务所"},
    "mediation": {"name": "周主任", "phone": "13533334444", "organisation": "本村人民调解委员会"},
}


def test_a_village_operator_cannot_see_another_villages_roster(client: TestClient, db: Database) -> None:
    mine, theirs = scope_of(db, "village1.operator")[:12], scope_of(db, "village2.operator")[:12]
    login(client, "village2.operator")
    assert (
        client.put(
            f"/api/governance/centres/{theirs}/roster", json=roster("吴二村", "13900007777")
        ).status_code
        == 200
    )
    assert client.put(f"/api/governance/centres/{theirs}/trio", json=TRIO).status_code == 200
    logout(client)

    login(client, "village1.operator")
    assert (
        client.put(f"/api/governance/centres/{mine}/roster", json=roster("郑一村", "13900006666")).status_code
        == 200
    )
    assert client.get(f"/api/governance/centres/{theirs}").status_code == 404
    assert client.put(f"/api/governance/centres/{theirs}/roster", json={}).status_code == 404
    assert client.put(f"/api/governance/centres/{theirs}/trio", json=TRIO).status_code == 404
    assert client.get("/governance/centres", params={"code": theirs}).status_code == 404
    listed = client.get("/api/governance/centres", params={"limit": 500}).json()
    assert [c["division_code"] for c in listed["items"]] == [mine]
    assert listed["items"][0]["today"][0]["person_name"] == "郑一村"
    export = client.get("/api/governance/centres/rosters.xlsx")
    assert export.status_code == 200
    cells = [
        c
        for row in load_workbook(io.BytesIO(export.content), read_only=True)
        .worksheets[0]
        .iter_rows(values_only=True)
        for c in row
    ]
    assert "郑一村" in cells and "吴二村" not in cells and "13900007777" not in cells


def test_phones_are_masked_for_a_grid_worker_and_shown_to_an_operator_with_an_audit_entry(
    client: TestClient, db: Database
) -> None:
    village = scope_of(db, "village1.operator")[:12]
    login(client, "village1.operator")
    assert (
        client.put(
            f"/api/governance/centres/{village}/roster", json=roster("郑一村", "13900006666")
        ).status_code
        == 200
    )
    assert client.put(f"/api/governance/centres/{village}/trio", json=TRIO).status_code == 200
    seen = client.get(f"/api/governance/centres/{village}").json()
    assert seen["pii_visible"] is True and seen["today"][0]["phone"] == "13900006666"
    assert {c["role"]: c["phone"] for c in seen["trio"]}["police"] == "13511112222"
    with db.sessions() as session:
        assert (
            session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "pii_read",
                    AuditEntry.resource_type == "centre",
                    AuditEntry.username == "village1.operator",
                )
            ).first()
            is not None
        )
    logout(client)

    login(client, "village1.grid")
    seen = client.get(f"/api/governance/centres/{village}").json()
    assert seen["pii_visible"] is False and seen["today"][0]["phone"] == "139****6666"
    assert {c["role"]: c["phone"] for c in seen["trio"]}["legal"] == "135****3333"
    page = client.get("/governance/centres")
    assert page.status_code == 200
    assert "郑一村" in page.text and "139****6666" in page.text and "13900006666" not in page.text
    assert "刘警官" in page.text and "大赉店派出所" in page.text
    # A grid worker reads the roster but may not change it.
    assert (
        client.put(
            f"/api/governance/centres/{village}/roster", json=roster("冒名", "13900000000")
        ).status_code
        == 403
    )


def test_the_dashboard_counts_the_centres_open_cases_by_status(client: TestClient, db: Database) -> None:
    village = scope_of(db, "village1.operator")[:12]
    login(client, "village1.operator")
    before = client.get(f"/api/governance/centres/{village}").json()["open_cases"].get("reported", 0)
    report(client, db, village)
    report(client, db, village)
    after = client.get(f"/api/governance/centres/{village}").json()
    assert after["open_cases"]["reported"] == before + 2
    page = client.get("/governance/centres")
    assert page.status_code == 200 and 'data-status="reported"' in page.text


def test_bad_roster_and_trio_input_names_the_field(client: TestClient, db: Database) -> None:
    village = scope_of(db, "village1.operator")[:12]
    township = scope_of(db, "township.operator")[:9]
    login(client, "village1.operator")
    bad = {"entries": [{"duty_date": date.today().isoformat(), "shift": "noon", "person_name": "郑一村"}]}
    response = client.put(f"/api/governance/centres/{village}/roster", json=bad)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]["errors"]] == ["entries.0.shift"]
    logout(client)
    login(client, "township.operator")
    response = client.put(f"/api/governance/centres/{township}/trio", json=TRIO)
    assert response.status_code == 422 and response.json()["field"] == "code"


def test_a_township_sees_its_villages_centres(client: TestClient, db: Database) -> None:
    township = scope_of(db, "township.operator")[:9]
    village = scope_of(db, "village1.operator")[:12]
    login(client, "township.operator")
    page = client.get("/governance/centres")
    assert page.status_code == 200
    assert f"/governance/centres?code={village}" in page.text
    assert client.get(f"/api/governance/centres/{village}").status_code == 200
    levels = {
        c["level"] for c in client.get("/api/governance/centres", params={"limit": 500}).json()["items"]
    }
    assert levels == {"township", "village"} and township
