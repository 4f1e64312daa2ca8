from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from cityops.config import Settings
from cityops.core import templating
from cityops.core.templating import NavItem, fmt_dt, register_nav, visible_nav


def test_unknown_page_shows_a_chinese_error_page_by_default(bare_client: TestClient) -> None:
    response = bare_client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "页面不存在" in response.text
    assert 'href="/"' in response.text
    assert "Traceback" not in response.text


def test_error_page_in_english(bare_client: TestClient) -> None:
    response = bare_client.get("/no-such-page?lang=en")
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert "Back to the home page" in response.text
    assert "页面不存在" not in response.text


def test_api_errors_stay_json(bare_client: TestClient) -> None:
    response = bare_client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"


def test_error_page_escapes_the_reason(bare_client: TestClient) -> None:
    from starlette.requests import Request

    scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": [],
             "app": bare_client.app, "state": {}}
    response = templating.render_error(Request(scope), 422, "<script>alert(1)</script>")
    body = bytes(response.body).decode()
    assert response.status_code == 422
    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;" in body
    assert "输入有误" in body


def test_unauthenticated_page_redirects_to_login() -> None:
    from starlette.requests import Request

    scope = {"type": "http", "method": "GET", "path": "/map", "query_string": b"lang=en", "headers": [],
             "state": {}}
    response = templating.render_error(Request(scope), 401, "sign in first")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/map%3Flang%3Den"


GRID_WORKER = SimpleNamespace(username="gw", display_name="网格员甲", role="grid_worker")


def test_navigation_hidden_before_sign_in_and_ordered_after() -> None:
    register_nav(NavItem("test-b", "Map", "/test-b", order=9001))
    register_nav(NavItem("test-a", "Home", "/test-a", order=9000))
    assert visible_nav(None) == []
    keys = [item.key for item in visible_nav(GRID_WORKER)]
    assert keys.index("test-a") < keys.index("test-b")


def test_navigation_key_cannot_be_taken_twice() -> None:
    register_nav(NavItem("test-dup", "Map", "/one"))
    register_nav(NavItem("test-dup", "Map", "/one"))  # the same item again is fine
    with pytest.raises(ValueError, match="test-dup"):
        register_nav(NavItem("test-dup", "Map", "/two"))


def test_navigation_shows_only_what_the_role_may_use() -> None:
    register_nav(NavItem("test-places", "Map", "/test-places", permission="places.read"))
    register_nav(NavItem("test-audit", "Map", "/test-audit", permission="audit.read"))
    keys = [item.key for item in visible_nav(GRID_WORKER)]
    assert "test-places" in keys
    assert "test-audit" not in keys
    assert "test-places" not in [item.key for item in visible_nav(SimpleNamespace(role="citizen"))]


def test_timestamps_shown_in_shanghai_time() -> None:
    assert fmt_dt(datetime(2024, 9, 27, 16, 30, tzinfo=UTC)) == "2024-09-28 00:30"
    assert fmt_dt(None) == ""


def test_a_crash_shows_a_friendly_page_without_a_stack_trace(settings: Settings) -> None:
    from cityops.app import create_app

    app = create_app(settings)

    def broken() -> None:
        raise RuntimeError("secret internals at line 42")

    def needs_number(n: int) -> dict[str, int]:
        return {"n": n}

    app.add_api_route("/test-broken", broken)
    app.add_api_route("/test-number", needs_number)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        crashed = test_client.get("/test-broken")
        assert crashed.status_code == 500
        assert "系统出错了" in crashed.text
        assert "secret internals" not in crashed.text
        assert "Traceback" not in crashed.text
        invalid = test_client.get("/test-number?n=abc&lang=en")
        assert invalid.status_code == 422
        assert "Invalid input" in invalid.text
        assert "Traceback" not in invalid.text


def test_templates_show_timestamps_in_the_configured_timezone(settings: Settings) -> None:
    template = templating.environment().from_string("{{ at|fmt_dt }} / {{ at|fmt_dt('%H:%M') }}")
    at = datetime(2024, 9, 27, 23, 5, tzinfo=UTC)
    assert template.render(settings=settings, at=at) == "2024-09-28 07:05 / 07:05"
    utc = settings.model_copy(update={"display_timezone": "UTC"})
    assert template.render(settings=utc, at=at) == "2024-09-27 23:05 / 23:05"
