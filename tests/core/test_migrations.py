"""Migrations run up and down on SQLite and PostgreSQL, and match the models exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from cityops import all_models
from cityops.core import migrate
from cityops.core.db import Base


def assert_migrations_round_trip(url: str) -> None:
    all_models.load()
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": migrate.include_name})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        migrate.downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(url)
        assert migrate.current(url) is not None
    finally:
        engine.dispose()


def test_migrations_up_and_down_on_sqlite(tmp_path: Path) -> None:
    assert_migrations_round_trip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_migrations_up_and_down_on_postgresql(pg_url: str) -> None:
    assert_migrations_round_trip(pg_url)
