"""Shared fixtures.

Each test gets its own SQLite file copied from a template built once per worker (schema + the
synthetic Hebi at small scale), so no test sees another's leftovers. Tests that need a real service
(PostgreSQL, Mosquitto, NATS, chromium) call `require_service`: with CI=true a missing service is a
failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from cityops import all_models
from cityops.app import create_app
from cityops.config import Settings
from cityops.core.db import Base, Database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("CITYOPS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def require_service(name: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port}: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def make_settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": f"sqlite:///{tmp / 'cityops.db'}",
        "secret_key": "test-secret-" + "x" * 32,
        "attachments_dir": tmp / "files",
        "mqtt_credentials_file": tmp / "mqtt" / "credentials",
        "mqtt_broker_dir": tmp / "mqtt",
        "run_scheduler": False,
        # Tests see an event's effects as soon as the request returns; the background mode has its own test.
        "events_in_background": False,
        # The in-process bus, whatever the environment says; the NATS transport has its own tests.
        "nats_url": "",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Schema plus the small synthetic Hebi, built once per test worker."""
    from cityops.core.seeding import seed

    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    all_models.load()
    Base.metadata.create_all(db.engine)
    seed(db, scale="small", seed=7, quiet=True, files_root=path.parent / "files")
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def db(settings: Settings, template_db: Path) -> Iterator[Database]:
    target = Path(settings.database_url.split("///", 1)[1])
    shutil.copyfile(template_db, target)
    database = Database(settings.database_url)
    yield database
    database.dispose()


@pytest.fixture
def empty_db(settings: Settings) -> Iterator[Database]:
    """A schema with no data, for tests of seeding and imports."""
    all_models.load()
    database = Database(settings.database_url)
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def app(settings: Settings, db: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, db=db)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[str]:
    """The real app served by uvicorn on a free port, in a background thread, over the test's database."""
    import threading

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(settings, db=db), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # start-up, or an early crash, without a fixed sleep
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        thread.join(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"cityops_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
