"""Signing in and out through the API, sessions, tokens, CSRF and rate limiting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from cityops.accounts import service
from cityops.accounts.demo import DEMO_PASSWORD
from cityops.core.auth import sessions
from cityops.core.auth.middleware import SESSION_COOKIE
from cityops.core.auth.models import ApiToken, AuditEntry, User, WebSession
from cityops.core.auth.security import SESSION_SALT, sign
from cityops.core.auth.sessions import verified_tokens
from cityops.core.db import Database, utcnow
from tests.accounts.helpers import login, user_id


def issue(db: Database, username: str, days: int = 30) -> str:
    with db.session() as session:
        return service.create_token(session, actor=None, username=username, name="test", days=days).token


def try_login(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> int:
    return client.post("/api/auth/login", json={"username": username, "password": password}).status_code


def audit_actions(db: Database, username: str) -> list[str]:
    with db.sessions() as session:
        return list(session.scalars(select(AuditEntry.action).where(AuditEntry.username == username)
                                    .order_by(AuditEntry.id)))


def test_login_sets_an_httponly_session_cookie_and_me_answers(client: TestClient) -> None:
    response = client.post("/api/auth/login",
                           json={"username": "village1.operator", "password": DEMO_PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # settings.secure_cookies is off in tests
    body = response.json()
    assert body["user"]["username"] == "village1.operator"
    assert body["csrf_token"]
    me = client.get("/api/me").json()
    assert me["role"] == "centre_operator"
    assert me["auth_method"] == "session"
    assert "pii.view" in me["permissions"]
    assert "*" not in (me["phone"] or "")  # one's own data is never masked


def test_secure_cookie_flag_follows_the_settings(settings, db: Database) -> None:  # type: ignore[no-untyped-def]
    from cityops.app import create_app

    secure = settings.model_copy(update={"secure_cookies": True})
    with TestClient(create_app(secure, db=db), base_url="https://testserver") as client:
        response = client.post("/api/auth/login", json={"username": "admin", "password": DEMO_PASSWORD})
    assert "Secure" in response.headers["set-cookie"]


def test_login_and_logout_are_audited_and_logout_ends_the_session(client: TestClient, db: Database) -> None:
    login(client, "township.operator")
    old_cookie = client.cookies[SESSION_COOKIE]
    assert client.post("/api/auth/logout").status_code == 200
    assert client.get("/api/me").status_code == 401
    client.cookies.set(SESSION_COOKIE, old_cookie)  # a copy of the cookie no longer works
    response = client.get("/api/me")
    assert response.status_code == 401
    assert "session has ended" in response.json()["message"]
    assert audit_actions(db, "township.operator")[-2:] == ["login", "logout"]


def test_wrong_password_and_unknown_user_get_the_same_generic_401(client: TestClient, db: Database) -> None:
    wrong = client.post("/api/auth/login", json={"username": "admin", "password": "not-the-password-1"})
    unknown = client.post("/api/auth/login", json={"username": "nobody", "password": DEMO_PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    generic = {"error": "unauthorized", "message": "invalid username or password"}
    assert wrong.json() == unknown.json() == generic
    assert SESSION_COOKIE not in client.cookies
    assert audit_actions(db, "admin") == ["login_failed"]
    assert audit_actions(db, "nobody") == ["login_failed"]


def test_repeated_failures_lock_the_username_with_429(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    for _ in range(settings.login_max_failures):
        bad = client.post("/api/auth/login", json={"username": "leader", "password": "guessing-123456"})
        assert bad.status_code == 401
    # Now even the right password waits: the lock does not tell a guess from the real thing.
    locked = client.post("/api/auth/login", json={"username": "leader", "password": DEMO_PASSWORD})
    assert locked.status_code == 429
    wait = int(locked.headers["Retry-After"])
    assert 0 < wait <= settings.login_lockout_s
    assert f"try again in {wait} s" in locked.json()["message"]
    assert locked.json()["detail"]["retry_after_s"] == wait
    # Another account is not affected.
    assert try_login(client, "admin") == 200


def test_a_success_resets_the_failure_count(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    for _ in range(settings.login_max_failures - 1):
        client.post("/api/auth/login", json={"username": "leader", "password": "guessing-123456"})
    login(client, "leader")
    for _ in range(settings.login_max_failures - 1):
        assert client.post("/api/auth/login",
                           json={"username": "leader", "password": "guessing-123456"}).status_code == 401
    assert try_login(client, "leader") == 200


def test_one_address_guessing_many_usernames_is_locked_too(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    for i in range(settings.login_max_failures * 4):
        client.post("/api/auth/login", json={"username": f"guess{i}", "password": "guessing-123456"})
    response = client.post("/api/auth/login", json={"username": "admin", "password": DEMO_PASSWORD})
    assert response.status_code == 429


def test_forged_or_tampered_cookies_are_treated_as_signed_out(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    login(client, "admin")
    genuine = client.cookies[SESSION_COOKIE]
    for forged in ("garbage", genuine[:-3] + "abc",
                   sign("another-secret-" + "y" * 32, SESSION_SALT, "made-up-key"),
                   sign(settings.secret_key, SESSION_SALT, "made-up-key")):
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, forged)
        response = client.get("/api/me")
        assert response.status_code == 401, forged
        assert response.json()["error"] == "unauthorized"
        message = response.json()["message"]
        assert "tampered" in message or "session has ended" in message
        page = client.get("/users", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=/users")
        assert f'{SESSION_COOKIE}=""' in page.headers.get("set-cookie", "")  # the bad cookie is cleared


def test_an_expired_session_is_refused(client: TestClient, db: Database) -> None:
    login(client, "admin")
    with db.session() as session:
        session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = client.get("/api/me")
    assert response.status_code == 401
    assert "expired" in response.json()["message"]


def test_disabling_an_account_ends_its_sessions(client: TestClient, db: Database) -> None:
    login(client, "leader")
    with db.session() as session:
        service.set_active(session, username="leader", active=False)
    response = client.get("/api/me")
    assert response.status_code == 401
    assert "disabled" in response.json()["message"]


def test_a_verified_token_is_asked_for_again_after_a_few_seconds(client: TestClient, db: Database,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens are verified against the database once every few seconds, not on every request: an
    account disabled by another process is refused once that interval is over, and the token's own
    expiry is checked on every request in between."""
    token = issue(db, "county.operator")
    headers = {"Authorization": f"Bearer {token}"}
    clock = [1000.0]
    monkeypatch.setattr(sessions.verified_tokens, "clock", lambda: clock[0])
    assert client.get("/api/me", headers=headers).status_code == 200
    with db.session() as session:  # as the CLI would, in another process: this one is not told
        session.execute(update(User).where(User.username == "county.operator").values(is_active=False))
    assert client.get("/api/me", headers=headers).status_code == 200
    clock[0] += sessions.TOKEN_CACHE_S
    refused = client.get("/api/me", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["message"] == "account is disabled"

    token2 = issue(db, "city.operator")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token2}"}).status_code == 200
    with db.session() as session:
        session.execute(update(ApiToken).where(ApiToken.prefix == token2[:12])
                        .values(expires_at=utcnow() - timedelta(seconds=1)))
    verified = sessions.verified_tokens.get(token2)
    assert verified is not None  # still known to this process ...
    sessions.verified_tokens.put(token2, verified, utcnow() - timedelta(seconds=1))  # ... with its expiry
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token2}"}).status_code == 401


