"""Queries of the perception package."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, Select, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cityops.core.db import insert_or_ignore
from cityops.perception.models import (
    Device,
    IngestRejection,
    TelemetryKeyName,
    TelemetryLatest,
    TelemetryPoint,
)


class _KeyDictionary:
    """Key names never change id once given, so each process remembers them, per database."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.lock = threading.Lock()

    def learn(self, rows: Iterable[tuple[str, int]]) -> None:
        with self.lock:
            for name, key_id in rows:
                self.ids[name] = key_id
                self.names[key_id] = name


_dictionaries: weakref.WeakKeyDictionary[Engine, _KeyDictionary] = weakref.WeakKeyDictionary()


def _dictionary(session: Session) -> _KeyDictionary:
    engine = session.get_bind().engine
    known = _dictionaries.get(engine)
    if known is None:
        known = _dictionaries.setdefault(engine, _KeyDictionary())
    return known


def _lookup(session: Session, condition: ColumnElement[bool]) -> list[tuple[str, int]]:
    rows = session.execute(select(TelemetryKeyName.key, TelemetryKeyName.id).where(condition))
    return [(key, key_id) for key, key_id in rows]


def key_ids(session: Session, names: Iterable[str]) -> dict[str, int]:
    """The dictionary ids of key names, adding the names not seen before."""
    known = _dictionary(session)
    wanted = set(names)
    missing = [n for n in wanted if n not in known.ids]
    if missing:
        session.execute(insert_or_ignore(session, TelemetryKeyName)
                        .on_conflict_do_nothing(index_elements=["key"]), [{"key": n} for n in missing])
        found = _lookup(session, TelemetryKeyName.key.in_(missing))
        # Remembered once committed: a rolled-back transaction takes its new ids with it.
        event.listen(session, "after_commit", lambda _session: known.learn(found), once=True)
        return {**{n: known.ids[n] for n in wanted if n in known.ids}, **dict(found)}
    return {n: known.ids[n] for n in wanted}


def key_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    known = _dictionary(session)
    wanted = set(ids)
    missing = [i for i in wanted if i not in known.names]
    if missing:
        known.learn(_lookup(session, TelemetryKeyName.id.in_(missing)))
    return {i: known.names[i] for i in wanted if i in known.names}


def devices_by_token(session: Session, tokens: Sequence[str]) -> dict[str, Device]:
    rows = session.scalars(select(Device).where(Device.access_token.in_(set(tokens))))
    return {d.access_token: d for d in rows if d.access_token is not None}


def device_page(condition: ColumnElement[bool]) -> Select[Device]:
    return select(Device).where(condition).order_by(Device.id)


def count(session: Session, condition: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(Device).where(condition)) or 0


def latest(session: Session, device_id: int) -> list[TelemetryLatest]:
    return list(session.scalars(select(TelemetryLatest).where(TelemetryLatest.device_id == device_id)))


def series(session: Session, device_id: int, key_id: int, start_ms: int, end_ms: int,
           limit: int) -> list[TelemetryPoint]:
    """The newest `limit` points in [start, end], oldest first."""
    rows = session.scalars(
        select(TelemetryPoint)
        .where(TelemetryPoint.device_id == device_id, TelemetryPoint.key_id == key_id,
               TelemetryPoint.ts >= start_ms, TelemetryPoint.ts <= end_ms)
        .order_by(TelemetryPoint.ts.desc()).limit(limit))
    return list(reversed(list(rows)))


def key_ids_known(session: Session, names: Iterable[str]) -> dict[str, int]:
    """The ids of key names already in the dictionary (nothing is added)."""
    wanted = set(names)
    known = _dictionary(session)
    missing = [n for n in wanted if n not in known.ids]
    if missing:
        known.learn(_lookup(session, TelemetryKeyName.key.in_(missing)))
    return {n: known.ids[n] for n in wanted if n in known.ids}


def rejection_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(IngestRejection.reason, func.count()).group_by(IngestRejection.reason))
    return {reason: n for reason, n in rows}


def recent_rejections(session: Session, *, reason: str | None, limit: int) -> list[IngestRejection]:
    query = select(IngestRejection).order_by(IngestRejection.id.desc()).limit(limit)
    if reason:
        query = query.where(IngestRejection.reason == reason)
    return list(session.scalars(query))


def insert_points(session: Session, rows: Sequence[tuple[int, int, int, float | None, str | None]]) -> None:
    """Raw points (device, key id, ts, num, text), skipping those already stored. Straight to the
    driver's executemany: SQLAlchemy's per-row parameter handling cost six times the insert itself."""
    if not rows:
        return
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO {TelemetryPoint.__tablename__} (device_id, key_id, ts, num, text) "
        f"VALUES ({', '.join([mark] * 5)}) ON CONFLICT DO NOTHING", list(rows))
