"""Devices and their credentials, ingestion of what they send, and reading it back in scope.

Services flush, never commit: the request or the caller's unit of work commits. Ingestion over HTTP
goes through a group commit: uploads arriving together are stored in one transaction, each device
answered on its own."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import ColumnElement, and_, false, insert, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.requests import Request

from cityops.cases import service as case_service
from cityops.config import Settings
from cityops.core.auth import audit
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.roles import has_permission
from cityops.core.auth.scope import authorize, can_access, scope_filter
from cityops.core.db import Database, insert_all, insert_or_ignore, utcnow
from cityops.core.errors import CityopsError, Conflict, Forbidden, NotFound, TooManyRequests, ValidationFailed
from cityops.core.events import Event, emit, event_type
from cityops.core.geo import distance_km
from cityops.core.group_commit import GroupCommit
from cityops.core.scheduler import Job
from cityops.core.tables import read_table
from cityops.perception import profiles, rules
from cityops.perception import repository as repo
from cityops.perception.ingest import MAX_BODY_BYTES, GatewayPart, IngestRejected, Point, parse_attributes
from cityops.perception.models import (
    RPC_OPEN,
    Alarm,
    Device,
    DeviceAttribute,
    DeviceDownlink,
    DeviceProvisioning,
    DeviceRpc,
    IngestRejection,
    RuleSet,
    RuleState,
    TelemetryLatest,
)
from cityops.perception.rules import AnyRule, ConfirmRule, GeofenceRule, NoDataRule, RateRule, ThresholdRule
from cityops.perception.schemas import (
    AlarmCase,
    AlarmPage,
    AlarmRead,
    AttributeRead,
    AttributesRead,
    DeviceAttributesRead,
    DeviceCreate,
    DevicePage,
    DeviceRead,
    DeviceUpdate,
    FalseAlarmPage,
    FalseAlarmRate,
    FireAlarmRead,
    FireBoard,
    FireCounts,
    LatestValue,
    ProvisioningRead,
    ProvisioningWrite,
    ProvisionRequest,
    RejectionRead,
    RejectionsRead,
    RpcCreate,
    RpcPage,
    RpcRead,
    RulesRead,
    RulesWrite,
    RuleVersionRead,
    SeriesRead,
    Status,
    UnitRef,
)
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

STATUSES = ("online", "offline", "inactive")
log = logging.getLogger(__name__)


@event_type
@dataclass(frozen=True)
class AlarmRaised(Event):
    topic = "perception.alarm_raised"
    alarm_id: int
    device_id: int
    type: str
    severity: str
    rule_code: str


@event_type
@dataclass(frozen=True)
class AlarmCleared(Event):
    topic = "perception.alarm_cleared"
    alarm_id: int
    device_id: int
    type: str
    case_id: int | None


@event_type
@dataclass(frozen=True)
class ReadingsStored(Event):
    """The numeric points a batch stored for devices of the watched profiles (see watch_profiles), as
    [device_id, key, ts, value]: packages above perception learn of readings right after they are
    stored, without polling, while the traffic of other profiles emits nothing."""

    topic = "perception.readings_stored"
    readings: list[tuple[int, str, int, float]]


# Profiles whose stored readings are announced (ReadingsStored). Filled at install time by the packages
# that react to readings (the warning package's monitoring stations); replaced whole, never mutated.
_watched_profiles: frozenset[str] = frozenset()


def watch_profiles(codes: Iterable[str]) -> None:
    """Announce the numeric readings of devices of these profiles in one ReadingsStored event per
    batch, from now on in this process (calling it again adds profiles)."""
    global _watched_profiles
    for code in codes:
        profiles.registry().get(code)  # an unknown profile is a ValidationFailed naming it
    _watched_profiles = _watched_profiles | frozenset(codes)


def watched_profiles() -> frozenset[str]:
    return _watched_profiles


MAX_EXPORT = 100_000
MAP_POINTS = 5_000


# --- ingestion ----------------------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: a frozen dataclass costs a microsecond more per message
class Upload:
    """What one device sent in one message: points, client attributes, or the reason it was refused
    before storing (kept in the dead-letter list)."""

    token: str  # the access token it came with (HTTP), or "" when the broker named the device
    transport: str
    points: Sequence[Point] = ()
    attributes: dict[str, Any] | None = None
    rejected: IngestRejected | None = None
    excerpt: str = ""
    # When the platform received it, if not now (a batch replayed from a gateway's buffer, the demo).
    received_at: datetime | None = None
    # The device, when the MQTT broker authenticated its connection and named it in the topic.
    device_id: int | None = None


UNKNOWN_DEVICE = "unknown or revoked device access token"


def store_uploads(session: Session, uploads: Sequence[Upload], *,
                  now: datetime | None = None) -> list[CityopsError | None]:
    """Store the uploads of a batch; per upload None, or the error refusing it (recorded as a
    rejection with its reason, in the same transaction)."""
    now = now or utcnow()
    by_token = repo.devices_by_token(session, [u.token for u in uploads if u.device_id is None])
    by_id = repo.devices_by_id(session, [u.device_id for u in uploads if u.device_id is not None])
    outcomes: list[CityopsError | None] = []
    rejections: list[dict[str, Any]] = []
    points: list[tuple[int, Point]] = []
    attributes: dict[tuple[int, str], Any] = {}
    active: dict[int, datetime] = {}
    for upload in uploads:
        device = by_token.get(upload.token) if upload.device_id is None else by_id.get(upload.device_id)
        error = upload.rejected or (None if device is not None else IngestRejected(
            "unknown_token", UNKNOWN_DEVICE, status=401))
        if error is not None:
            rejections.append({"received_at": now, "transport": upload.transport, "reason": error.reason,
                               "message": error.message[:300], "device_id": device.id if device else None,
                               "token_prefix": upload.token[:4] or None, "excerpt": upload.excerpt[:500]})
            outcomes.append(error)
            continue
        assert device is not None
        # Read off the ORM object only when the broker did not name the device: this loop runs for
        # every message, and an attribute read through the ORM costs a microsecond.
        device_id = upload.device_id if upload.device_id is not None else device.id
        moment = upload.received_at or now
        seen = active.get(device_id)
        if seen is None or moment > seen:
            active[device_id] = moment
        points += [(device_id, p) for p in upload.points]
        if upload.attributes:
            for key, value in upload.attributes.items():
                attributes[(device_id, key)] = value
        outcomes.append(None)
    if active:
        repo.lock_devices(session, active)
    if points:
        _store_points(session, points)
        devices = {**by_id, **{d.id: d for d in by_token.values()}}
        _evaluate_rules(session, points, devices)
        if _watched_profiles:
            _announce(session, points, devices)
    if attributes:
        stmt = insert_or_ignore(session, DeviceAttribute)
        session.execute(stmt.on_conflict_do_update(
            index_elements=["device_id", "scope", "key"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}),
            [{"device_id": d, "scope": "client", "key": k, "value": v, "updated_at": now}
             for (d, k), v in attributes.items()])
    by_moment: dict[datetime, list[int]] = defaultdict(list)
    for device_id, moment in active.items():
        by_moment[moment].append(device_id)
    for moment, ids in by_moment.items():  # one UPDATE in live traffic, where every moment is now
        # Not matched against the session's objects: that walk cost more than the update itself.
        session.execute(update(Device).where(Device.id.in_(ids)).values(last_activity_at=moment)
                        .execution_options(synchronize_session=False))
    if rejections:
        session.execute(insert(IngestRejection), rejections)
    return outcomes


def _announce(session: Session, points: Sequence[tuple[int, Point]], devices: dict[int, Device]) -> None:
    """One ReadingsStored for the batch's numeric points of devices of the watched profiles."""
    watched = {device_id for device_id, device in devices.items()
               if device.profile_code in _watched_profiles}
    if not watched:
        return
    readings = [(device_id, key, ts, num) for device_id, (key, ts, num, _text) in points
                if num is not None and device_id in watched]
    if readings:
        emit(session, ReadingsStored(readings=readings))


def _store_points(session: Session, points: Sequence[tuple[int, Point]]) -> None:
    ids = repo.key_ids(session, {p[0] for _, p in points})
    rows = [(device_id, ids[key], ts, num, text) for device_id, (key, ts, num, text) in points]
    # A point delivered again (a retried request, an MQTT redelivery) is stored once.
    repo.insert_points(session, rows)
    repo.mark_dirty_hours(session, {(d, k, ts - ts % repo.HOUR_MS)
                                    for d, k, ts, num, _text in rows if num is not None})
    newest: dict[tuple[int, int], tuple[int, int, int, float | None, str | None]] = {}
    for row in rows:
        slot = (row[0], row[1])
        if slot not in newest or row[2] >= newest[slot][2]:
            newest[slot] = row
    stmt = insert_or_ignore(session, TelemetryLatest)
    latest = TelemetryLatest.__table__.c
    session.execute(stmt.on_conflict_do_update(
        index_elements=["device_id", "key_id"],
        set_={"ts": stmt.excluded.ts, "num": stmt.excluded.num, "text": stmt.excluded.text},
        where=stmt.excluded.ts >= latest.ts),
        [{"device_id": d, "key_id": k, "ts": ts, "num": num, "text": text}
         for d, k, ts, num, text in newest.values()])


Track = list[tuple[int, float, float]]  # a device's (ts, lon, lat) in time order


def _evaluate_rules(session: Session, points: Sequence[tuple[int, Point]],
                    devices: dict[int, Device]) -> None:
    """The batch's numeric points through the rules of their devices' profiles, in time order per
    device and rule; alarms are raised, kept up or cleared as the points cross the limits. A device
    reporting clears its no-data alarm."""
    registry = rules.in_force(session)
    watching = registry.by_profile_key()
    series: dict[tuple[int, str], list[tuple[int, str, float]]] = defaultdict(list)
    profile_of = {device_id: device.profile_code for device_id, device in devices.items()}  # per point
    for device_id, (key, ts, num, _text) in points:
        if num is None:
            continue
        for watcher in watching.get((profile_of[device_id], key), ()):
            series[(device_id, watcher.code)].append((ts, key, num))
    states = repo.rule_states(session, list(series)) if series else {}
    by_code = {r.code: r for r in registry.rules}
    # A zone is looked up once per rule and batch, for all its devices' positions.
    fenced: dict[GeofenceRule, list[tuple[int, RuleState, Track]]] = defaultdict(list)
    for (device_id, code), values in series.items():
        rule, state = by_code[code], states[(device_id, code)]
        values.sort()
        if isinstance(rule, ThresholdRule):
            _threshold(session, device_id, rule, state, [(ts, num) for ts, _key, num in values])
        elif isinstance(rule, RateRule):
            _rate(session, device_id, rule, state, [(ts, num) for ts, _key, num in values])
        elif isinstance(rule, GeofenceRule):
            fenced[rule].append((device_id, state, _positions(rule, values)))
    for fence, tracks in fenced.items():
        _geofence(session, fence, tracks)
    for confirmation in registry.confirmations:
        _confirm(session, confirmation, points, devices)
    _back_online(session, points, devices)