def test_a_token_due_for_a_refresh_is_refreshed_by_one_request() -> None:
    tokens = sessions.VerifiedTokens(ttl_s=5.0)
    user = User(username="gateway")
    tokens.put("cot_x", user, None)
    assert tokens.get("cot_x") is user
    entry = tokens._entries[sessions.sha256_hex("cot_x")]
    entry[2] = 0.0  # the refresh is due
    assert tokens.get("cot_x") is None  # this caller asks the database ...
    assert tokens.get("cot_x") is user  # ... while the others go on with what is known


def test_api_tokens_authenticate_until_expired_or_revoked(client: TestClient, db: Database) -> None:
    token = issue(db, "county.operator")
    headers = {"Authorization": f"Bearer {token}"}
    me = client.get("/api/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["username"] == "county.operator"
    assert me.json()["auth_method"] == "token"
    with db.sessions() as session:
        stored = session.scalars(select(ApiToken)).all()
    assert [t.prefix for t in stored] == [token[:12]]
    assert token not in {t.token_hash for t in stored}  # only the hash is kept

    with db.session() as session:
        session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    # Written behind the server's back, as another process would: seen once the verified token's
    # few seconds are over (forgotten here rather than waited for).
    verified_tokens.forget()
    expired = client.get("/api/me", headers=headers)
    assert expired.status_code == 401
    assert expired.json()["message"] == "token expired"
    assert "invalid_token" in expired.headers["www-authenticate"]

    token2 = issue(db, "county.operator")
    with db.session() as session:
        service.revoke_token(session, actor=None, prefix=token2[:12])
    revoked = client.get("/api/me", headers={"Authorization": f"Bearer {token2}"})
    assert revoked.status_code == 401
    assert revoked.json()["message"] == "token revoked"

    for bad in ("Bearer cot_madeup", "Basic YWRtaW46eA==", "Bearer "):
        response = client.get("/api/me", headers={"Authorization": bad})
        assert response.status_code == 401, bad
        assert "invalid token" in response.json()["message"]


def test_bearer_requests_need_no_csrf_token(client: TestClient, db: Database) -> None:
    token = issue(db, "admin")
    response = client.post("/api/tokens", json={"name": "sensor gateway", "days": 7},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201
    assert response.json()["token"].startswith("cot_")


def test_cookie_requests_without_the_csrf_token_are_refused(client: TestClient) -> None:
    body = login(client, "admin", csrf_header=False)
    missing = client.post("/api/tokens", json={"name": "x"})
    assert missing.status_code == 403
    assert missing.json()["error"] == "csrf_failed"
    assert "CSRF token missing" in missing.json()["message"]
    wrong = client.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "not-it"})
    assert wrong.status_code == 403
    assert "does not match" in wrong.json()["message"]
    for method in ("put", "patch", "delete"):
        assert client.request(method.upper(), "/api/tokens/cot_whatever").status_code == 403
    ok = client.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": body["csrf_token"]})
    assert ok.status_code == 201


