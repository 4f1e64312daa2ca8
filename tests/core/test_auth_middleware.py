"""Every unsafe route of the whole app refuses a cookie-authenticated request without the CSRF token."""

from __future__ import annotations

import re

from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from cityops.core.auth.middleware import LOGIN_PATHS, UNSAFE_METHODS
from tests.accounts.helpers import login


def test_every_unsafe_route_needs_the_csrf_token(app, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    login(client, "admin", csrf_header=False)
    checked = 0
    # FastAPI wraps included routers; iter_route_contexts flattens them to every registered route.
    for route in iter_route_contexts(app.routes):
        methods = getattr(route, "methods", None)
        if not route.path or not methods or route.path in LOGIN_PATHS:
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in sorted(set(methods) & UNSAFE_METHODS):
            response = client.request(method, path, json={})
            assert response.status_code == 403, (method, route.path, response.status_code)
            checked += 1
    assert checked >= 5  # logout, tokens, users, password... and whatever later packages add
    assert client.get("/api/me").status_code == 200  # none of them signed us out


def test_anonymous_unsafe_requests_are_refused_by_the_routes(client: TestClient) -> None:
    response = client.post("/api/tokens", json={"name": "x"})
    assert response.status_code == 401
    assert response.json()["message"] == "not signed in"
