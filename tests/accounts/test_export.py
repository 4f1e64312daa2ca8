"""Excel export of the user list and the audit log: the same rows as the page, in the viewer's scope."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from tests.accounts.helpers import login


def sheet_rows(body: bytes) -> list[list[object]]:
    ws = load_workbook(io.BytesIO(body)).active
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_user_export_is_scoped_masked_and_in_chinese(client: TestClient) -> None:
    login(client, "village1.operator")
    response = client.get("/users/export.xlsx")
    assert response.status_code == 200
    rows = sheet_rows(response.content)
    assert rows[0][:3] == ["用户名", "姓名", "角色"]
    usernames = {r[0] for r in rows[1:]}
    assert "village1.operator" in usernames and "village2.operator" not in usernames
    assert all("****" in str(r[5]) for r in rows[1:] if r[5])
    page = client.get("/users")
    assert f"{len(rows) - 1}" in page.text  # the page's count and the file agree


def test_user_export_follows_the_filter_and_language(client: TestClient) -> None:
    login(client, "admin")
    rows = sheet_rows(client.get("/users/export.xlsx", params={"role": "grid_worker", "lang": "en"}).content)
    assert rows[0][0] == "Username"
    assert len(rows) > 1 and {r[2] for r in rows[1:]} == {"Grid worker"}


def test_audit_export_lists_sign_ins(client: TestClient) -> None:
    login(client, "admin")
    rows = sheet_rows(client.get("/audit/export.xlsx", params={"action": "login"}).content)
    assert rows[0][0] == "时间"
    assert any(r[1] == "admin" for r in rows[1:])


def test_audit_export_needs_the_permission(client: TestClient) -> None:
    login(client, "citizen")
    assert client.get("/audit/export.xlsx").status_code == 403