def _threshold(session: Session, device_id: int, rule: ThresholdRule, state: RuleState,
               values: Sequence[tuple[int, float]]) -> None:
    last_ts, since, raised = state.last_ts, state.breach_since, state.raised
    kept: tuple[int, float] | None = None  # the newest point that kept a raised alarm up
    for ts, value in values:
        if ts < last_ts:  # a late point does not move the alarm back in time
            continue
        last_ts = ts
        if rule.breached(value):
            since = ts if since is None else since
            if raised:
                kept = (ts, value)
            elif ts - since >= rule.for_s * 1000:
                raised, kept = True, None
                _raise_alarm(session, device_id, rule, ts, value)
        elif rule.recovered(value):
            since = None
            if raised:
                raised, kept = False, None
                _clear_alarm(session, device_id, rule, ts, value)
        elif raised:  # inside the hysteresis band: the alarm stays up
            kept = (ts, value)
        else:  # inside the band before raising: the limit is no longer passed
            since = None
    if kept is not None:
        _keep_up(session, device_id, rule, *kept)
    state.last_ts, state.breach_since, state.raised = last_ts, since, raised


def _follow(session: Session, device_id: int, rule: RateRule | GeofenceRule, state: RuleState,
            readings: Sequence[tuple[int, float, bool, bool]]) -> None:
    """(ts, value, breached, recovered) in time order through a rule without a duration: the first
    breach raises, the first recovery clears, anything between keeps a raised alarm up."""
    kept: tuple[int, float] | None = None
    for ts, value, breached, recovered in readings:
        if breached and not state.raised:
            state.raised, kept = True, None
            _raise_alarm(session, device_id, rule, ts, value)
        elif recovered and state.raised:
            state.raised, kept = False, None
            _clear_alarm(session, device_id, rule, ts, value)
        elif state.raised:
            kept = (ts, value)
    if kept is not None:
        _keep_up(session, device_id, rule, *kept)


def _rate(session: Session, device_id: int, rule: RateRule, state: RuleState,
          values: Sequence[tuple[int, float]]) -> None:
    """The rate from each point to the next, starting from the newest point of earlier batches."""
    readings: list[tuple[int, float, bool, bool]] = []
    for ts, value in values:
        if ts <= state.last_ts:  # late or repeated: a rate is measured forwards in time
            continue
        if state.last_value is not None:
            rate = rule.rate((state.last_ts, state.last_value), ts, value)
            readings.append((ts, rate, rate > rule.limit, rate < rule.clear_at))
        state.last_ts, state.last_value = ts, value
    _follow(session, device_id, rule, state, readings)


def _positions(rule: GeofenceRule, values: Sequence[tuple[int, str, float]]) -> Track:
    """(ts, lon, lat) of the moments that carry both position keys."""
    at: dict[int, dict[str, float]] = defaultdict(dict)
    for ts, key, num in values:
        at[ts][key] = num
    return [(ts, keys[rule.lon_key], keys[rule.lat_key]) for ts, keys in sorted(at.items())
            if rule.lon_key in keys and rule.lat_key in keys]


def _geofence(session: Session, rule: GeofenceRule, tracks: Sequence[tuple[int, RuleState, Track]]) -> None:
    """The positions of the rule's devices against its zone, looked up together; a late position
    (before the newest one seen) is left out, as a late point is by the other rules."""
    fresh = [(device_id, state, [p for p in track if p[0] >= state.last_ts])
             for device_id, state, track in tracks]
    flat = [p for _device_id, _state, track in fresh for p in track]
    if not flat:
        return
    inside = places_service.points_in_zone(session, lon=[p[1] for p in flat], lat=[p[2] for p in flat],
                                           code=rule.zone, polygon=rule.polygon)
    if inside is None:
        log.warning("geofence rule %s: zone %s is no grid or division with a boundary", rule.code, rule.zone)
        return
    answers = iter(inside)
    for device_id, state, track in fresh:
        readings: list[tuple[int, float, bool, bool]] = []
        for ts, _lon, _lat in track:
            within = next(answers)
            breached = rule.breached(within)
            readings.append((ts, 1.0 if within else 0.0, breached, not breached))
        _follow(session, device_id, rule, state, readings)
        if track:
            state.last_ts = track[-1][0]


def _back_online(session: Session, points: Sequence[tuple[int, Point]], devices: dict[int, Device]) -> None:
    """A device of a profile with a no-data rule that reports clears its alarm of the rule."""
    silent_rules = rules.in_force(session).no_data()
    if not silent_rules:
        return
    now_ms = _ms(utcnow())
    reporting = {device_id for device_id, _point in points}
    for rule in silent_rules:
        ids = [d for d in reporting if devices[d].profile_code == rule.profile]
        for device_id in repo.devices_with_active(session, rule.alarm_type, ids) if ids else ():
            _back(session, device_id, rule, now_ms)


def _back(session: Session, device_id: int, rule: NoDataRule, ts: int) -> None:
    """Clear a no-data alarm, keeping its value: how long the device had been silent when found."""
    alarm = repo.active_alarm(session, device_id, rule.alarm_type)
    if alarm is not None:
        _clear_alarm(session, device_id, rule, ts, alarm.value or 0.0)


def _confirm(session: Session, rule: ConfirmRule, points: Sequence[tuple[int, Point]],
             devices: dict[int, Device]) -> None:
    """A point meeting one signal of the rule raises its alarm when a device of the other signal
    nearby met its own within the window; the first signal's device recovering clears it."""
    first, second = rule.signals
    keys = {first.key, second.key}
    recovering: dict[int, tuple[int, float]] = {}
    for device_id, (key, ts, num, text) in points:
        if key not in keys:  # most points: the rule is about two keys only
            continue
        device = devices[device_id]
        for mine, other in ((first, second), (second, first)):
            if device.profile_code != mine.profile or key != mine.key:
                continue
            if not mine.met(num, text):
                if mine is first and num is not None and num < rule.clear_at:
                    recovering[device_id] = max(recovering.get(device_id, (0, 0.0)), (ts, num))
                continue
            window = rule.window_s * 1000
            for partner, p_num, p_text in repo.recent_nearby(
                    session, lon=device.lon, lat=device.lat, within_m=rule.within_m, profile=other.profile,
                    key=other.key, since_ts=ts - window, until_ts=ts + window):
                if not other.met(p_num, p_text):
                    continue
                if distance_km(device.lon, device.lat, partner.lon, partner.lat) * 1000 > rule.within_m:
                    continue
                originator = device if mine is first else partner
                if originator.id not in devices:  # another worker may be storing the partner's batch
                    repo.lock_devices(session, [originator.id])
                value = num if mine is first else p_num
                _raise_alarm(session, originator.id, rule, ts, value if value is not None else 0.0)
                break
    if recovering:
        for device_id in repo.devices_with_active(session, rule.alarm_type, recovering):
            ts, value = recovering[device_id]
            _clear_alarm(session, device_id, rule, ts, value)


def _raise_alarm(session: Session, device_id: int, rule: AnyRule, ts: int, value: float) -> None:
    """Create-or-update by (originator, type): a second rule of the same type updates the alarm."""
    alarm = repo.active_alarm(session, device_id, rule.alarm_type)
    if alarm is not None:
        alarm.end_ts, alarm.value = max(alarm.end_ts, ts), value
        return
    alarm = Alarm(device_id=device_id, type=rule.alarm_type, rule_code=rule.code, severity=rule.severity,
                  start_ts=ts, end_ts=ts, value=value)
    session.add(alarm)
    session.flush()
    emit(session, AlarmRaised(alarm_id=alarm.id, device_id=device_id, type=alarm.type,
                              severity=alarm.severity, rule_code=rule.code))


def _keep_up(session: Session, device_id: int, rule: AnyRule, ts: int, value: float) -> None:
    alarm = repo.active_alarm(session, device_id, rule.alarm_type)
    if alarm is not None:
        alarm.end_ts, alarm.value = max(alarm.end_ts, ts), value


def _clear_alarm(session: Session, device_id: int, rule: AnyRule, ts: int, value: float) -> None:
    alarm = repo.active_alarm(session, device_id, rule.alarm_type)
    if alarm is None:
        return
    alarm.status = "CLEARED_ACK" if alarm.status == "ACTIVE_ACK" else "CLEARED_UNACK"
    alarm.clear_ts, alarm.end_ts, alarm.value = ts, ts, value
    emit(session, AlarmCleared(alarm_id=alarm.id, device_id=device_id, type=alarm.type,
                               case_id=alarm.case_id))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class OfflineReport:
    raised: int
    cleared: int


def offline_alarms(db: Database, *, now: datetime | None = None) -> OfflineReport:
    """The no-data rules, which no batch can see: an alarm for each device of the rule's profile that
    has reported but has been silent for the rule's intervals (one query per rule), and the alarms of
    devices that have reported since cleared (ingestion clears them at once; this catches an upload
    of attributes only). A device that never reported is inactive, not offline. One transaction per
    rule."""
    now = now or utcnow()
    raised = cleared = 0
    with db.sessions() as session:
        silent_rules = rules.in_force(session).no_data()
    for rule in silent_rules:
        since = now - timedelta(seconds=rule.silent_s)
        with db.session() as session:
            for device in repo.silent_devices(session, profile=rule.profile, alarm_type=rule.alarm_type,
                                              before=since):
                silent = (now - device.last_activity_at).total_seconds() if device.last_activity_at else 0.0
                _raise_alarm(session, device.id, rule, _ms(now), silent)
                raised += 1
            for device in repo.reporting_with_active(session, profile=rule.profile,
                                                     alarm_type=rule.alarm_type, since=since):
                _back(session, device.id, rule, _ms(device.last_activity_at or now))
                cleared += 1
    return OfflineReport(raised=raised, cleared=cleared)


