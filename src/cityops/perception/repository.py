"""Queries of the perception package."""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    case,
    cast,
    delete,
    event,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased

from cityops.core.auth.models import OrgUnit
from cityops.core.db import insert_or_ignore
from cityops.perception import partitions
from cityops.perception.models import (
    RPC_OPEN,
    Alarm,
    Device,
    DeviceDownlink,
    DeviceProvisioning,
    DeviceRpc,
    IngestRejection,
    RuleState,
    TelemetryDirtyHour,
    TelemetryKeyName,
    TelemetryLatest,
    TelemetryPoint,
    TelemetryRollup,
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


def key_ids(session: Session, names: Iterable[str], *, add: bool = True) -> dict[str, int]:
    """The dictionary ids of key names, adding the names not seen before (with `add`; without it,
    names never stored are left out)."""
    known = _dictionary(session)
    wanted = set(names)
    missing = [n for n in wanted if n not in known.ids]
    if missing and not add:
        known.learn(_lookup(session, TelemetryKeyName.key.in_(missing)))
        return {n: known.ids[n] for n in wanted if n in known.ids}
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
    if not tokens:
        return {}
    rows = session.scalars(select(Device).where(Device.access_token.in_(set(tokens))))
    return {d.access_token: d for d in rows if d.access_token is not None}


def devices_by_id(session: Session, ids: Sequence[int]) -> dict[int, Device]:
    if not ids:
        return {}
    return {d.id: d for d in session.scalars(select(Device).where(Device.id.in_(set(ids))))}


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
    m = _marks(conn)
    conn.exec_driver_sql(f"INSERT INTO {TelemetryPoint.__tablename__} (device_id, key_id, ts, num, text) "
                         f"VALUES ({m}, {m}, {m}, {m}, {m}) ON CONFLICT DO NOTHING", list(rows))


HOUR_MS = 3_600_000
PERIODS_S = (60, 3600)


def _marks(conn: Any) -> str:
    """The driver's placeholder, for statements sent straight to it (SQLite ?, psycopg %s)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def mark_dirty_hours(session: Session, slots: Iterable[tuple[int, int, int]]) -> None:
    """(device, key id, hour start) that received numeric points, for the rollup job."""
    rows = list(slots)
    if not rows:
        return
    conn = session.connection()
    m = _marks(conn)
    conn.exec_driver_sql(f"INSERT INTO {TelemetryDirtyHour.__tablename__} (device_id, key_id, hour) "
                         f"VALUES ({m}, {m}, {m}) ON CONFLICT DO NOTHING", rows)


def take_dirty_hours(session: Session, *, before_ms: int, limit: int) -> list[tuple[int, int, int]]:
    """Up to `limit` dirty hours starting before `before_ms`, removed from the list in this
    transaction (a point arriving meanwhile marks its hour again)."""
    rows = [(d, k, h) for d, k, h in session.execute(
        select(TelemetryDirtyHour.device_id, TelemetryDirtyHour.key_id, TelemetryDirtyHour.hour)
        .where(TelemetryDirtyHour.hour < before_ms).limit(limit))]
    if rows:
        conn = session.connection()
        m = _marks(conn)
        conn.exec_driver_sql(f"DELETE FROM {TelemetryDirtyHour.__tablename__} WHERE device_id = {m} "
                             f"AND key_id = {m} AND hour = {m}", rows)
    return rows


def recompute_rollups(session: Session, hours: Sequence[tuple[int, int, int]]) -> None:
    """The minute and hour rollups of these hours, computed again from the raw points."""
    if not hours:
        return
    conn = session.connection()
    m = _marks(conn)
    ranges = [(d, k, h, h + HOUR_MS) for d, k, h in hours]
    conn.exec_driver_sql(f"DELETE FROM {TelemetryRollup.__tablename__} WHERE device_id = {m} "
                         f"AND key_id = {m} AND bucket >= {m} AND bucket < {m}", ranges)
    for period in PERIODS_S:
        bucket = f"(ts / {period * 1000}) * {period * 1000}"  # integer division on both databases
        conn.exec_driver_sql(
            f"INSERT INTO {TelemetryRollup.__tablename__} (device_id, key_id, period_s, bucket, min, max, "
            f"sum, count) SELECT device_id, key_id, {period}, {bucket}, min(num), max(num), sum(num), "
            f"count(num) FROM {TelemetryPoint.__tablename__} WHERE device_id = {m} AND key_id = {m} "
            f"AND ts >= {m} AND ts < {m} AND num IS NOT NULL GROUP BY device_id, key_id, {bucket}", ranges)


def delete_raw_before(session: Session, cutoff_ms: int) -> int:
    """Delete raw points older than the cutoff, per (device, key) so the primary key does the finding.
    On PostgreSQL, once the expired days are dropped, this only finds the rows of the day the cutoff
    falls in and those in the default partition (the partition pruning skips the other days)."""
    pairs = [(d, k, cutoff_ms) for d, k in session.execute(
        select(TelemetryLatest.device_id, TelemetryLatest.key_id))]
    if not pairs:
        return 0
    conn = session.connection()
    m = _marks(conn)
    deleted = conn.exec_driver_sql(f"DELETE FROM {TelemetryPoint.__tablename__} WHERE device_id = {m} "
                                   f"AND key_id = {m} AND ts < {m}", pairs)
    return max(deleted.rowcount, 0)


def ensure_raw_partitions(session: Session, *, now_ms: int, keep_from_ms: int) -> list[str]:
    """PostgreSQL: day partitions of the raw points for the coming days, and for the kept days that
    have points in the default partition (moved into them); the names made. Nothing elsewhere."""
    conn = session.connection()
    if not partitions.is_partitioned(conn):
        return []
    return partitions.ensure(conn, now=now_ms, keep_from_ms=keep_from_ms)


def expired_raw_days(session: Session, cutoff_ms: int) -> list[int]:
    """PostgreSQL: the days (since the epoch) whose partition ends at or before the cutoff; [] elsewhere."""
    conn = session.connection()
    return partitions.expired_days(conn, cutoff_ms) if partitions.is_partitioned(conn) else []


def lock_raw(session: Session) -> None:
    """PostgreSQL: hold inserts into the raw points off until the transaction ends."""
    partitions.lock(session.connection())


def drop_raw_days(session: Session, days: list[int]) -> int:
    """PostgreSQL: drop these days' partitions (after `lock_raw`); the points they held."""
    return partitions.drop_days(session.connection(), days)


def rollups(session: Session, device_id: int, key_id: int, period_s: int, start_ms: int, end_ms: int,
            limit: int) -> list[TelemetryRollup]:
    rows = session.scalars(
        select(TelemetryRollup)
        .where(TelemetryRollup.device_id == device_id, TelemetryRollup.key_id == key_id,
               TelemetryRollup.period_s == period_s, TelemetryRollup.bucket >= start_ms,
               TelemetryRollup.bucket <= end_ms)
        .order_by(TelemetryRollup.bucket.desc()).limit(limit))
    return list(reversed(list(rows)))


def lock_devices(session: Session, device_ids: Iterable[int]) -> None:
    """Hold these devices' rows until the transaction ends, so that two ingest workers never evaluate
    one device's rules at once (each would read the rule state and active alarms without the other's
    changes: lost updates, a second alarm). Taken in id order, so two batches never wait on each
    other. FOR NO KEY UPDATE: rows that refer to the device (an alarm, an RPC) can still be added.
    PostgreSQL only: on SQLite one writer at a time holds the whole database already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Device.id).where(Device.id.in_(sorted(set(device_ids))))
                        .order_by(Device.id).with_for_update(key_share=True))


def rule_states(session: Session, pairs: Sequence[tuple[int, str]]) -> dict[tuple[int, str], RuleState]:
    """The states of these (device, rule) pairs, new ones added to the session."""
    devices = {d for d, _ in pairs}
    found = {(s.device_id, s.rule_code): s for s in session.scalars(
        select(RuleState).where(RuleState.device_id.in_(devices)))}
    for pair in pairs:
        if pair not in found:
            found[pair] = RuleState(device_id=pair[0], rule_code=pair[1], breach_since=None, raised=False,
                                    last_ts=0, last_value=None)
            session.add(found[pair])
    return found


def active_alarm(session: Session, device_id: int, alarm_type: str) -> Alarm | None:
    return session.scalar(select(Alarm).where(Alarm.device_id == device_id, Alarm.type == alarm_type,
                                              Alarm.status.in_(("ACTIVE_UNACK", "ACTIVE_ACK")))
                          .order_by(Alarm.id.desc()).limit(1))


def last_case_of(session: Session, device_id: int, alarm_types: Iterable[str], *,
                 before_alarm: int) -> int | None:
    """The case of the device's latest earlier alarm of these types that had one."""
    return session.scalar(select(Alarm.case_id).where(
        Alarm.device_id == device_id, Alarm.type.in_(set(alarm_types)), Alarm.id < before_alarm,
        Alarm.case_id.is_not(None)).order_by(Alarm.id.desc()).limit(1))


def devices_with_active(session: Session, alarm_type: str, device_ids: Iterable[int]) -> set[int]:
    return set(session.scalars(select(Alarm.device_id).where(
        Alarm.type == alarm_type, Alarm.status.in_(("ACTIVE_UNACK", "ACTIVE_ACK")),
        Alarm.device_id.in_(set(device_ids)))))


def silent_devices(session: Session, *, profile: str, alarm_type: str, before: datetime) -> list[Device]:
    """Devices of a profile that have reported, but not since `before`, and have no active alarm of
    the type yet: one query."""
    alarmed = exists().where(Alarm.device_id == Device.id, Alarm.type == alarm_type,
                             Alarm.status.in_(("ACTIVE_UNACK", "ACTIVE_ACK")))
    # Locked as ingestion locks them (lock_devices), skipping a device a worker is storing: it reports.
    return list(session.scalars(select(Device).where(
        Device.profile_code == profile, Device.last_activity_at.is_not(None),
        Device.last_activity_at < before, ~alarmed)
        .order_by(Device.id).with_for_update(skip_locked=True, key_share=True)))


def reporting_with_active(session: Session, *, profile: str, alarm_type: str,
                          since: datetime) -> list[Device]:
    """Devices of a profile with an active alarm of the type that have reported since `since`."""
    alarmed = exists().where(Alarm.device_id == Device.id, Alarm.type == alarm_type,
                             Alarm.status.in_(("ACTIVE_UNACK", "ACTIVE_ACK")))
    return list(session.scalars(select(Device).where(
        Device.profile_code == profile, Device.last_activity_at >= since, alarmed)
        .order_by(Device.id).with_for_update(skip_locked=True, key_share=True)))


METRES_PER_DEGREE = 111_320.0


def recent_nearby(session: Session, *, lon: float, lat: float, within_m: float, profile: str, key: str,
                  since_ts: int, until_ts: int) -> list[tuple[Device, float | None, str | None]]:
    """Devices of a profile around a point (a box of `within_m`, to be measured exactly by the
    caller) whose latest value of `key` falls in [since_ts, until_ts], with that value."""
    key_id = key_ids(session, [key], add=False).get(key)
    if key_id is None:
        return []
    dlat = within_m / METRES_PER_DEGREE
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    rows = session.execute(
        select(Device, TelemetryLatest.num, TelemetryLatest.text)
        .join(TelemetryLatest, TelemetryLatest.device_id == Device.id)
        .where(TelemetryLatest.key_id == key_id, Device.profile_code == profile,
               Device.lon.between(lon - dlon, lon + dlon), Device.lat.between(lat - dlat, lat + dlat),
               TelemetryLatest.ts.between(since_ts, until_ts)))
    return [(device, num, text) for device, num, text in rows]


def alarm_page(session: Session, condition: ColumnElement[bool], *, limit: int,
               offset: int) -> list[tuple[Alarm, Device]]:
    rows = session.execute(select(Alarm, Device).join(Device, Device.id == Alarm.device_id).where(condition)
                           .order_by(Alarm.id.desc()).limit(limit).offset(offset))
    return [(alarm, device) for alarm, device in rows]


def alarm_count(session: Session, condition: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(Alarm).join(Device, Device.id == Alarm.device_id)
                          .where(condition)) or 0


# --- hand clearing and the fire board ----------------------------------------------------------

CLEARED = ("CLEARED_UNACK", "CLEARED_ACK")


def reset_rule_states(session: Session, device_id: int, rule_codes: Iterable[str]) -> None:
    """Forget that these rules passed their limits on the device, so the next breach raises anew."""
    codes = set(rule_codes)
    if codes:
        session.execute(update(RuleState).where(RuleState.device_id == device_id,
                                                RuleState.rule_code.in_(codes))
                        .values(raised=False, breach_since=None))


def confirmed_by(confirmed_types: Sequence[str], window_ms: int) -> ColumnElement[bool]:
    """For a row of `Alarm`: its device has an alarm of a confirmed type starting within the row's
    span (raised to cleared, or to its latest point) widened by the window on both sides."""
    other = aliased(Alarm)
    # A hand clear stamps the wall clock, which may lie before the device's own latest point.
    span_end = case((Alarm.clear_ts > Alarm.end_ts, Alarm.clear_ts), else_=Alarm.end_ts)
    return exists().where(other.device_id == Alarm.device_id, other.type.in_(set(confirmed_types)),
                          other.start_ts >= Alarm.start_ts - window_ms,
                          other.start_ts <= span_end + window_ms).correlate(Alarm)


def alarms_with_flag(session: Session, condition: ColumnElement[bool], flag: ColumnElement[bool], *,
                     limit: int) -> list[tuple[Alarm, Device, bool]]:
    """Alarms newest first, each with a per-row condition evaluated by the database."""
    rows = session.execute(select(Alarm, Device, case((flag, 1), else_=0))
                           .join(Device, Device.id == Alarm.device_id).where(condition)
                           .order_by(Alarm.id.desc()).limit(limit))
    return [(alarm, device, bool(flagged)) for alarm, device, flagged in rows]


def outcomes_by_device(session: Session, condition: ColumnElement[bool], confirmed: ColumnElement[bool], *,
                       limit: int, offset: int) -> tuple[list[tuple[Device, int, int, int, int]], int]:
    """Per device with alarms matching `condition`: (device, alarms, confirmed, false, still active),
    where false is cleared and not confirmed; worst false-alarm rate first. And the number of devices."""
    per_alarm = (select(Alarm.device_id.label("device_id"), case((confirmed, 1), else_=0).label("confirmed"),
                        case((Alarm.status.in_(CLEARED), 1), else_=0).label("cleared"))
                 .join(Device, Device.id == Alarm.device_id).where(condition).subquery())
    unconfirmed_clear = case((and_(per_alarm.c.cleared == 1, per_alarm.c.confirmed == 0), 1), else_=0)
    per_device = (select(per_alarm.c.device_id, func.count().label("alarms"),
                         func.sum(per_alarm.c.confirmed).label("confirmed"),
                         func.sum(unconfirmed_clear).label("false_alarms"),
                         func.sum(1 - per_alarm.c.cleared).label("active"))
                  .group_by(per_alarm.c.device_id).subquery())
    rate = cast(per_device.c.false_alarms, Float) / per_device.c.alarms
    rows = session.execute(
        select(Device, per_device.c.alarms, per_device.c.confirmed, per_device.c.false_alarms,
               per_device.c.active)
        .join(per_device, per_device.c.device_id == Device.id)
        .order_by(rate.desc(), per_device.c.false_alarms.desc(), per_device.c.alarms.desc(), Device.id)
        .limit(limit).offset(offset))
    total = session.scalar(select(func.count()).select_from(per_device)) or 0
    return [(d, int(n), int(c or 0), int(f or 0), int(a or 0)) for d, n, c, f, a in rows], total


def unit_names(session: Session, unit_ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {u for u in unit_ids if u is not None}
    if not wanted:
        return {}
    return {i: n for i, n in session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(wanted)))}


