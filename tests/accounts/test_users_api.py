"""Users, org units and the audit log through the API: scope, masking and personal-information audit."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.core.auth.models import AuditEntry, User
from cityops.core.auth.scope import in_scope
from cityops.core.db import Database
from tests.accounts.helpers import get_user, login, user_id


def all_users(client: TestClient, **params: object) -> list[dict[str, object]]:
    response = client.get("/api/users", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_a_village_operator_lists_only_their_village(client: TestClient, db: Database) -> None:
    me = get_user(db, "village1.operator")
    login(client, "village1.operator")
    items = all_users(client)
    names = {u["username"] for u in items}
    assert {"village1.operator", "village1.grid"} <= names
    assert "village2.operator" not in names and "village2.grid" not in names and "admin" not in names
    for u in items:
        assert in_scope(me.scope_code, str(u["division_code"])) or u["org_unit"]["id"] == me.org_unit_id  # type: ignore[index]


def test_another_villages_user_is_not_found(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    other = user_id(db, "village2.operator")
    missing = client.get("/api/users/999999")
    hidden = client.get(f"/api/users/{other}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["message"] == f"user {other} not found"


def test_a_township_operator_sees_its_villages_but_not_the_next_township(client: TestClient) -> None:
    login(client, "township.operator")
    names = {u["username"] for u in all_users(client)}
    assert {"village1.operator", "village1.grid", "township.operator"} <= names
    assert "village2.operator" not in names
    assert "county.operator" not in names


def test_the_city_admin_sees_every_account(client: TestClient, db: Database) -> None:
    login(client, "admin")
    with db.sessions() as session:
        total = session.scalar(select(func.count()).select_from(User))
    response = client.get("/api/users", params={"limit": 1})
    assert response.json()["total"] == total
    other = user_id(db, "village2.operator")
    assert client.get(f"/api/users/{other}").status_code == 200


def test_department_handlers_see_their_department_only(client: TestClient) -> None:
    login(client, "police.handler")
    items = all_users(client)
    assert items, "at least themselves"
    assert {u["org_unit"]["code"] for u in items} == {"dept-police"}  # type: ignore[index]


def test_public_roles_may_not_list_accounts(client: TestClient, db: Database) -> None:
    login(client, "citizen")
    assert client.get("/api/users").status_code == 403
    assert client.get(f"/api/users/{user_id(db, 'admin')}").status_code == 404
    me = user_id(db, "citizen")
    assert client.get(f"/api/users/{me}").status_code == 200  # oneself


def test_lists_are_masked_for_everyone(client: TestClient) -> None:
    login(client, "admin")
    items = all_users(client, q="village1")
    assert items
    for u in items:
        assert u["pii_visible"] is False
        assert "****" in str(u["phone"])
        assert "********" in str(u["id_number"])


def test_centre_operators_see_personal_information_and_the_read_is_audited(
        client: TestClient, db: Database) -> None:
    subject = get_user(db, "village1.grid")
    login(client, "village1.operator")
    body = client.get(f"/api/users/{subject.id}").json()
    assert body["pii_visible"] is True
    assert body["phone"] == subject.phone and body["id_number"] == subject.id_number
    with db.sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "pii_read")).one()
    assert entry.username == "village1.operator"
    assert entry.resource_type == "user" and entry.resource_id == str(subject.id)
    assert entry.division_code == subject.scope_code
    assert entry.detail == {"fields": ["phone", "id_number"]}
    assert entry.ip


def test_other_roles_get_masked_values_and_no_pii_read(client: TestClient, db: Database) -> None:
    subject = get_user(db, "village1.operator")
    login(client, "village1.grid")
    body = client.get(f"/api/users/{subject.id}").json()
    assert body["pii_visible"] is False
    assert subject.phone and body["phone"] == subject.phone[:3] + "****" + subject.phone[-4:]
    assert subject.id_number
    assert body["id_number"] == subject.id_number[:6] + "********" + subject.id_number[-4:]
    with db.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.username == "village1.grid")).all()
    assert "pii_read" not in actions
    assert "read" in actions


def test_org_units_show_departments_and_the_centres_in_scope(client: TestClient) -> None:
    login(client, "village1.operator")
    response = client.get("/api/org-units", params={"limit": 500})
    assert response.status_code == 200
    items = response.json()["items"]
    departments = [o for o in items if o["kind"] == "department"]
    centres = [o for o in items if o["kind"] == "centre"]
    assert len(departments) == 46
    me = client.get("/api/me").json()
    assert [c["code"] for c in centres] == [me["org_unit"]["code"]]


def test_audit_log_is_scoped_and_needs_the_permission(client: TestClient, db: Database) -> None:
    login(client, "village2.operator")
    login(client, "village1.operator")
    entries = client.get("/api/audit", params={"limit": 500}).json()["items"]
    assert entries
    me = get_user(db, "village1.operator")
    for e in entries:
        assert e["username"] == "village1.operator" or in_scope(me.scope_code, e["division_code"])
    assert "village2.operator" not in {e["username"] for e in entries}
    assert client.get("/api/audit", params={"action": "bogus"}).status_code == 422

    login(client, "village1.grid")
    denied = client.get("/api/audit")
    assert denied.status_code == 403
    assert "audit.read" in denied.json()["message"]


def test_admin_creates_users_with_precise_errors(client: TestClient, db: Database) -> None:
    login(client, "admin")
    village = get_user(db, "village1.operator")
    base = {"username": "new.worker", "password": "Grid-worker-2024", "display_name": "新网格员",
            "role": "grid_worker", "org_unit_code": f"centre-{village.scope_code}",
            "scope_code": village.scope_code, "phone": "13912345678", "id_number": "11010519491231002X"}
    cases = [
        ({"id_number": "110105194912310021"}, "id_number"),
        ({"phone": "12345"}, "phone"),
        ({"username": "A B"}, "username"),
        ({"password": "short"}, "password"),
        ({"role": "emperor"}, "role"),
        ({"scope_code": "410699999999"}, "scope_code"),
        ({"scope_code": "41"}, "scope_code"),
        ({"org_unit_code": "dept-police"}, "org_unit_code"),
        ({"org_unit_code": "nowhere"}, "org_unit_code"),
    ]
    for change, field in cases:
        response = client.post("/api/users", json={**base, **change})
        assert response.status_code == 422, (change, response.text)
        assert response.json()["field"] == field, response.json()
    created = client.post("/api/users", json=base)
    assert created.status_code == 201, created.text
    assert created.json()["id_number"] == "11010519491231002X"  # admin sees it; audited as pii_read
    again = client.post("/api/users", json=base)
    assert again.status_code == 409


def test_only_managers_create_users(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    response = client.post("/api/users", json={"username": "x.y.z", "password": "Grid-worker-2024",
                                               "display_name": "x", "role": "citizen"})
    assert response.status_code == 403