def offline_job(*, interval_s: int = 60) -> Job:
    """'perception.offline_alarms' for the scheduler."""
    return Job("perception.offline_alarms", interval_s, lambda db, now: offline_alarms(db, now=now))


def ingest_queue(state: Any) -> GroupCommit[Upload, None, None]:
    """The group commit of HTTP ingestion on an app's state (created on first use)."""
    queue: GroupCommit[Upload, None, None] | None = getattr(state, "perception_ingest", None)
    if queue is None:
        queue = GroupCommit(state.db, name="device-ingest", write=store_uploads,
                            answer=lambda _session, _upload, _written: None)
        state.perception_ingest = queue
    return queue


def attributes_for(session: Session, *, device_id: int | None = None, token: str = "",
                   client_keys: Sequence[str], shared_keys: Sequence[str]) -> AttributesRead:
    """A device, named by its id or its token, reading its client and shared attributes (all of a
    scope when no keys are named)."""
    device = (repo.devices_by_token(session, [token]).get(token) if device_id is None
              else session.get(Device, device_id))
    if device is None:
        raise IngestRejected("unknown_token", UNKNOWN_DEVICE, status=401)
    rows = session.scalars(select(DeviceAttribute).where(DeviceAttribute.device_id == device.id,
                                                         DeviceAttribute.scope.in_(("client", "shared"))))
    wanted = {"client": set(client_keys), "shared": set(shared_keys)}
    answer: dict[str, dict[str, Any]] = {"client": {}, "shared": {}}
    for row in rows:
        if not wanted[row.scope] or row.key in wanted[row.scope]:
            answer[row.scope][row.key] = row.value
    return AttributesRead(**answer)


# --- the rules editor ---------------------------------------------------------------------------


def rules_read(session: Session, *, version: int | None = None) -> RulesRead:
    """The rules in force (or an older saved version, to read or restore) with the saved versions."""
    rows = list(session.execute(select(RuleSet, User.display_name)
                                .outerjoin(User, User.id == RuleSet.created_by_id)
                                .order_by(RuleSet.id.desc()).limit(50)))
    if version is None:
        chosen = rows[0][0] if rows else None
    elif (chosen := session.get(RuleSet, version)) is None:
        raise NotFound(f"rules version {version} not found")
    text = chosen.text if chosen is not None else rules.DEFAULT_PATH.read_text(encoding="utf-8")
    shown = rules.parse(text, source=f"rules v{chosen.id}") if chosen is not None else rules.registry()
    return RulesRead(version=chosen.id if chosen is not None else None,
                     in_force=rows[0][0].id if rows else None, text=text,
                     rules=[r.model_dump(mode="json", exclude_none=True) for r in shown.all()],
                     versions=[RuleVersionRead(id=r.id, comment=r.comment, created_by=name,
                                               created_at=r.created_at) for r, name in rows])


def save_rules(session: Session, *, actor: User | None, data: RulesWrite) -> RulesRead:
    """A new version of the rules, in force within a second in every process once committed; refused
    whole, with the line and field, when any rule is wrong."""
    _check_manage(actor)
    try:
        rules.parse(data.text, source="rules")
    except rules.RulesError as exc:
        raise ValidationFailed(str(exc), field="text") from None
    row = RuleSet(text=data.text, comment=data.comment.strip(), created_by_id=actor.id if actor else None)
    session.add(row)
    session.flush()
    rules.forget_in_force(session)
    return rules_read(session, version=row.id)


# --- devices ------------------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, like ThingsBoard's


def status_of(device: Device, *, now: datetime) -> Status:
    if device.last_activity_at is None:
        return "inactive"
    profile = profiles.registry().get(device.profile_code)
    quiet = now - device.last_activity_at
    return "online" if quiet <= timedelta(seconds=profile.offline_after_s) else "offline"


def _status_condition(status: str, now: datetime) -> ColumnElement[bool]:
    if status == "inactive":
        return Device.last_activity_at.is_(None)
    recent = or_(*(and_(Device.profile_code == p.code,
                        Device.last_activity_at >= now - timedelta(seconds=p.offline_after_s))
                   for p in profiles.registry().profiles))
    return recent if status == "online" else and_(Device.last_activity_at.is_not(None), ~recent)


def _may_manage(viewer: User | None) -> bool:
    return viewer is None or has_permission(viewer, "devices.manage")


def to_read(session: Session, device: Device, *, viewer: User | None, now: datetime,
            with_latest: bool = False) -> DeviceRead:
    profile = profiles.registry().get(device.profile_code)
    unit = session.get(OrgUnit, device.org_unit_id) if device.org_unit_id is not None else None
    latest: dict[str, LatestValue] = {}
    if with_latest:
        rows = repo.latest(session, device.id)
        names = repo.key_names(session, [r.key_id for r in rows])
        latest = {names[r.key_id]: LatestValue(ts=r.ts, at=datetime.fromtimestamp(r.ts / 1000, UTC),
                                               value=r.num if r.text is None else r.text)
                  for r in rows if r.key_id in names}
    return DeviceRead(
        id=device.id, name=device.name, profile=profile.code, profile_name=profile.name_zh, kind=profile.kind,
        lon=device.lon, lat=device.lat, grid_code=device.grid_code, village_code=device.village_code,
        division_code=device.division_code,
        org_unit=UnitRef(id=unit.id, code=unit.code, name=unit.name) if unit else None,
        status=status_of(device, now=now), last_activity_at=device.last_activity_at,
        synthetic=device.synthetic, gateway_id=device.gateway_id,
        access_token=device.access_token if _may_manage(viewer) else None, latest=latest,
        position_confirmed=device.position_confirmed)


def _check_manage(actor: User | None) -> None:
    if not _may_manage(actor):
        raise Forbidden("your role may not manage devices (needs permission 'devices.manage')")


def _placed(data: DeviceCreate, index: PlaceIndex, actor: User | None) -> dict[str, Any]:
    """A device's values from its point and profile, or the error refusing it (reads nothing)."""
    profile = profiles.registry().get(data.profile)
    try:
        hit = places_service.lookup_point(index, lon=data.lon, lat=data.lat)
    except NotFound as exc:
        raise ValidationFailed(exc.message, field="lon") from None
    if hit.village is None:
        raise ValidationFailed(f"point ({data.lon}, {data.lat}) lies in no village", field="lon")
    division = hit.grid.code if hit.grid else hit.village.code
    if actor is not None:
        authorize(actor, division_code=division, resource="division", resource_id=division, hide=False)
    return {"name": data.name.strip(), "profile_code": profile.code, "lon": hit.lon, "lat": hit.lat,
            "grid_code": hit.grid.code if hit.grid else None, "village_code": hit.village.code,
            "division_code": division, "department": profile.department}


def register_devices(session: Session, *, items: Sequence[DeviceCreate], index: PlaceIndex,
                     actor: User | None, synthetic: bool = False,
                     now: datetime | None = None) -> list[Device | CityopsError]:
    """Register devices at their points: grid and village from the point, the owning department from
    the profile, a new access token each. Per item the device or the error refusing it (a name
    already taken, in the city or earlier in the list, is a Conflict); the others are registered."""
    _check_manage(actor)
    now = now or utcnow()
    placed: list[dict[str, Any] | CityopsError] = []
    for data in items:
        try:
            placed.append(_placed(data, index, actor))
        except CityopsError as exc:
            placed.append(exc)
    names = [p["name"] for p in placed if isinstance(p, dict)]
    taken = set(session.scalars(select(Device.name).where(Device.name.in_(names)))) if names else set()
    units = {code: unit_id for code, unit_id in session.execute(select(OrgUnit.code, OrgUnit.id).where(
        OrgUnit.code.in_({f"dept-{p['department']}" for p in placed if isinstance(p, dict)})))}
    rows: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any] | CityopsError] = []
    for values in placed:
        if isinstance(values, dict):
            if values["name"] in taken:
                values = Conflict(f"a device named {values['name']!r} exists already", field="name")
            else:
                taken.add(values["name"])
                department = values.pop("department")
                values = {**values, "org_unit_id": units.get(f"dept-{department}"),
                          "access_token": new_token(), "token_changed_at": now, "synthetic": synthetic,
                          "created_at": now}
                rows.append(values)
        outcomes.append(values)
    made = iter(insert_all(session, Device, rows, key="name"))
    return [next(made) if isinstance(o, dict) else o for o in outcomes]


def create_device(session: Session, *, data: DeviceCreate, index: PlaceIndex, actor: User | None,
                  synthetic: bool = False, now: datetime | None = None) -> Device:
    """Register one device (see register_devices); its error is raised."""
    [outcome] = register_devices(session, items=[data], index=index, actor=actor, synthetic=synthetic,
                                 now=now)
    if isinstance(outcome, CityopsError):
        raise outcome
    return outcome


def visible_device(session: Session, *, viewer: User | None, device_id: int) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"device {device_id} not found")
    if viewer is not None:
        authorize(viewer, division_code=device.division_code, org_unit_id=device.org_unit_id,
                  resource="device", resource_id=device_id)
    return device


def rotate_token(session: Session, *, actor: User | None, device_id: int) -> Device:
    """A new access token; the old one stops working at once."""
    device = visible_device(session, viewer=actor, device_id=device_id)
    _check_manage(actor)
    device.access_token = new_token()
    device.token_changed_at = utcnow()
    session.flush()
    return device


def revoke_token(session: Session, *, actor: User | None, device_id: int) -> Device:
    device = visible_device(session, viewer=actor, device_id=device_id)
    _check_manage(actor)
    device.access_token = None
    device.token_changed_at = utcnow()
    session.flush()
    return device


def _list_condition(viewer: User | None, *, profile: str | None, status: str | None,
                    q: str | None, now: datetime) -> ColumnElement[bool]:
    conditions = [scope_filter(viewer, Device.division_code, Device.org_unit_id) if viewer else true()]
    if profile:
        conditions.append(Device.profile_code == profiles.registry().get(profile).code)
    if status:
        if status not in STATUSES:
            raise ValidationFailed(f"unknown status {status!r}; known: {', '.join(STATUSES)}", field="status")
        conditions.append(_status_condition(status, now))
    if q:
        conditions.append(Device.name.contains(q.strip(), autoescape=True) if q.strip() else false())
    return and_(*conditions)