# --- server-side RPC and pushes to devices ------------------------------------------------------


def rpc_page(session: Session, device_id: int, *, limit: int, offset: int = 0) -> tuple[list[DeviceRpc], int]:
    """A device's RPCs, newest first, and how many it has."""
    rows = session.scalars(select(DeviceRpc).where(DeviceRpc.device_id == device_id)
                           .order_by(DeviceRpc.id.desc()).limit(limit).offset(offset)).all()
    total = session.scalar(select(func.count()).select_from(DeviceRpc)
                           .where(DeviceRpc.device_id == device_id)) or 0
    return list(rows), total


def open_rpc_count(session: Session, device_id: int) -> int:
    return session.scalar(select(func.count()).select_from(DeviceRpc).where(
        DeviceRpc.device_id == device_id, DeviceRpc.status.in_(RPC_OPEN))) or 0


# What a sender needs of an RPC it claimed: id, device_id, method, params, oneway.
RpcToSend = tuple[int, int, str, Any, bool]


def _claim(session: Session, ids: Sequence[int], condition: ColumnElement[bool],
           values: dict[str, Any]) -> list[RpcToSend]:
    """Set `values` on those of `ids` still matching `condition`; the rows this call changed. Two
    senders may pick the same ids: the database lets one UPDATE change each row (the other finds the
    condition no longer holds), so each RPC goes out once."""
    if not ids:
        return []
    rows = session.execute(update(DeviceRpc).where(DeviceRpc.id.in_(ids), condition).values(**values)
                           .returning(DeviceRpc.id, DeviceRpc.device_id, DeviceRpc.method, DeviceRpc.params,
                                      DeviceRpc.oneway)
                           .execution_options(synchronize_session=False))
    return sorted((r.id, r.device_id, r.method, r.params, r.oneway) for r in rows)


