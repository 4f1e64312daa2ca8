"""Fixtures for the web shell: an app without seeded data, for pages that need no records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cityops.app import create_app
from cityops.config import Settings


@pytest.fixture
def bare_client(settings: Settings) -> Iterator[TestClient]:
    """The real app over an empty SQLite file; enough for error pages and language handling."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client