def list_devices(session: Session, *, viewer: User | None, profile: str | None = None,
                 status: str | None = None, q: str | None = None, limit: int = 50,
                 offset: int = 0) -> DevicePage:
    now = utcnow()
    condition = _list_condition(viewer, profile=profile, status=status, q=q, now=now)
    rows = session.scalars(repo.device_page(condition).limit(limit).offset(offset)).all()
    return DevicePage(items=[to_read(session, d, viewer=viewer, now=now) for d in rows],
                      total=repo.count(session, condition), limit=limit, offset=offset)


def map_points(session: Session, *, viewer: User | None, profile: str | None = None,
               status: str | None = None, q: str | None = None) -> list[dict[str, Any]]:
    """Where the listed devices are, with their status, for the map (the first MAP_POINTS)."""
    now = utcnow()
    condition = _list_condition(viewer, profile=profile, status=status, q=q, now=now)
    rows = session.scalars(repo.device_page(condition).limit(MAP_POINTS)).all()
    return [{"id": d.id, "name": d.name, "lon": d.lon, "lat": d.lat, "status": status_of(d, now=now)}
            for d in rows]


def get_device(session: Session, *, viewer: User | None, device_id: int) -> DeviceRead:
    device = visible_device(session, viewer=viewer, device_id=device_id)
    return to_read(session, device, viewer=viewer, now=utcnow(), with_latest=True)


def series(session: Session, *, viewer: User | None, device_id: int, key: str | None,
           start: datetime | None = None, end: datetime | None = None, limit: int = 1000,
           every: str = "raw") -> SeriesRead:
    """The points of one key in a period (default the last 24 hours), oldest first: raw, or the
    average per minute ("1m") or hour ("1h") from the rollups, which outlive the raw points."""
    device = visible_device(session, viewer=viewer, device_id=device_id)
    if not key:
        raise ValidationFailed("name the key of the series", field="key")
    if every not in ("raw", "1m", "1h"):
        raise ValidationFailed("every is raw, 1m or 1h", field="every")
    end = end or utcnow()
    start = start or end - timedelta(hours=24)
    if start > end:
        raise ValidationFailed("start is after end", field="start")
    spec = profiles.registry().get(device.profile_code).key(key)
    key_id = repo.key_ids(session, [key], add=False).get(key)
    span = (int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    points: list[tuple[int, float | str | None]] = []
    if key_id is not None and every == "raw":
        points = [(r.ts, r.num if r.text is None else r.text)
                  for r in repo.series(session, device.id, key_id, *span, limit)]
    elif key_id is not None:
        points = [(r.bucket, r.sum / r.count) for r in repo.rollups(
            session, device.id, key_id, 60 if every == "1m" else 3600, *span, limit) if r.count]
    return SeriesRead(key=key, unit=spec.unit if spec else None, points=points)


def rejections(session: Session, *, viewer: User | None, reason: str | None = None,
               limit: int = 100) -> RejectionsRead:
    """The dead-letter list of ingestion: counts by reason and the newest rejected messages."""
    _check_manage(viewer)
    counts = repo.rejection_counts(session)
    rows = repo.recent_rejections(session, reason=reason, limit=limit)
    return RejectionsRead(counts=counts, items=[RejectionRead.model_validate(r) for r in rows])


# --- bulk import --------------------------------------------------------------------------------

IMPORT_COLUMNS = {"名称": "name", "设备名称": "name", "类型": "profile", "设备类型": "profile",
                  "经度": "lon", "纬度": "lat"}


@dataclass(frozen=True)
class ImportReport:
    created: int
    rejected: list[tuple[int, str, str]]  # (line, field, reason)


def import_devices(session: Session, *, data: bytes, filename: str, index: PlaceIndex,
                   actor: User | None) -> ImportReport:
    """Register the devices of a CSV or Excel file (columns name, profile, lon, lat, or 名称, 类型,
    经度, 纬度); a row that cannot be registered is reported with its line and reason, the others are."""
    _check_manage(actor)
    rejected: list[tuple[int, str, str]] = []
    valid: list[tuple[int, DeviceCreate]] = []
    for line, row in read_table(data, filename, aliases=IMPORT_COLUMNS):
        values = {k: (str(row[k]).strip() if row.get(k) is not None else "") for k in
                  ("name", "profile", "lon", "lat")}
        try:
            point = {"lon": float(values["lon"]), "lat": float(values["lat"])}
        except ValueError:
            rejected.append((line, "lon", "lon and lat must be numbers (WGS84 degrees)"))
            continue
        try:
            valid.append((line, DeviceCreate(name=values["name"], profile=values["profile"], **point)))
        except PydanticValidationError as exc:
            error = exc.errors()[0]
            rejected.append((line, ".".join(str(p) for p in error["loc"]), error["msg"]))
    outcomes = register_devices(session, items=[body for _, body in valid], index=index, actor=actor)
    for (line, _body), outcome in zip(valid, outcomes, strict=True):
        if isinstance(outcome, CityopsError):
            rejected.append((line, outcome.field or "", outcome.message))
    return ImportReport(created=len(valid) - sum(isinstance(o, CityopsError) for o in outcomes),
                        rejected=sorted(rejected))


# --- rollups and retention ----------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionReport:
    hours_rolled_up: int
    raw_deleted: int  # points, whether their day's partition was dropped or they were deleted
    partitions_created: int = 0  # PostgreSQL's day partitions
    partitions_dropped: int = 0


def roll_up_and_expire(db: Database, *, keep_days: int, now: datetime | None = None,
                       batch: int = 2000) -> RetentionReport:
    """Recompute the minute and hour rollups of every hour that received points, then delete the raw
    points older than `keep_days` (their rollups stay). Each batch of hours is its own transaction.
    On PostgreSQL the day partitions of the coming days are made first, and an expired day's
    partition is dropped whole; the rest (the day the cutoff falls in, the default partition) is
    deleted as on SQLite."""
    now = now or utcnow()
    now_ms = int(now.timestamp() * 1000)
    cutoff_ms = now_ms - keep_days * 86_400_000
    rolled = 0
    while True:
        with db.session() as session:
            hours = repo.take_dirty_hours(session, before_ms=now_ms, limit=batch)
            repo.recompute_rollups(session, hours)
        rolled += len(hours)
        if len(hours) < batch:
            break
    with db.session() as session:
        created = repo.ensure_raw_partitions(session, now_ms=now_ms, keep_from_ms=cutoff_ms)
    deleted = dropped = 0
    with db.session() as session:
        if repo.expired_raw_days(session, cutoff_ms):
            repo.lock_raw(session)  # no insert until the drop commits
            days = repo.expired_raw_days(session, cutoff_ms)  # again, under the lock
            end_ms = (days[-1] + 1) * 86_400_000 if days else 0
            # Hours of those days marked since the loop above are rolled up before their points go.
            while late := repo.take_dirty_hours(session, before_ms=end_ms, limit=batch):
                repo.recompute_rollups(session, late)
                rolled += len(late)
            deleted, dropped = repo.drop_raw_days(session, days), len(days)
    with db.session() as session:
        deleted += repo.delete_raw_before(session, cutoff_ms)
    return RetentionReport(hours_rolled_up=rolled, raw_deleted=deleted, partitions_created=len(created),
                           partitions_dropped=dropped)


def retention_job(*, keep_days: int, interval_s: int = 600) -> Job:
    """'perception.rollups_and_retention' for the scheduler."""
    return Job("perception.rollups_and_retention", interval_s,
               lambda db, now: roll_up_and_expire(db, keep_days=keep_days, now=now))


# --- alarms -------------------------------------------------------------------------------------

ACTIVE = ("ACTIVE_UNACK", "ACTIVE_ACK")


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1000, UTC)


def alarm_read(alarm: Alarm, device: Device) -> AlarmRead:
    return AlarmRead(id=alarm.id, device_id=device.id, device_name=device.name, type=alarm.type,
                     rule_code=alarm.rule_code, severity=alarm.severity, status=alarm.status,
                     start_at=_at(alarm.start_ts), end_at=_at(alarm.end_ts),
                     clear_at=_at(alarm.clear_ts) if alarm.clear_ts is not None else None,
                     ack_at=alarm.ack_at, value=alarm.value, case_id=alarm.case_id)


def acknowledge(session: Session, *, actor: User | None, alarm_id: int) -> AlarmRead:
    """A person has seen the alarm: ACTIVE_UNACK -> ACTIVE_ACK, CLEARED_UNACK -> CLEARED_ACK."""
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFound(f"alarm {alarm_id} not found")
    device = visible_device(session, viewer=actor, device_id=alarm.device_id)
    if actor is not None and not has_permission(actor, "devices.view"):
        raise Forbidden("your role may not acknowledge alarms (needs permission 'devices.view')")
    if alarm.ack_at is None:
        alarm.ack_at = utcnow()
        alarm.status = {"ACTIVE_UNACK": "ACTIVE_ACK", "CLEARED_UNACK": "CLEARED_ACK"}.get(alarm.status,
                                                                                          alarm.status)
        session.flush()
    return alarm_read(alarm, device)


def clear_by_hand(session: Session, *, actor: User | None, alarm_id: int) -> AlarmRead:
    """A person clears an active alarm, as in ThingsBoard: ACTIVE_UNACK -> CLEARED_UNACK, ACTIVE_ACK ->
    CLEARED_ACK (a cleared alarm is left as it is). Its case is noted through AlarmCleared, and the rules
    of its type start over on the device: the next breach raises a new alarm instead of being taken
    for the one a person closed."""
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFound(f"alarm {alarm_id} not found")
    device = visible_device(session, viewer=actor, device_id=alarm.device_id)
    _check_manage(actor)
    if alarm.status in ACTIVE:
        alarm.status = "CLEARED_ACK" if alarm.status == "ACTIVE_ACK" else "CLEARED_UNACK"
        alarm.clear_ts = int(utcnow().timestamp() * 1000)
        same_type = (r.code for r in rules.in_force(session).all() if r.alarm_type == alarm.type)
        codes = {alarm.rule_code, *same_type}
        repo.reset_rule_states(session, alarm.device_id, codes)
        session.flush()
        emit(session, AlarmCleared(alarm_id=alarm.id, device_id=alarm.device_id, type=alarm.type,
                                   case_id=alarm.case_id))
    return alarm_read(alarm, device)


# --- the alarm console's filters and the fire scenario board ------------------------------------

SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING")  # ThingsBoard's, most severe first
FIRE_CATEGORY = "fire"
RATE_DAYS = 90


def _alarm_scope(viewer: User | None) -> ColumnElement[bool]:
    return scope_filter(viewer, Device.division_code, Device.org_unit_id) if viewer else true()


def list_alarms(session: Session, *, viewer: User | None, active_only: bool = True,
                severity: str | None = None, alarm_type: str | None = None, device_id: int | None = None,
                limit: int = 100, offset: int = 0) -> AlarmPage:
    """Alarms of the devices in scope, newest first, narrowed by severity, type and device."""
    conditions = [_alarm_scope(viewer)]
    if active_only:
        conditions.append(Alarm.status.in_(ACTIVE))
    if severity:
        if severity not in SEVERITIES:
            raise ValidationFailed(f"unknown severity {severity!r}; known: {', '.join(SEVERITIES)}",
                                   field="severity")
        conditions.append(Alarm.severity == severity)
    if alarm_type:
        conditions.append(Alarm.type == alarm_type)
    if device_id is not None:
        conditions.append(Alarm.device_id == device_id)
    condition = and_(*conditions)
    rows = repo.alarm_page(session, condition, limit=limit, offset=offset)
    return AlarmPage(items=[alarm_read(a, d) for a, d in rows], total=repo.alarm_count(session, condition))


@dataclass(frozen=True)
class FireRules:
    """What the configured rules make of a fire, read from the rules rather than named in code."""

    types: frozenset[str]  # alarm types whose rules hand their cases to the fire category
    confirmed_types: frozenset[str]  # raised by confirmations across devices (smoke and a camera)
    smoke_codes: frozenset[str]  # threshold rules on the signal those confirmations start from
    window_s: int  # the confirmation window


def fire_rules(session: Session) -> FireRules:
    registry = rules.in_force(session)
    confirmations = [c for c in registry.confirmations if c.case_category == FIRE_CATEGORY]
    starts = {(c.profile, c.key) for c in confirmations}
    return FireRules(
        types=frozenset(r.alarm_type for r in registry.all() if r.case_category == FIRE_CATEGORY),
        confirmed_types=frozenset(c.alarm_type for c in confirmations),
        smoke_codes=frozenset(r.code for r in registry.rules if isinstance(r, ThresholdRule)
                              and (r.profile, r.key) in starts and r.case_category == FIRE_CATEGORY),
        window_s=max((c.window_s for c in confirmations), default=0))


def _check_fire_board(viewer: User | None) -> None:
    # The fire brigade sees devices; leaders see the city's figures without the device pages.
    if viewer is not None and not (has_permission(viewer, "devices.view")
                                   or has_permission(viewer, "dashboard.view")):
        raise Forbidden("your role may not see the fire board (needs permission 'devices.view' or "
                        "'dashboard.view')")


def _confirmed(fire: FireRules) -> ColumnElement[bool]:
    return repo.confirmed_by(sorted(fire.confirmed_types), fire.window_s * 1000)


def false_alarm_rates(session: Session, *, viewer: User | None, days: int = RATE_DAYS,
                      now: datetime | None = None, limit: int = 100, offset: int = 0) -> FalseAlarmPage:
    """Per detector in scope with smoke alarms raised in the last `days` days: how many, how many a
    confirmed fire of the device overlapped (one starting within the alarm's span widened by the
    confirmation window), and how many were false: cleared with no such fire. Worst rate first."""
    _check_fire_board(viewer)
    fire = fire_rules(session)
    since = int(((now or utcnow()) - timedelta(days=days)).timestamp() * 1000)
    condition = and_(_alarm_scope(viewer), Alarm.rule_code.in_(fire.smoke_codes), Alarm.start_ts >= since)
    rows, total = repo.outcomes_by_device(session, condition, _confirmed(fire), limit=limit, offset=offset)
    units = repo.unit_names(session, (d.org_unit_id for d, *_counts in rows))
    items = [FalseAlarmRate(device_id=d.id, device_name=d.name, division_code=d.division_code,
                            org_unit_name=units.get(d.org_unit_id or 0), alarms=n, confirmed=c,
                            false_alarms=f, active=a, rate=f / n)
             for d, n, c, f, a in rows]
    return FalseAlarmPage(items=items, total=total, days=days, window_s=fire.window_s)


def _day_start_ms(now: datetime, timezone: str) -> int:
    local = now.astimezone(ZoneInfo(timezone))
    return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)


def fire_board(session: Session, *, viewer: User, timezone: str = "Asia/Shanghai",
               now: datetime | None = None, limit: int = MAP_POINTS, rates_limit: int = 100,
               rates_offset: int = 0) -> FireBoard:
    """The fire scenario in the viewer's scope: the active alarms of the fire rules with their cases,
    today's (local day) confirmed fires and smoke alarms no fire confirmed, and the detectors'
    false-alarm rates."""
    _check_fire_board(viewer)
    fire = fire_rules(session)
    now = now or utcnow()
    scope, day, confirmed = _alarm_scope(viewer), _day_start_ms(now, timezone), _confirmed(fire)
    is_smoke, is_fire = Alarm.rule_code.in_(fire.smoke_codes), Alarm.type.in_(fire.confirmed_types)
    active_now = and_(scope, Alarm.type.in_(fire.types), Alarm.status.in_(ACTIVE))
    active = repo.alarms_with_flag(session, active_now, confirmed, limit=limit)
    today = repo.alarms_with_flag(session, and_(scope, or_(is_smoke, is_fire), Alarm.start_ts >= day),
                                  confirmed, limit=limit)
    counts = FireCounts(
        active=repo.alarm_count(session, active_now),
        confirmed_today=repo.alarm_count(session, and_(scope, is_fire, Alarm.start_ts >= day)),
        unconfirmed_smoke_today=repo.alarm_count(session, and_(scope, is_smoke, Alarm.start_ts >= day,
                                                               ~confirmed)))
    case_ids = sorted({a.case_id for a, _d, _f in (*active, *today) if a.case_id is not None})
    cases = {c.id: c for c in case_service.cases_by_ids(session, viewer=viewer, ids=case_ids)}

    def read(alarm: Alarm, device: Device, overlapped: bool) -> FireAlarmRead:
        case = cases.get(alarm.case_id or 0)
        return FireAlarmRead(
            **alarm_read(alarm, device).model_dump(), lon=device.lon, lat=device.lat,
            confirmed_fire=alarm.type in fire.confirmed_types,
            confirmed=overlapped if alarm.rule_code in fire.smoke_codes else None,
            case=None if alarm.case_id is None else AlarmCase(
                id=alarm.case_id, number=case.number if case else None, status=case.status if case else None,
                org_unit_name=case.org_unit.name if case and case.org_unit else None))

    rank = {s: i for i, s in enumerate(SEVERITIES)}
    ordered = sorted(active, key=lambda row: (rank.get(row[0].severity, len(rank)), -row[0].start_ts))
    return FireBoard(counts=counts, active=[read(*row) for row in ordered],
                     today=[read(*row) for row in today],
                     rates=false_alarm_rates(session, viewer=viewer, now=now, limit=rates_limit,
                                             offset=rates_offset))


# --- server-side RPC and shared attributes ------------------------------------------------------
# ThingsBoard's commands to devices: an RPC waits in `device_rpc` until the ingest worker publishes
# it over MQTT (perception/mqtt.py) or the device's HTTP long poll takes it; its answer, and its end
# at the deadline, are kept. Shared attributes are stored and pushed to the device through
# `device_downlinks`, a small queue the same worker empties.

RPC_METHOD = re.compile(r"^[\w.:/-]{1,64}$")
MAX_RPC_PARAMS_BYTES = 64 * 1024
MAX_RPC_RESPONSE_BYTES = 64 * 1024
MAX_OPEN_RPCS = 100  # per device: a device that is away should not pile up commands without end
MAX_SHARED_KEYS = 100
ATTRIBUTES_TOPIC = "v1/devices/me/attributes"  # where ThingsBoard devices get shared attribute updates


def _rpc_status(rpc: DeviceRpc, now: datetime) -> str:
    """The status, as the expiry sweep will store it once it has passed."""
    if rpc.status in RPC_OPEN and rpc.expires_at <= now:
        return "EXPIRED" if rpc.status == "QUEUED" else "TIMEOUT"
    return rpc.status


def rpc_read(rpc: DeviceRpc, *, now: datetime | None = None) -> RpcRead:
    return RpcRead(id=rpc.id, device_id=rpc.device_id, method=rpc.method, params=rpc.params,
                   oneway=rpc.oneway, status=_rpc_status(rpc, now or utcnow()), transport=rpc.transport,
                   timeout_ms=rpc.timeout_ms,
                   expires_at=rpc.expires_at, created_by=rpc.created_by, created_at=rpc.created_at,
                   sent_at=rpc.sent_at, delivered_at=rpc.delivered_at, completed_at=rpc.completed_at,
                   response=rpc.response, error=rpc.error)


def create_rpc(session: Session, *, actor: User | None, device_id: int, data: RpcCreate,
               now: datetime | None = None) -> RpcRead:
    """Queue a command for a device (devices.manage, in scope); it goes out within a moment if the
    device is connected, and ends TIMEOUT (or EXPIRED if never sent) after `timeout_ms`."""
    device = visible_device(session, viewer=actor, device_id=device_id)
    _check_manage(actor)
    method = data.method.strip()
    if not RPC_METHOD.match(method):
        raise ValidationFailed("method: 1 to 64 letters, digits and _ . - : /", field="method")
    try:
        size = len(json.dumps(data.params, ensure_ascii=False, allow_nan=False).encode())
    except ValueError:
        raise ValidationFailed("params: numbers must be finite", field="params") from None
    if size > MAX_RPC_PARAMS_BYTES:
        raise ValidationFailed(f"params: {size} bytes of JSON; at most {MAX_RPC_PARAMS_BYTES}",
                               field="params")
    if repo.open_rpc_count(session, device.id) >= MAX_OPEN_RPCS:
        raise TooManyRequests(f"device {device.id} has {MAX_OPEN_RPCS} commands waiting already; wait for "
                              "them to be answered or to time out")
    now = now or utcnow()
    rpc = DeviceRpc(device_id=device.id, method=method, params=data.params, oneway=data.oneway,
                    timeout_ms=data.timeout_ms, status="QUEUED",
                    expires_at=now + timedelta(milliseconds=data.timeout_ms),
                    created_by=actor.id if actor is not None else None, created_at=now)
    session.add(rpc)
    session.flush()
    return rpc_read(rpc, now=now)


