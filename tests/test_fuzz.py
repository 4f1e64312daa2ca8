"""Fuzzing the OpenAPI schema (schemathesis): no generated request, valid or not, gets a 5xx.

Every operation is called with generated parameters and bodies as the demo administrator (who may
reach every route) and as a citizen (who is refused most), over a fresh copy of the small demo city.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from sqlalchemy import select

from cityops.app import create_app
from cityops.core.auth.models import User
from cityops.core.auth.sessions import issue_token
from cityops.core.db import Database
from tests.conftest import make_settings

# The schema comes from an app over an empty in-memory database (it is the same for every app); the
# calls go to each test's own app and database.
schema = schemathesis.openapi.from_asgi(
    "/api/openapi.json", create_app(make_settings(Path(tempfile.gettempdir()), database_url="sqlite://")))


@pytest.fixture
def tokens(db: Database) -> dict[str, str]:
    issued = {}
    with db.session() as session:
        for username in ("admin", "citizen"):
            user = session.scalar(select(User).where(User.username == username))
            assert user is not None
            issued[username] = issue_token(session, user=user, name="fuzz", days=1)[1]
    return issued


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_generated_request_gets_a_server_error(case: Any, app: FastAPI, tokens: dict[str, str]) -> None:
    if case.query and case.query.get("wait"):  # a long poll waits out its timeout (see test_rpc.py)
        case.query["wait"] = False
    for username in ("admin", "citizen"):
        response = case.call(app=app, headers={"Authorization": f"Bearer {tokens[username]}"})
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} as {username} -> {response.status_code}: "
            f"{response.text[:500]}")