def claim_queued_rpcs(session: Session, *, now: datetime, limit: int) -> list[RpcToSend]:
    """QUEUED -> SENT over MQTT, oldest first. Reads first and writes only when something is queued:
    the poll runs several times a second and must not take SQLite's write lock each time."""
    queued = and_(DeviceRpc.status == "QUEUED", DeviceRpc.expires_at > now)
    ids = session.scalars(select(DeviceRpc.id).where(queued).order_by(DeviceRpc.id).limit(limit)).all()
    return _claim(session, ids, queued, {"status": "SENT", "transport": "mqtt", "sent_at": now})


def claim_rpc_for_http(session: Session, device_id: int, *, now: datetime) -> RpcToSend | None:
    """The device's oldest RPC for its HTTP long poll: a queued one, or one the MQTT worker sent that
    no answer has come for (a device polling over HTTP is not on MQTT, where the broker dropped it).
    Two-way -> SENT, one-way -> SUCCESSFUL (handed over is all a one-way RPC waits for)."""
    takeable = and_(DeviceRpc.device_id == device_id, DeviceRpc.expires_at > now, or_(
        DeviceRpc.status == "QUEUED",
        and_(DeviceRpc.status.in_(("SENT", "DELIVERED")), DeviceRpc.transport == "mqtt")))
    for rpc_id in session.scalars(select(DeviceRpc.id).where(takeable).order_by(DeviceRpc.id).limit(5)).all():
        claimed = _claim(session, [rpc_id], takeable, {
            "status": case((DeviceRpc.oneway, "SUCCESSFUL"), else_="SENT"), "transport": "http",
            "sent_at": now, "completed_at": case((DeviceRpc.oneway, now), else_=None)})
        if claimed:
            return claimed[0]
    return None