def get_rpc(session: Session, *, viewer: User | None, rpc_id: int) -> RpcRead:
    rpc = session.get(DeviceRpc, rpc_id)
    if rpc is None:
        raise NotFound(f"RPC {rpc_id} not found")
    visible_device(session, viewer=viewer, device_id=rpc.device_id)
    return rpc_read(rpc)


def list_rpcs(session: Session, *, viewer: User | None, device_id: int, limit: int = 50,
              offset: int = 0) -> RpcPage:
    """A device's commands, newest first."""
    device = visible_device(session, viewer=viewer, device_id=device_id)
    rows, total = repo.rpc_page(session, device.id, limit=limit, offset=offset)
    now = utcnow()
    return RpcPage(items=[rpc_read(r, now=now) for r in rows], total=total)


def rpc_outcome(db: Database, *, rpc_id: int, now: datetime | None = None) -> RpcRead | None:
    """The RPC once it has ended (the deadline stored as TIMEOUT or EXPIRED), or None while open; for
    a caller waiting on it (one short transaction, no scope check: the caller created it)."""
    now = now or utcnow()
    with db.session() as session:
        repo.expire_rpcs(session, now=now, rpc_id=rpc_id)
        rpc = session.get(DeviceRpc, rpc_id)
        return rpc_read(rpc, now=now) if rpc is not None and rpc.status not in RPC_OPEN else None


def claim_rpcs(session: Session, *, now: datetime | None = None, limit: int = 200) -> list[repo.RpcToSend]:
    """Queued RPCs for an MQTT sender, marked SENT (each taken by one sender)."""
    return repo.claim_queued_rpcs(session, now=now or utcnow(), limit=limit)


def rpcs_delivered(session: Session, *, rpc_ids: Sequence[int], now: datetime | None = None) -> None:
    """The broker acknowledged them (QoS 1 PUBACK). That means the broker has the message, not that
    the device got it: the broker acknowledges a device that is away too, and drops it for a device
    that is not connected. Two-way RPCs end with the answer, one-way ones here (SUCCESSFUL)."""
    repo.mark_rpcs_delivered(session, rpc_ids, now=now or utcnow())


def rpcs_unsent(session: Session, *, rpc_ids: Sequence[int]) -> None:
    repo.requeue_rpcs(session, rpc_ids)


def rpc_for_http(session: Session, *, device_id: int, now: datetime | None = None) -> dict[str, Any] | None:
    """The next command for a device polling over HTTP, as ThingsBoard sends it, or None."""
    claimed = repo.claim_rpc_for_http(session, device_id, now=now or utcnow())
    if claimed is None:
        return None
    rpc_id, _device_id, method, params, _oneway = claimed
    return {"id": rpc_id, "method": method, "params": params}


def device_by_token(session: Session, *, token: str) -> int:
    """The id of the device with this access token; 401 otherwise."""
    device = repo.devices_by_token(session, [token]).get(token)
    if device is None:
        raise IngestRejected("unknown_token", UNKNOWN_DEVICE, status=401)
    return device.id


def answer_rpc(session: Session, *, device_id: int, rpc_id: int, body: bytes,
               now: datetime | None = None) -> CityopsError | None:
    """A device's answer to a two-way RPC: stored, SUCCESSFUL. Returns (not raises: the MQTT batch goes
    on) why it was not taken: not this device's RPC, one-way, ended already, or past its deadline (then
    TIMEOUT is stored). A body that is not JSON is kept as text, as ThingsBoard does; one too large
    ends the RPC FAILED."""
    now = now or utcnow()
    rpc = session.get(DeviceRpc, rpc_id)
    if rpc is None or rpc.device_id != device_id:
        return NotFound(f"RPC {rpc_id} not found for this device")
    if rpc.oneway:
        return Conflict(f"RPC {rpc_id} is one-way: no answer is expected")
    status = _rpc_status(rpc, now)
    if status not in RPC_OPEN:
        if status != rpc.status:
            rpc.status, rpc.completed_at = status, now
        return Conflict(f"RPC {rpc_id} has ended already ({status})")
    rpc.completed_at = now
    if len(body) > MAX_RPC_RESPONSE_BYTES:
        rpc.status, rpc.error = "FAILED", f"the answer is {len(body)} bytes; at most {MAX_RPC_RESPONSE_BYTES}"
        return None
    try:
        rpc.response = orjson.loads(body) if body.strip() else None  # strict: PostgreSQL refuses NaN
    except orjson.JSONDecodeError:
        rpc.response = body.decode("utf-8", "replace")
    rpc.status = "SUCCESSFUL"
    return None


def expire_rpcs(db: Database, *, now: datetime | None = None) -> int:
    """Store the end of the RPCs past their deadline (TIMEOUT, or EXPIRED if never sent)."""
    with db.session() as session:
        return repo.expire_rpcs(session, now=now or utcnow())


def rpc_expiry_job(*, interval_s: int = 5) -> Job:
    """'perception.rpc_expiry' for the scheduler (reads show the right status meanwhile)."""
    return Job("perception.rpc_expiry", interval_s, lambda db, now: expire_rpcs(db, now=now))


def set_shared_attributes(session: Session, *, actor: User | None, device_id: int, values: dict[str, Any],
                          now: datetime | None = None) -> AttributesRead:
    """Store shared attributes (devices.manage) and queue them for the device over MQTT, where
    ThingsBoard devices get them on `v1/devices/me/attributes`. A device that is not connected
    misses the push and reads them when it asks (ThingsBoard's way too)."""
    device = visible_device(session, viewer=actor, device_id=device_id)
    _check_manage(actor)
    if len(values) > MAX_SHARED_KEYS:
        raise ValidationFailed(f"at most {MAX_SHARED_KEYS} attributes at once", field="attributes")
    try:
        checked = parse_attributes(json.dumps(values, ensure_ascii=False, allow_nan=False).encode())
    except IngestRejected as exc:
        raise ValidationFailed(exc.message, field=exc.field or "attributes") from None
    except ValueError:
        raise ValidationFailed("numbers must be finite", field="attributes") from None
    now = now or utcnow()
    stmt = insert_or_ignore(session, DeviceAttribute)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["device_id", "scope", "key"],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}),
        [{"device_id": device.id, "scope": "shared", "key": k, "value": v, "updated_at": now}
         for k, v in checked.items()])
    session.add(DeviceDownlink(device_id=device.id, topic=ATTRIBUTES_TOPIC, payload=checked, created_at=now))
    session.flush()
    return attributes_for(session, device_id=device.id, client_keys=[], shared_keys=[])


def take_downlinks(session: Session, *, limit: int = 200) -> list[tuple[int, int, str, Any]]:
    """Pushes for devices, each taken by one sender: (id, device_id, device topic, payload)."""
    return repo.take_downlinks(session, limit=limit)


# --- HTTP device API ----------------------------------------------------------------------------
# The rest of ThingsBoard's device API: the long poll for shared attribute updates (GET
# /api/v1/{token}/attributes/updates), the device's own requests (client-side RPC, answered here for
# HTTP and MQTT alike), and a device's attributes by scope for its page.

# What ThingsBoard's device SDK asks for on connecting ("getSessionLimits"): no rate limits here.
SESSION_LIMITS: dict[str, Any] = {"maxPayloadSize": MAX_BODY_BYTES, "maxInflightMessages": 100,
                                  "rateLimits": {}}
CLIENT_RPC_METHODS = ("getCurrentTime", "getSessionLimits")
MAX_CLIENT_RPC_BYTES = MAX_RPC_PARAMS_BYTES
ATTRIBUTE_SCOPES = ("client", "shared", "server")


class UnknownRpcMethod(CityopsError):
    """A client-side RPC that cityops does not answer. ThingsBoard hands such a request to its rule
    chains, and the device waits until its timeout (408) when none answers; cityops has no rule chain
    to wait for, so it says at once which methods it answers."""

    status = 404
    code = "unknown_method"


def client_rpc(method: Any, params: Any = None, *, now: datetime | None = None) -> dict[str, Any]:
    """The platform's answer to a device's own request (ThingsBoard's client-side RPC): the current
    time in ms (`getCurrentTime`) or the session limits (`getSessionLimits`); UnknownRpcMethod
    otherwise. `params` is not used by either."""
    if method == "getCurrentTime":
        return {"currentTime": _ms(now or utcnow())}
    if method == "getSessionLimits":
        return {**SESSION_LIMITS, "rateLimits": dict(SESSION_LIMITS["rateLimits"])}
    raise UnknownRpcMethod(f"unknown RPC method {str(method)[:64]!r}; cityops answers "
                           f"{', '.join(CLIENT_RPC_METHODS)}", field="method")


def client_rpc_reply(request: dict[str, Any], *, now: datetime | None = None) -> dict[str, Any]:
    """client_rpc for a request over MQTT, where an answer has no status: an unknown method is
    answered `{"error": "..."}` on the response topic."""
    try:
        return client_rpc(request.get("method"), request.get("params"), now=now)
    except UnknownRpcMethod as exc:
        return {"error": exc.message}


