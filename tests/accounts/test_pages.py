"""The sign-in page, the users pages and the audit page, as a browser uses them."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from cityops.accounts.demo import DEMO_PASSWORD
from cityops.core.auth.middleware import ANON_COOKIE, SESSION_COOKIE
from cityops.core.db import Database
from tests.accounts.helpers import get_user, login, user_id


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf_token field in the form"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = DEMO_PASSWORD, next_url: str = "/users"):  # type: ignore[no-untyped-def]
    page = client.get("/login", params={"next": next_url})
    return client.post("/login", data={"username": username, "password": password, "next": next_url,
                                       "csrf_token": form_token(page.text)}, follow_redirects=False)


def test_sign_in_page_form_signs_in_and_returns_to_the_page_asked_for(client: TestClient) -> None:
    asked = client.get("/users", follow_redirects=False)
    assert asked.status_code == 303
    assert asked.headers["location"] == "/login?next=/users"
    page = client.get(asked.headers["location"])
    assert page.status_code == 200
    assert "登录" in page.text  # Chinese by default
    assert ANON_COOKIE in client.cookies
    response = sign_in(client, "county.operator")
    assert response.status_code == 303
    assert response.headers["location"] == "/users"
    assert SESSION_COOKIE in client.cookies
    users = client.get("/users")
    assert users.status_code == 200
    assert "county.operator" in users.text
    # Signed in already: the login page sends the user on.
    assert client.get("/login", follow_redirects=False).status_code == 303


def test_wrong_password_shows_the_form_again_with_a_generic_message(client: TestClient) -> None:
    response = sign_in(client, "county.operator", "wrong-password-1")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert SESSION_COOKIE not in client.cookies
    english = client.get("/login", params={"lang": "en"})
    response = client.post("/login", data={"username": "nobody", "password": "x", "next": "/",
                                           "csrf_token": form_token(english.text)})
    assert response.status_code == 401
    assert "Wrong username or password." in response.text


def test_the_sign_in_form_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "admin", "password": DEMO_PASSWORD, "next": "/"})
    assert response.status_code == 403
    assert SESSION_COOKIE not in client.cookies
    forged = client.post("/login", data={"username": "admin", "password": DEMO_PASSWORD, "next": "/",
                                         "csrf_token": "made-up"})
    assert forged.status_code == 403


def test_sign_in_never_redirects_off_site(client: TestClient) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = sign_in(client, "admin", next_url=target)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        client.cookies.clear()


def test_lockout_message_on_the_page(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    for _ in range(settings.login_max_failures):
        sign_in(client, "leader", "wrong-password-1")
    response = sign_in(client, "leader")
    assert response.status_code == 429
    assert "登录失败次数过多" in response.text


def test_sign_out_form_ends_the_session(client: TestClient) -> None:
    sign_in(client, "admin")
    home = client.get("/users")
    response = client.post("/logout", data={"csrf_token": form_token(home.text)}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/users", follow_redirects=False).status_code == 303


def test_users_page_is_scoped_and_masked(client: TestClient, db: Database) -> None:
    sign_in(client, "village1.operator")
    page = client.get("/users")
    assert "village1.grid" in page.text
    assert "village2.grid" not in page.text
    grid_worker = get_user(db, "village1.grid")
    assert grid_worker.phone and grid_worker.phone not in page.text
    other = client.get(f"/users/{user_id(db, 'village2.operator')}")
    assert other.status_code == 404
    detail = client.get(f"/users/{grid_worker.id}")
    assert detail.status_code == 200
    assert grid_worker.phone in detail.text  # a centre operator sees it, and the read is audited
    assert "审计日志" in detail.text
    audit = client.get("/audit", params={"action": "pii_read"})
    assert audit.status_code == 200
    assert str(grid_worker.id) in audit.text


def test_audit_and_users_pages_need_their_permissions(client: TestClient) -> None:
    login(client, "citizen")
    assert client.get("/audit").status_code == 403
    assert client.get("/users").status_code == 403
    client.cookies.clear()
    login(client, "village1.grid")
    assert client.get("/audit").status_code == 403
    assert client.get("/users").status_code == 200


def test_navigation_shows_what_the_role_may_open(client: TestClient) -> None:
    login(client, "admin")
    page = client.get("/users")
    assert 'href="/audit"' in page.text
    client.cookies.clear()
    login(client, "village1.grid")
    page = client.get("/users")
    assert 'href="/audit"' not in page.text
    assert "网格员" in page.text  # the role's name in the user menu