def mark_rpcs_delivered(session: Session, ids: Sequence[int], *, now: datetime) -> None:
    """The broker acknowledged them: two-way -> DELIVERED, one-way -> SUCCESSFUL; an answer that came
    first, or an HTTP poll that took one over, is left as it is."""
    if ids:
        session.execute(update(DeviceRpc).where(DeviceRpc.id.in_(ids), DeviceRpc.status == "SENT",
                                                DeviceRpc.transport == "mqtt")
                        .values(status=case((DeviceRpc.oneway, "SUCCESSFUL"), else_="DELIVERED"),
                                delivered_at=now, completed_at=case((DeviceRpc.oneway, now), else_=None))
                        .execution_options(synchronize_session=False))


def requeue_rpcs(session: Session, ids: Sequence[int]) -> None:
    """The broker connection broke before it acknowledged them: sent again by the next poll."""
    if ids:
        session.execute(update(DeviceRpc).where(DeviceRpc.id.in_(ids), DeviceRpc.status == "SENT",
                                                DeviceRpc.transport == "mqtt")
                        .values(status="QUEUED", transport=None, sent_at=None)
                        .execution_options(synchronize_session=False))


def expire_rpcs(session: Session, *, now: datetime, rpc_id: int | None = None) -> int:
    """Open RPCs past their deadline: QUEUED -> EXPIRED (never sent), SENT and DELIVERED -> TIMEOUT.
    Reads first, writes only when one is due."""
    due = and_(DeviceRpc.status.in_(RPC_OPEN), DeviceRpc.expires_at <= now)
    if rpc_id is not None:
        due = and_(due, DeviceRpc.id == rpc_id)
    if session.scalar(select(DeviceRpc.id).where(due).limit(1)) is None:
        return 0
    result = session.execute(update(DeviceRpc).where(due).values(
        status=case((DeviceRpc.status == "QUEUED", "EXPIRED"), else_="TIMEOUT"), completed_at=now)
        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def take_downlinks(session: Session, *, limit: int) -> list[tuple[int, int, str, Any]]:
    """Pushes waiting for devices, oldest first, as (id, device_id, topic, payload); taken by deleting
    them, so of several workers each sends only what its own DELETE removed."""
    rows = session.execute(select(DeviceDownlink.id, DeviceDownlink.device_id, DeviceDownlink.topic,
                                  DeviceDownlink.payload).order_by(DeviceDownlink.id).limit(limit)).all()
    if not rows:
        return []
    taken = set(session.scalars(delete(DeviceDownlink).where(DeviceDownlink.id.in_([r.id for r in rows]))
                                .returning(DeviceDownlink.id)).all())
    return [(r.id, r.device_id, r.topic, r.payload) for r in rows if r.id in taken]


# --- gateways -----------------------------------------------------------------------------------

NAMES_PER_QUERY = 500  # names in one IN list


def devices_by_name(session: Session, names: Iterable[str]) -> dict[str, Device]:
    wanted = sorted(set(names))
    found: dict[str, Device] = {}
    for start in range(0, len(wanted), NAMES_PER_QUERY):
        chunk = wanted[start:start + NAMES_PER_QUERY]
        found.update((d.name, d) for d in session.scalars(select(Device).where(Device.name.in_(chunk))))
    return found


def child_counts(session: Session, gateway_ids: Iterable[int]) -> dict[int, int]:
    """How many devices are connected behind each of these gateways (those with none left out)."""
    rows = session.execute(select(Device.gateway_id, func.count())
                           .where(Device.gateway_id.in_(set(gateway_ids))).group_by(Device.gateway_id))
    return {gateway_id: n for gateway_id, n in rows if gateway_id is not None}


def add_devices_if_absent(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert devices, skipping a name taken meanwhile (another worker connecting the same device)."""
    if rows:
        session.execute(insert_or_ignore(session, Device).on_conflict_do_nothing(index_elements=["name"]),
                        list(rows))


def gateways_of(session: Session, device_ids: Iterable[int]) -> dict[int, tuple[int, str]]:
    """(gateway id, device name) of those of these devices that are connected behind a gateway."""
    ids = set(device_ids)
    if not ids:
        return {}
    rows = session.execute(select(Device.id, Device.gateway_id, Device.name)
                           .where(Device.id.in_(ids), Device.gateway_id.is_not(None)))
    return {device_id: (gateway_id, name) for device_id, gateway_id, name in rows
            if gateway_id is not None}


# --- provisioning -------------------------------------------------------------------------------


def provisioning_by_key(session: Session, key: str) -> DeviceProvisioning | None:
    return session.scalar(select(DeviceProvisioning).where(DeviceProvisioning.provision_key == key))


def provisioning_of(session: Session, profile_code: str) -> DeviceProvisioning | None:
    return session.scalar(select(DeviceProvisioning).where(DeviceProvisioning.profile_code == profile_code))


def all_provisioning(session: Session) -> list[DeviceProvisioning]:
    return list(session.scalars(select(DeviceProvisioning).order_by(DeviceProvisioning.profile_code)))


def count_provisioning_failure(session: Session, provisioning_id: int, *, now: datetime) -> None:
    session.execute(update(DeviceProvisioning).where(DeviceProvisioning.id == provisioning_id).values(
        failed_attempts=DeviceProvisioning.failed_attempts + 1, last_failure_at=now)
        .execution_options(synchronize_session=False))


def take_provisioning_slot(session: Session, provisioning_id: int, *, now: datetime) -> bool:
    """Count one more provisioned device, unless the limit is reached: one statement, so two requests
    at once never pass the limit together."""
    result = session.execute(update(DeviceProvisioning).where(
        DeviceProvisioning.id == provisioning_id,
        DeviceProvisioning.provisioned < DeviceProvisioning.max_devices).values(
        provisioned=DeviceProvisioning.provisioned + 1, last_provisioned_at=now)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


def token_taken(session: Session, token: str) -> bool:
    return session.scalar(select(exists().where(Device.access_token == token))) or False
