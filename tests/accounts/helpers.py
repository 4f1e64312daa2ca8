"""Helpers for any test that needs a signed-in user.

    from tests.accounts.helpers import login
    login(client, "village1.operator")      # the client now carries the session cookie and CSRF header

Demo usernames (all with password DEMO_PASSWORD): see cityops.accounts.demo.DEMO_USERNAMES.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.accounts.demo import DEMO_PASSWORD
from cityops.core.auth.models import User
from cityops.core.db import Database


def login(client: TestClient, username: str, password: str = DEMO_PASSWORD, *,
          csrf_header: bool = True) -> dict[str, Any]:
    """Sign in through the API. The client keeps the session cookie; with `csrf_header` it also sends
    the session's CSRF token on every request, so unsafe requests pass. Returns the API's answer."""
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    if csrf_header:
        client.headers["X-CSRF-Token"] = body["csrf_token"]
    return body


def logout(client: TestClient) -> None:
    client.post("/api/auth/logout")
    client.headers.pop("X-CSRF-Token", None)
    client.cookies.clear()


def user_id(db: Database, username: str) -> int:
    with db.sessions() as session:
        found = session.scalar(select(User.id).where(User.username == username))
    assert found is not None, f"no user {username!r}"
    return found


def get_user(db: Database, username: str) -> User:
    with db.sessions() as session:
        found = session.scalar(select(User).where(User.username == username))
    assert found is not None, f"no user {username!r}"
    return found
