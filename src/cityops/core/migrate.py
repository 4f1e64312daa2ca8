"""Run Alembic migrations programmatically (used by `cityops db ...`, `./run demo` and tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from cityops.core.db import Base, ensure_sqlite_dir

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave out of autogenerate and model comparisons what packages manage by hand (e.g. full-text
    indexes), registered in Base.metadata.info["unmanaged"], or by pattern (tables made at run time,
    such as day partitions) in Base.metadata.info["unmanaged_patterns"]."""
    info = Base.metadata.info
    if name in info.get("unmanaged", ()):
        return False
    return name is None or not any(pattern.fullmatch(name) for pattern in info.get("unmanaged_patterns", ()))


def upgrade(database_url: str, revision: str = "head") -> None:
    ensure_sqlite_dir(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