def parse_client_rpc(body: bytes) -> tuple[str, Any]:
    """`{"method": "...", "params": {...}}` as a device sends it over HTTP: (method, params), params
    {} when left out. IngestRejected (400, the reason in detail.reason) for anything else."""
    if len(body) > MAX_CLIENT_RPC_BYTES:
        raise IngestRejected("too_large", f"request of {len(body)} bytes; at most {MAX_CLIENT_RPC_BYTES}",
                             status=413)
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise IngestRejected("malformed_json", f"not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise IngestRejected("bad_shape", 'a client-side RPC is {"method": "...", "params": {...}}')
    method = request.get("method")
    if not isinstance(method, str) or not RPC_METHOD.match(method):
        raise IngestRejected("bad_shape", "method: 1 to 64 letters, digits and _ . - : /", field="method")
    return method, request.get("params", {})


def shared_attribute_marks(session: Session, *, device_id: int) -> dict[str, datetime]:
    """When each shared attribute of the device was last set: what an update poll compares with
    (the stored times themselves, so the clocks of the processes that set them never matter)."""
    rows = session.execute(select(DeviceAttribute.key, DeviceAttribute.updated_at).where(
        DeviceAttribute.device_id == device_id, DeviceAttribute.scope == "shared"))
    return {key: at for key, at in rows}


def shared_attribute_updates(session: Session, *, device_id: int,
                             since: dict[str, datetime]) -> dict[str, Any] | None:
    """The shared attributes set after `since` was taken (shared_attribute_marks), `{key: value}` as
    ThingsBoard sends an update; None when there are none."""
    rows = session.execute(select(DeviceAttribute.key, DeviceAttribute.value, DeviceAttribute.updated_at)
                           .where(DeviceAttribute.device_id == device_id, DeviceAttribute.scope == "shared"))
    changed = {key: value for key, value, at in rows if since.get(key) != at}
    return changed or None


def device_attributes(session: Session, *, viewer: User | None, device_id: int) -> DeviceAttributesRead:
    """A device's client, shared and server attributes with when each was set, by key (in scope)."""
    device = visible_device(session, viewer=viewer, device_id=device_id)
    found: dict[str, list[AttributeRead]] = {scope: [] for scope in ATTRIBUTE_SCOPES}
    rows = session.scalars(select(DeviceAttribute).where(DeviceAttribute.device_id == device.id)
                           .order_by(DeviceAttribute.scope, DeviceAttribute.key))
    for row in rows:
        if row.scope in found:
            found[row.scope].append(AttributeRead(key=row.key, value=row.value, updated_at=row.updated_at))
    return DeviceAttributesRead(**found)


# --- gateways -----------------------------------------------------------------------------------
# ThingsBoard's gateway API (carried over MQTT by perception/mqtt.py): a device whose profile is a
# gateway speaks for devices behind it, naming them in each message. The rules:
# - A gateway speaks only for its children, the devices whose gateway_id is its id. A name that
#   belongs to any other device (another gateway's child, a device with its own token, the gateway
#   itself) is refused as forbidden; so is every message of a device that is not a gateway.
# - A name no device has yet is a new child when the gateway gives its type (connect's "type"): a
#   known profile that is not a gateway. The child is created as ThingsBoard creates it, named as
#   given, at the gateway's place (point, grid, village, division), owned by the gateway's department,
#   synthetic when the gateway is, without an access token of its own: it is reached only through
#   its gateway. Without a type (ThingsBoard's "default") an unknown name is refused: cityops has no
#   default profile to guess. At most MAX_CHILDREN devices behind one gateway.
# - What a child sends is stored as a device's own (store_uploads), so its rules, alarms and cases
#   work as a direct device's; commands and shared attribute pushes reach it through its gateway.

GATEWAY_KIND = "gateway"
MAX_CHILDREN = 10_000


def is_gateway(device: Device) -> bool:
    return any(p.code == device.profile_code and p.kind == GATEWAY_KIND for p in profiles.registry().profiles)


def _not_behind(name: str) -> IngestRejected:
    return IngestRejected("forbidden", f"device {name!r} is not connected behind this gateway: a gateway "
                          "speaks only for the devices it connected", status=403)


def _new_child_refused(name: str, profile: str | None) -> IngestRejected | None:
    """Why a device of this name and type cannot be created behind a gateway, or None."""
    if profile is None:
        return IngestRejected("unknown_device", f"no device named {name!r} behind this gateway: connect it "
                              'first with its type (v1/gateway/connect {"device": name, "type": profile})')
    try:
        kind = profiles.registry().get(profile).kind
    except ValidationFailed as exc:
        return IngestRejected("bad_value", f"device {name!r}: {exc.message}", field="type")
    if kind == GATEWAY_KIND:
        return IngestRejected("forbidden", f"device {name!r}: a gateway cannot be connected behind another",
                              status=403, field="type")
    return None


def gateway_children(session: Session, wanted: Sequence[tuple[int, str, str | None]], *,
                     now: datetime | None = None) -> dict[tuple[int, str], int | IngestRejected]:
    """The devices that gateways name, as (gateway id, name, type or None): per (gateway id, name) the
    child's id, creating the new ones a type is given for, or why the gateway may not speak for it
    (see the rules above). One batch of the ingest worker at a time: a few queries in all."""
    now = now or utcnow()
    types: dict[tuple[int, str], str | None] = {}
    for gateway_id, name, profile in wanted:
        if types.get((gateway_id, name)) is None:  # a type given anywhere in the batch counts
            types[(gateway_id, name)] = profile
    gateways = repo.devices_by_id(session, list({g for g, _name in types}))
    found: dict[tuple[int, str], int | IngestRejected] = {}
    for key in types:
        gateway = gateways.get(key[0])
        if gateway is None:
            found[key] = IngestRejected("unknown_token", UNKNOWN_DEVICE, status=401)
        elif not is_gateway(gateway):
            found[key] = IngestRejected("forbidden", f"device {gateway.id} is no gateway (profile "
                                        f"{gateway.profile_code}): it speaks only for itself", status=403)
    pending = [key for key in types if key not in found]
    existing = repo.devices_by_name(session, (name for _g, name in pending))
    new: dict[str, dict[str, Any]] = {}
    for key in pending:
        gateway_id, name = key
        device = existing.get(name)
        if device is not None:
            found[key] = device.id if device.gateway_id == gateway_id else _not_behind(name)
        elif (refused := _new_child_refused(name, types[key])) is not None:
            found[key] = refused
        elif name in new:  # two gateways connecting one new name in a batch: the first has it
            found[key] = _not_behind(name)
        else:
            gateway = gateways[gateway_id]
            new[name] = {"name": name, "profile_code": types[key], "lon": gateway.lon, "lat": gateway.lat,
                         "grid_code": gateway.grid_code, "village_code": gateway.village_code,
                         "division_code": gateway.division_code, "org_unit_id": gateway.org_unit_id,
                         "access_token": None, "token_changed_at": now, "synthetic": gateway.synthetic,
                         "created_at": now, "gateway_id": gateway_id}
    room = {g: MAX_CHILDREN - n for g, n in
            repo.child_counts(session, {row["gateway_id"] for row in new.values()}).items()} if new else {}
    rows = []
    for name, row in new.items():
        left = room.get(row["gateway_id"], MAX_CHILDREN)
        if left <= 0:
            found[(row["gateway_id"], name)] = IngestRejected(
                "too_many_devices", f"device {name!r}: this gateway has {MAX_CHILDREN} devices behind it "
                "already", status=403)
            continue
        room[row["gateway_id"]] = left - 1
        rows.append(row)
    repo.add_devices_if_absent(session, rows)
    made = repo.devices_by_name(session, (row["name"] for row in rows)) if rows else {}
    for row in rows:
        key = (row["gateway_id"], row["name"])
        device = made.get(row["name"])
        # Another worker may have connected the name behind another gateway meanwhile.
        found[key] = device.id if device is not None and device.gateway_id == key[0] else _not_behind(key[1])
    return found


def gateway_routes(session: Session, *, device_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
    """For those of the devices behind a gateway: (the gateway's id, the device's name), which is how
    a command or a shared attribute push reaches them (on the gateway's topics, naming the device)."""
    return repo.gateways_of(session, device_ids)


def child_attributes(session: Session, *, device_id: int, request: GatewayPart) -> dict[str, Any]:
    """ThingsBoard's answer to a gateway asking for attributes of a device behind it: `{"id", "device",
    "value"}` for one key asked with "key" ("value" left out when the device has no such attribute, as
    ThingsBoard leaves it out), `{"id", "device", "values": {key: value}}` (the keys it has) for
    "keys"; client attributes, or shared ones."""
    answer: dict[str, Any] = {"id": request.request_id, "device": request.device}
    keys = list(request.keys)
    try:
        found = attributes_for(session, device_id=device_id, client_keys=keys if request.client else [],
                               shared_keys=[] if request.client else keys)
    except IngestRejected as exc:  # the device went meanwhile
        return {**answer, "error": exc.message}
    values = found.client if request.client else found.shared
    if not request.single:
        return {**answer, "values": values}
    return {**answer, "value": values[keys[0]]} if keys[0] in values else answer


# --- provisioning -------------------------------------------------------------------------------
# ThingsBoard's device provisioning, its "allow to create new devices" strategy: an administrator
# enables it per profile, which gives the profile a key and a secret; a device that presents both
# registers itself (POST /api/v1/provision) and gets its access token. As ThingsBoard answers:
# - a wrong key, a wrong secret and a disabled profile answer NOT_FOUND, all alike, so nothing tells
#   which part was wrong;
# - a name already taken answers FAILURE, as do a reached limit and an access token already taken;
#   cityops adds the reason (only the holder of the secret gets this far);
# - the answers are HTTP 200 with the status in the body. A request that is not ThingsBoard's (not
#   JSON, a field missing or of the wrong type) is refused 400 naming the field.
# The secret is random (192 bits) and kept as an HMAC keyed with a secret derived from the
# installation's (Settings.derived_secret): the database alone cannot check a guess, and the check
# compares in constant time. No request rate guesses such a secret, so a key is never locked after
# failures (a lock would let anyone who knows the key, which is in the devices' firmware, stop the
# city's devices from provisioning); the wrong secrets are counted per key and shown to
# administrators, who rotate the secret or disable provisioning.
# A new device stands at the first grid of the configured division, its position unconfirmed until a
# manager gives the real one (update_device); it is owned by the configured department or else the
# profile's, carries ThingsBoard's server attribute provisionState = "provisioned", and its token
# reaches the MQTT broker as every new token does (the ingest workers' CredentialsSync).

PROVISION_PURPOSE = "cityops-device-provisioning"
DEFAULT_MAX_PROVISIONED = 100
MAX_PROVISION_BYTES = 4096
NOT_FOUND_MESSAGE = "Provision data was not found!"  # ThingsBoard's words, which its SDKs show
FAILURE_MESSAGE = "Failed to provision device!"
PROVISION_STATE = ("provisionState", "provisioned")  # ThingsBoard's server attribute on such a device
PROVISION_USERNAME = "provision"  # ThingsBoard's MQTT user name for provisioning: never a device's token


class _NotProvisioned(Exception):
    """Why a request with the right key and secret made no device (answered FAILURE)."""


def _secret_hash(settings: Settings, secret: str) -> str:
    key = settings.derived_secret(PROVISION_PURPOSE).encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def parse_provision_request(body: bytes) -> ProvisionRequest:
    """ThingsBoard's provisioning request from a request body; a ValidationFailed (400) naming the
    field otherwise."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(f"not valid JSON ({exc})", field="body", status=400) from None
    if not isinstance(data, dict):
        raise ValidationFailed('not a JSON object such as {"deviceName": "...", "provisionDeviceKey": "...", '
                               '"provisionDeviceSecret": "..."}', field="body", status=400)
    try:
        return ProvisionRequest.model_validate(data)
    except PydanticValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "body"
        message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
        raise ValidationFailed(f"{field}: {message}", field=field, status=400) from None


def _failure(reason: str) -> dict[str, Any]:
    return {"status": "FAILURE", "errorMsg": FAILURE_MESSAGE, "reason": reason}


def provision(session: Session, *, data: ProvisionRequest, index: PlaceIndex, settings: Settings,
              request: Request | None = None, now: datetime | None = None) -> dict[str, Any]:
    """ThingsBoard's answer to a provisioning request (see the rules above): SUCCESS with the new
    device's access token, NOT_FOUND or FAILURE."""
    now = now or utcnow()
    key = data.provision_device_key
    config = repo.provisioning_by_key(session, key) if key else None
    # The secret is hashed and compared even for an unknown key: the answer and the work are the same
    # (but for the count of a known key's failures; the key is not the secret).
    given = _secret_hash(settings, data.provision_device_secret)
    matches = hmac.compare_digest(given, config.secret_hash if config is not None else "0" * len(given))
    if config is not None and not matches:
        repo.count_provisioning_failure(session, config.id, now=now)
    if config is None or not matches or not data.provision_device_secret or not config.enabled:
        return {"status": "NOT_FOUND", "errorMsg": NOT_FOUND_MESSAGE}
    try:
        device = _provisioned_device(session, config, data, index=index, settings=settings, now=now)
    except _NotProvisioned as exc:
        return _failure(str(exc))
    audit.record(session, None, "create", "device", device.id, division_code=device.division_code,
                 request=request, username=f"provision:{config.profile_code}",
                 detail={"provisioned": config.profile_code, "name": device.name,
                         "token_chosen": data.credentials_type == "ACCESS_TOKEN" and data.token is not None})
    return {"credentialsType": "ACCESS_TOKEN", "credentialsValue": device.access_token, "status": "SUCCESS"}


def _provisioned_device(session: Session, config: DeviceProvisioning, data: ProvisionRequest, *,
                        index: PlaceIndex, settings: Settings, now: datetime) -> Device:
    """The device a request provisions, or _NotProvisioned with the reason; nothing is kept then (the
    slot counted against the limit included)."""
    try:
        profile = profiles.registry().get(config.profile_code)
    except ValidationFailed as exc:
        raise _NotProvisioned(exc.message) from None
    name = data.device_name or f"{profile.code}-{secrets.token_hex(5)}"  # ThingsBoard names it at random
    # ThingsBoard takes the token only with its type; without, the device gets a new one.
    token = data.token if data.credentials_type == "ACCESS_TOKEN" else None
    if token is not None and (token in (PROVISION_USERNAME, settings.mqtt_user)
                              or repo.token_taken(session, token)):
        raise _NotProvisioned("the access token asked for is taken; ask for another or leave it out")
    grids = places_service.grids_in_area(index, codes=[config.division_code])
    if not grids:
        raise _NotProvisioned(f"division {config.division_code} has no grid to place devices in")
    unit_id = _unit_id(session, config.department or profile.department)
    try:
        with session.begin_nested():
            if not repo.take_provisioning_slot(session, config.id, now=now):
                raise _NotProvisioned(f"the limit of {config.max_devices} provisioned devices of this "
                                      "profile is reached")
            spot = DeviceCreate(name=name, profile=profile.code, lon=grids[0].lon, lat=grids[0].lat)
            [made] = register_devices(session, items=[spot], index=index, actor=None, now=now)
            if isinstance(made, CityopsError):
                raise _NotProvisioned(made.message)
            made.access_token = token or made.access_token
            made.org_unit_id = unit_id
            made.position_confirmed = False
            key, value = PROVISION_STATE
            session.add(DeviceAttribute(device_id=made.id, scope="server", key=key, value=value,
                                        updated_at=now))
            session.flush()
    except IntegrityError:  # the same name or token, registered by another request at this moment
        raise _NotProvisioned("a device of this name or token was registered at the same moment") from None
    return made


def _unit_id(session: Session, department: str) -> int | None:
    return session.scalar(select(OrgUnit.id).where(OrgUnit.code == f"dept-{department}"))


def _provisioning_read(session: Session, config: DeviceProvisioning, *, secret: str | None = None,
                       ) -> ProvisioningRead:
    try:
        profile = profiles.registry().get(config.profile_code)
        profile_name, department = profile.name_zh, config.department or profile.department
    except ValidationFailed:  # a profile removed from the file since: its provisioning still shows
        profile_name, department = config.profile_code, config.department or ""
    unit = session.scalar(select(OrgUnit).where(OrgUnit.code == f"dept-{department}")) if department else None
    return ProvisioningRead(
        profile=config.profile_code, profile_name=profile_name, enabled=config.enabled,
        provision_key=config.provision_key, division_code=config.division_code, department=department,
        org_unit=UnitRef(id=unit.id, code=unit.code, name=unit.name) if unit else None,
        max_devices=config.max_devices, provisioned=config.provisioned,
        failed_attempts=config.failed_attempts,
        last_failure_at=config.last_failure_at, last_provisioned_at=config.last_provisioned_at,
        secret_changed_at=config.secret_changed_at, updated_at=config.updated_at, secret=secret)


def _visible_provisioning(session: Session, *, viewer: User | None,
                          profile: str) -> DeviceProvisioning | None:
    _check_manage(viewer)
    code = profiles.registry().get(profile).code
    config = repo.provisioning_of(session, code)
    if config is not None and viewer is not None:
        authorize(viewer, division_code=config.division_code, resource="provisioning of profile",
                  resource_id=code)
    return config


def get_provisioning(session: Session, *, viewer: User | None, profile: str) -> ProvisioningRead:
    """A profile's provisioning, with its key; never its secret."""
    config = _visible_provisioning(session, viewer=viewer, profile=profile)
    if config is None:
        raise NotFound(f"provisioning of profile {profile!r} was never enabled")
    return _provisioning_read(session, config)


def list_provisioning(session: Session, *, viewer: User | None) -> list[ProvisioningRead]:
    """Every profile's provisioning in the viewer's scope, with its key; never a secret."""
    _check_manage(viewer)
    return [_provisioning_read(session, c) for c in repo.all_provisioning(session)
            if viewer is None or can_access(viewer, division_code=c.division_code)]


def configure_provisioning(session: Session, *, actor: User | None, profile: str, data: ProvisioningWrite,
                           index: PlaceIndex, settings: Settings, request: Request | None = None,
                           now: datetime | None = None) -> ProvisioningRead:
    """Enable, change or disable a profile's provisioning (fields left out keep their value). The
    secret is in the answer only when it is new: enabling for the first time, or rotating."""
    now = now or utcnow()
    config = _visible_provisioning(session, viewer=actor, profile=profile)
    code = profiles.registry().get(profile).code
    division = data.division_code or (config.division_code if config is not None else None)
    if division is None:
        raise ValidationFailed("name the division where provisioned devices are placed",
                               field="division_code")
    if not places_service.grids_in_area(index, codes=[division]):
        raise ValidationFailed(f"{division} is no division or grid of the city with grids",
                               field="division_code")
    if actor is not None:
        authorize(actor, division_code=division, resource="division", resource_id=division, hide=False)
    department = data.department if data.department is not None else (config.department if config else None)
    if department and _unit_id(session, department) is None:
        raise ValidationFailed(f"no department dept-{department}", field="department")
    created = config is None
    secret = secrets.token_urlsafe(24) if created or data.rotate_secret else None
    if config is None:
        config = DeviceProvisioning(profile_code=code, provision_key=secrets.token_urlsafe(15), enabled=True,
                                    max_devices=DEFAULT_MAX_PROVISIONED, provisioned=0, failed_attempts=0,
                                    created_at=now)
        session.add(config)
    if secret is not None:
        config.secret_hash, config.secret_changed_at = _secret_hash(settings, secret), now
    config.enabled = config.enabled if data.enabled is None else data.enabled
    config.division_code, config.department, config.updated_at = division, department or None, now
    config.max_devices = data.max_devices or config.max_devices
    session.flush()
    audit.record(session, actor, "create" if created else "update", "device_provisioning",
                 code, division_code=division, request=request,
                 detail={"enabled": config.enabled, "max_devices": config.max_devices,
                         "department": config.department, "new_secret": secret is not None})
    return _provisioning_read(session, config, secret=secret)


def update_device(session: Session, *, actor: User | None, device_id: int, data: DeviceUpdate,
                  index: PlaceIndex, request: Request | None = None) -> Device:
    """Rename a device or give its position, placed as a new device is (grid, village and division from
    the point, in the actor's scope); a position given is confirmed."""
    device = visible_device(session, viewer=actor, device_id=device_id)
    _check_manage(actor)
    if (data.lon is None) != (data.lat is None):
        raise ValidationFailed("a position is lon and lat together",
                               field="lat" if data.lat is None else "lon")
    changed: dict[str, Any] = {}
    name = data.name.strip() if data.name is not None else device.name
    if not name:
        raise ValidationFailed("the name is blank", field="name")
    if name != device.name:
        if repo.devices_by_name(session, [name]):
            raise Conflict(f"a device named {name!r} exists already", field="name")
        changed["name"] = name
    if data.lon is not None and data.lat is not None:
        point = DeviceCreate(name=device.name, profile=device.profile_code, lon=data.lon, lat=data.lat)
        placed = _placed(point, index, actor)
        changed.update({k: placed[k] for k in ("lon", "lat", "grid_code", "village_code", "division_code")},
                       position_confirmed=True)
    was = device.division_code
    try:
        with session.begin_nested():
            for key, value in changed.items():
                setattr(device, key, value)
            session.flush()
    except IntegrityError:  # renamed to the same name by someone else at this moment
        raise Conflict(f"a device named {name!r} exists already", field="name") from None
    if changed:
        audit.record(session, actor, "update", "device", device.id, division_code=device.division_code,
                     request=request, detail={"changed": sorted(changed), "division_before": was})
    return device
