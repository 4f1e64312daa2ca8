"""Database kernel: declarative base with a naming convention, UTC timestamps, engine and sessions."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from sqlalchemy import DateTime, MetaData, Table, create_engine, event, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive, we restore the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC timestamps")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy reads it as a plain dict


Model = TypeVar("Model", bound=Base)


def table_of(model: type[Base]) -> Table:
    """The model's table, for Core statements run on the session's connection (no autoflush, none of
    the ORM's bookkeeping per row)."""
    table: Table = model.__table__  # type: ignore[assignment]
    return table


def insert_or_ignore(session: Session, model: type[Base]) -> Any:
    """An INSERT into the model's table that can say ON CONFLICT DO NOTHING / DO UPDATE: SQLite and
    PostgreSQL share the clause, each through its own dialect's construct."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def insert_all(session: Session, model: type[Model], rows: list[dict[str, Any]], *, key: str) -> list[Model]:
    """Insert the rows with one multi-row INSERT and return them as persistent, loaded objects of the
    session, as if added and flushed.

    The ORM inserts added objects one statement each on SQLite: it needs their ids back in order and
    SQLite's RETURNING does not promise one. Here each new id is matched to its row by `key`, a
    unique column the rows carry. Column defaults are filled in first, so no attribute is left to
    load back from the database. Rows are keyed by column names, which must be the attribute names."""
    table = table_of(model)
    full: list[dict[str, Any]] = []
    for row in rows:
        values = dict(row)
        for column in table.columns:
            if column.key in values or column.primary_key or column.server_default is not None:
                continue
            default = column.default
            if default is None:
                values[column.key] = None
            elif default.is_callable:
                values[column.key] = default.arg(None)  # type: ignore[attr-defined]
            else:
                values[column.key] = default.arg  # type: ignore[attr-defined]
        full.append(values)
    if not full:
        return []
    [primary] = table.primary_key.columns
    inserted = session.connection().execute(insert(table).returning(table.c[key], primary), full)
    ids: dict[Any, int] = {row[0]: row[1] for row in inserted}
    objects = []
    for values in full:
        obj = model(**values, **{primary.key: ids[values[key]]})
        make_transient_to_detached(obj)
        session.add(obj)
        objects.append(obj)
    return objects


# SQLite takes one writer at a time. Left to itself, a writer that finds the file locked sleeps and
# polls (1, 2, 5 ... 100 ms), so under load most of a request's time is spent asleep after the lock was
# free. The gate queues writers instead: a thread lock within the process and an flock on "<db>-gate"
# across processes (several server workers, the CLI), taken at a transaction's first write and given
# back when it commits or rolls back; the waiting writer wakes as soon as it is free.
WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
GATE_TIMEOUT_S = 10.0


class WriteGate:
    def __init__(self, path: str) -> None:
        self.lock = threading.Lock()
        self.fd = os.open(f"{path}-gate", os.O_RDWR | os.O_CREAT, 0o644)

    def acquire(self) -> None:
        if not self.lock.acquire(timeout=GATE_TIMEOUT_S):
            raise sqlite3.OperationalError(f"database is locked (no write turn within {GATE_TIMEOUT_S:g} s)")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            self.lock.release()
            raise

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.lock.release()


def gated_connection_class(gate: WriteGate) -> type[sqlite3.Connection]:
    """A sqlite3 connection class that holds the gate from its first write until the transaction ends."""

    class GatedCursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: Any = (), /) -> Self:
            conn: GatedConnection = self.connection  # type: ignore[assignment]
            conn.before_statement(sql)
            try:
                return super().execute(sql, parameters)
            finally:
                conn.after_statement()

        def executemany(self, sql: str, parameters: Any, /) -> Self:
            conn: GatedConnection = self.connection  # type: ignore[assignment]
            conn.before_statement(sql)
            try:
                return super().executemany(sql, parameters)
            finally:
                conn.after_statement()

    class GatedConnection(sqlite3.Connection):
        holds_gate = False

        def cursor(self, factory: Any = GatedCursor) -> Any:
            return super().cursor(factory)

        def before_statement(self, sql: str) -> None:
            if not self.holds_gate and sql.lstrip()[:7].upper().startswith(WRITE_PREFIXES):
                gate.acquire()
                self.holds_gate = True

        def after_statement(self) -> None:
            if self.holds_gate and not self.in_transaction:  # DDL outside a transaction, or an error
                self.holds_gate = False
                gate.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.after_statement()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.after_statement()

        def close(self) -> None:
            try:
                super().close()
            finally:
                if self.holds_gate:
                    self.holds_gate = False
                    gate.release()

    return GatedConnection


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL; None for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def ensure_sqlite_dir(url: str) -> None:
    """SQLite creates the file but not its folder (var/ on a fresh clone)."""
    path = sqlite_file(url)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        ensure_sqlite_dir(url)
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        path = sqlite_file(url)
        if path:
            options["connect_args"]["factory"] = gated_connection_class(WriteGate(path))
            # A connection for each of the server's worker threads (40) and its background threads,
            # kept open: an overflow connection is closed when returned, and opening one again (with
            # its pragmas) costs more than the query it serves.
            options.update(pool_size=48, max_overflow=16)
        engine = create_engine(url, echo=echo, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    """Owns the engine and the session factory; one per app or CLI invocation."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Called after every successful unit of work, e.g. the event bus draining the outbox.
        self.after_commit: list[Callable[[], object]] = []
        self._lock_files: dict[str, int] = {}
        self._lock_files_guard = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error. Outbox events go out after commit."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
        for hook in self.after_commit:
            hook()

    @contextmanager
    def try_exclusive(self, name: str) -> Iterator[bool]:
        """Whether this caller holds the named lock among all the processes on this database, for
        the block; it never waits (a caller that gets False leaves the work to the holder). An flock
        beside a SQLite file, a session advisory lock on PostgreSQL; released when the block ends or
        the process dies."""
        path = sqlite_file(self.url)
        if path is not None:
            with self._lock_files_guard:
                if name not in self._lock_files:
                    self._lock_files[name] = os.open(f"{path}-{name}", os.O_RDWR | os.O_CREAT, 0o644)
                fd = self._lock_files[name]
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            return
        if self.engine.dialect.name != "postgresql":  # an in-memory database: this process only
            yield True
            return
        key = zlib.crc32(name.encode())
        with self.engine.connect() as conn:
            held = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
            conn.commit()
            try:
                yield held
            finally:
                if held:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
        with self._lock_files_guard:
            for fd in self._lock_files.values():
                os.close(fd)
            self._lock_files.clear()