def test_csrf_token_in_a_form_field_is_accepted_and_the_body_still_reaches_the_route(
        client: TestClient) -> None:
    body = login(client, "admin", csrf_header=False)
    refused = client.post("/logout", data={"csrf_token": "wrong"}, follow_redirects=False)
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    assert client.get("/api/me").status_code == 200  # still signed in
    done = client.post("/logout", data={"csrf_token": body["csrf_token"]}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/api/me").status_code == 401


def test_another_sessions_token_does_not_pass(app, db: Database) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as first, TestClient(app) as second:
        token_first = login(first, "admin", csrf_header=False)["csrf_token"]
        login(second, "admin", csrf_header=False)
        response = second.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": token_first})
    assert response.status_code == 403


def test_change_password_signs_out_other_sessions(app, db: Database) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as phone, TestClient(app) as laptop:
        login(phone, "inspector")
        login(laptop, "inspector")
        wrong = laptop.post("/api/me/password",
                            json={"old_password": "nope-nope-1", "new_password": "Another-pass-99"})
        assert wrong.status_code == 422
        assert wrong.json()["field"] == "old_password"
        weak = laptop.post("/api/me/password", json={"old_password": DEMO_PASSWORD, "new_password": "short"})
        assert weak.status_code == 422
        changed = laptop.post("/api/me/password",
                              json={"old_password": DEMO_PASSWORD, "new_password": "Another-pass-99"})
        assert changed.status_code == 200
        assert laptop.get("/api/me").status_code == 200
        assert phone.get("/api/me").status_code == 401
    with TestClient(app) as again:
        assert try_login(again, "inspector") == 401
        login(again, "inspector", "Another-pass-99")
    assert user_id(db, "inspector") > 0


def test_login_rejects_a_form_encoded_body(client: TestClient) -> None:
    # JSON only: a cross-site form cannot post JSON without a CORS preflight (login CSRF).
    response = client.post("/api/auth/login", data={"username": "admin", "password": DEMO_PASSWORD})
    assert response.status_code == 422
    assert SESSION_COOKIE not in client.cookies
