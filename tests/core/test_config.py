from __future__ import annotations

import pytest
from pydantic import ValidationError

from cityops.config import DEFAULT_SECRET, Settings


def test_production_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="CITYOPS_SECRET_KEY"):
        Settings(environment="production", secret_key=DEFAULT_SECRET, secure_cookies=True)


def test_production_refuses_insecure_cookies() -> None:
    with pytest.raises(ValidationError, match="SECURE_COOKIES"):
        Settings(environment="production", secret_key="s" * 40, secure_cookies=False)


def test_production_accepts_a_real_secret() -> None:
    assert Settings(environment="production", secret_key="s" * 40, secure_cookies=True).secret_key


def test_database_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYOPS_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert Settings().database_url == "postgresql+psycopg://u@h/db"
    assert not Settings().is_sqlite
