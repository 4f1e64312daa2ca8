"""Warnings raised by monitoring stations, right after their readings are stored.

Perception announces the readings of the stations' profiles (ReadingsStored, one event per ingested
batch, through the outbox); the subscriber here evaluates the stations concerned at the time of their
newest reading: each metric from the device's stored series, the highest level any reaches, and then
`decide`, a pure function of where the station stood:

- higher than its warning (or none): a new warning (issued, or pending an operator's confirmation when
  the level is one the station's configuration confirms), or the warning raised (a CAP Update) - for a
  level that needs confirmation, raised as far as the levels that do not, and the rest proposed;
- lower for the hold time: the warning stepped down to the highest level seen during the hold, and
  lifted (a CAP Cancel, with the reason) below blue. Going up is immediate, coming down takes a hold
  each step, so readings flapping at a limit send at most two messages per hold.

One station warning per (station, hazard): its state row is created and locked before anything is
read, so two batches of one station take turns. A warning an operator lifted or rejected is not raised
again at its level (only above it, or after the readings have been below it for the hold).
Every change goes through the warning service, so CAP messages and events are those of manual
warnings; source "station", source_detail naming the station and its metric."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cityops.core.auth.models import User
from cityops.core.db import utcnow
from cityops.core.errors import Conflict
from cityops.core.events import Envelope, EventBus, emit
from cityops.perception import service as perception_service
from cityops.warning import hazards, service, stations
from cityops.warning import repository as repo
from cityops.warning.events import StationLevelProposed
from cityops.warning.models import HazardWarning, StationState, WarningStation
from cityops.warning.schemas import WarningCreate, WarningUpdate

log = logging.getLogger(__name__)
SUBSCRIBER = "warning.stations"
MAX_POINTS = 20_000  # per key and evaluation: a day of one-minute readings, and more
MAX_PROBLEMS_SHOWN = 3
BEIJING = timezone(timedelta(hours=8))  # the time in the texts of the warnings


# --- the decision ----------------------------------------------------------------------------------


def _rank(level: str | None) -> int:
    return hazards.LEVELS[level].rank if level else 0


def _higher(a: str | None, b: str | None) -> str | None:
    return a if _rank(a) >= _rank(b) else b


@dataclass(frozen=True)
class Track:
    """What the decision needs of a station: its warning's level (in force, or pending confirmation),
    an escalation proposed, the level of a warning an operator ended, and the hold under way."""

    warning: str | None = None
    pending: bool = False
    proposed: str | None = None
    suppressed: str | None = None
    below_since: int | None = None  # ms, reading time
    peak: str | None = None  # the highest level read during the hold


Action = Literal["issue", "raise", "revise", "release", "update", "propose", "cancel"]


@dataclass(frozen=True)
class Step:
    action: Action
    level: str | None


def decide(track: Track, level: str | None, ts: int, *, hold_ms: int,
           confirm: Collection[str]) -> tuple[Track, list[Step]]:
    """Where the station goes from `track` with readings at `level` (None: below blue) at time `ts`,
    and the steps that take it there."""
    held = track.warning or track.suppressed
    top = _higher(held, track.proposed)
    if _rank(level) > _rank(top):
        return _escalate(replace(track, below_since=None, peak=None), level, confirm)
    if _rank(level) == _rank(top):
        return replace(track, below_since=None, peak=None), []
    if track.below_since is None:
        return replace(track, below_since=ts, peak=level), []
    if ts < track.below_since:  # a late reading does not move the hold back
        return track, []
    peak = _higher(track.peak, level)
    if ts - track.below_since < hold_ms:
        return replace(track, peak=peak), []
    # Below for the hold: down to the highest level read meanwhile (a further hold if it fell lower).
    rest = replace(track, below_since=None if level == peak else ts, peak=None if level == peak else level)
    if track.proposed is not None and _rank(track.proposed) > _rank(held):  # the escalation lapses
        rest = replace(rest, proposed=peak if _rank(peak) > _rank(held) else None)
        if _rank(peak) >= _rank(held):
            return rest, []
    if track.warning is None:
        return replace(rest, suppressed=peak), []
    if peak is None:
        return replace(rest, warning=None, pending=False, proposed=None), [Step("cancel", None)]
    if track.pending:
        steps = [Step("revise", peak)] + ([] if peak in confirm else [Step("release", peak)])
        return replace(rest, warning=peak, pending=peak in confirm), steps
    return replace(rest, warning=peak, proposed=None), [Step("update", peak)]


def _escalate(track: Track, level: str | None, confirm: Collection[str]) -> tuple[Track, list[Step]]:
    assert level is not None
    needs = level in confirm
    if track.warning is None:  # none, or one an operator ended below this level
        pending = Track(warning=level, pending=needs)
        return pending, [Step("raise" if needs else "issue", level)]
    if track.pending:
        steps = [Step("revise", level)] + ([] if needs else [Step("release", level)])
        return replace(track, warning=level, pending=needs), steps
    if not needs:
        return replace(track, warning=level, proposed=None), [Step("update", level)]
    steps = []
    automatic = max((c for c in hazards.LEVELS if c not in confirm and _rank(c) < _rank(level)),
                    key=_rank, default=None)
    if _rank(automatic) > _rank(track.warning):
        steps.append(Step("update", automatic))
        track = replace(track, warning=automatic)
    return replace(track, proposed=level), [*steps, Step("propose", level)]


# --- texts of the station's warnings ---------------------------------------------------------------

# What people do, per hazard and level (zh-CN, en-US): the CAP <instruction> of station warnings.
INSTRUCTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "flood": {
        "blue": ("河道水位上涨，请远离河道、堤防和低洼地带，不要在河边逗留、涉水。",
                 "The river is rising: keep away from it, its banks and low ground; do not wade."),
        "yellow": ("河道水位持续上涨，沿河低洼地带群众做好转移准备，巡堤查险人员上岗。",
                   "The river keeps rising: people in low-lying places along it prepare to move; dyke "
                   "patrols take their posts."),
        "orange": ("河道水位超过警戒水位，沿河低洼村庄群众按预案转移，停止河道内一切作业。",
                   "The river is above its warning level: low-lying villages along it move out as "
                   "planned; all work in the river stops."),
        "red": ("河道水位接近或超过保证水位，可能漫堤、决口，下游低洼村庄群众立即转移到安全地带。",
                "The river is near or above its guaranteed level and may overtop or breach its dykes: "
                "people in the low-lying villages downstream move to safety now."),
    },
    "rainstorm": {
        "blue": ("强降雨持续，请关注天气变化，减少外出，驾车避开积水路段。",
                 "Heavy rain goes on: follow the forecasts, stay in where you can, drive around flooded "
                 "roads."),
        "yellow": ("降雨强度大，暂停户外作业，危险地带人员撤离，注意防范城市内涝和山洪。",
                   "Intense rain: stop outdoor work, leave dangerous places, watch for waterlogging and "
                   "flash floods."),
        "orange": ("短时强降雨，停止集会、停课停业（特殊行业除外），低洼地带和山洪沟道群众转移。",
                   "Very intense rain: gatherings stop, schools and businesses close (essential services "
                   "excepted), people in low ground and flash-flood gullies move out."),
        "red": ("特大暴雨，立即转移危险区域群众，切断危险室外电源，严防山洪、泥石流和城市内涝。",
                "Extreme rainstorm: move people out of danger zones now, cut dangerous outdoor power, "
                "guard against flash floods, debris flows and urban flooding."),
    },
    "landslide": {
        "blue": ("山体土壤含水量或位移增大，请远离陡坡、沟谷，注意观察裂缝和异常声响。",
                 "The slope is wetter or moving more: keep away from steep slopes and gullies, watch "
                 "for cracks and strange sounds."),
        "yellow": ("滑坡风险较高，隐患点巡查人员加密巡查，坡下群众做好转移准备。",
                   "High landslide risk: watchers patrol the known danger spots more often; people below "
                   "the slope prepare to move."),
        "orange": ("滑坡风险高，坡下和沟口群众按预案转移，封闭危险路段。",
                   "Landslide risk is high: people below the slope and at the gully mouths move out as "
                   "planned; dangerous roads close."),
        "red": ("滑坡即将或正在发生，危险区群众立即撤离，严禁进入危险区。",
                "A landslide is imminent or under way: leave the danger zone now and do not go back in."),
    },
}
GENERIC = ("请关注监测站预警信息，做好防范。", "Follow the station's warnings and take precautions.")


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1000, UTC)


def _short(name: str) -> str:
    """河口村民委员会 -> 河口村, 顺河社区居民委员会 -> 顺河社区."""
    for suffix, keep in (("村民委员会", "村"), ("居民委员会", ""), ("委员会", "")):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem if stem.endswith(keep) else stem + keep
    return name


def _value(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Reading:
    """A station's metrics at one time, and the metric that set its level."""

    values: dict[str, float | None]
    level: str | None
    trigger: str | None
    ts: int


def _texts(station: WarningStation, reading: Reading) -> dict[str, str]:
    where = station.water_body or station.hill or stations.KINDS[station.kind].name_zh
    zh, en = [], []
    for code, levels in station.thresholds.items():
        value = reading.values.get(code)
        if value is None:
            continue
        metric = stations.METRICS[code]
        reached, _metric = stations.level_of({code: levels}, {code: value})
        zh_part = f"{metric.name_zh}{_value(value)}{metric.unit}"
        en_part = f"{metric.label.lower()} {_value(value)} {metric.unit}"
        if reached is not None:
            lv = hazards.LEVELS[reached]
            zh_part += f"（{lv.colour_zh}预警值{_value(levels[reached])}{metric.unit}）"
            en_part += f" ({lv.code} threshold {_value(levels[reached])} {metric.unit})"
        zh.append(zh_part)
        en.append(en_part)
    when = _at(reading.ts).astimezone(BEIJING).strftime("%m月%d日%H:%M")
    zh_readings = "，".join(zh) or "暂无有效读数"
    en_readings = "; ".join(en) or "no valid readings"
    return {"description": f"{station.name}（{where}）{when}监测：{zh_readings}。",
            "description_en": f"Station {station.code} ({where}): {en_readings}."}


def _instruction(station: WarningStation, level: str) -> dict[str, str]:
    zh, en = INSTRUCTIONS.get(station.hazard, {}).get(level, GENERIC)
    return {"instruction": zh, "instruction_en": en}


def _detail(station: WarningStation, reading: Reading) -> str:
    if reading.trigger is None:
        return f"{station.name}（{station.code}）"[:200]
    metric = stations.METRICS[reading.trigger]
    value = reading.values.get(reading.trigger)
    shown = f"{_value(value)}{metric.unit}" if value is not None else ""
    return f"{station.name}（{station.code}）{metric.name_zh}（{metric.code}）{shown}"[:200]


def _expires(station: WarningStation, now: datetime) -> datetime:
    return now + timedelta(seconds=station.validity_s)


def _create(station: WarningStation, level: str, reading: Reading, now: datetime) -> WarningCreate:
    return WarningCreate(
        hazard=station.hazard, level=level, expires=_expires(station, now), certainty="Observed",
        urgency="Immediate", division_codes=[v["code"] for v in station.villages],
        area_desc="、".join(_short(v["name"]) for v in station.villages)[:500],
        **_texts(station, reading), **_instruction(station, level),
    )


def _update(station: WarningStation, level: str, reading: Reading, now: datetime, note: str) -> WarningUpdate:
    return WarningUpdate(level=level, expires=_expires(station, now), note=note[:500],
                         **_texts(station, reading), **_instruction(station, level))


# --- evaluating stations ---------------------------------------------------------------------------


def measure(session: Session, station: WarningStation, at_ms: int) -> tuple[Reading, list[str]]:
    """The station's metrics at `at_ms` from its device's stored readings, and the readings left out
    as implausible (a station sending garbage)."""
    spans: dict[str, int] = {}
    for code in station.thresholds:
        metric = stations.METRICS[code]
        span = metric.window_s * (2 if metric.how == "change" else 1) * 1000
        spans[metric.key] = max(spans.get(metric.key, 0), span)
    points: dict[str, list[tuple[int, float]]] = {}
    problems: list[str] = []
    for key, span in spans.items():
        low, high = stations.PLAUSIBLE.get(key, (float("-inf"), float("inf")))
        # A millisecond either side: the datetimes round; compute() keeps only what is at or before.
        series = perception_service.series(session, viewer=None, device_id=station.device_id, key=key,
                                           start=_at(at_ms - span - 1), end=_at(at_ms + 1), limit=MAX_POINTS)
        kept: list[tuple[int, float]] = []
        bad: list[tuple[int, float]] = []
        for ts, value in series.points:
            if isinstance(value, float | int) and not isinstance(value, bool):
                (kept if low <= value <= high else bad).append((ts, float(value)))
        if bad:
            shown = ", ".join(f"{v:g} at {_at(ts).isoformat(timespec='seconds')}" for ts, v in
                              bad[-MAX_PROBLEMS_SHOWN:])
            problems.append(f"{len(bad)} reading(s) of {key} left out, outside {low:g} to {high:g}: {shown}")
        points[key] = kept
    values = {code: stations.METRICS[code].compute(points[stations.METRICS[code].key], at_ms)
              for code in station.thresholds}
    level, trigger = stations.level_of(station.thresholds, values)
    return Reading(values, level, trigger, at_ms), problems


def _track(session: Session, state: StationState, now: datetime) -> tuple[HazardWarning | None, Track]:
    """The station's warning if still in force or pending, and its track. A warning that ended
    otherwise than by the station (an operator lifted or rejected it) leaves its level suppressed."""
    warning = repo.get(session, state.warning_id) if state.warning_id else None
    if warning is not None and service._status_now(warning, now) not in ("issued", "pending"):
        if warning.status == "cancelled":
            state.suppressed_level = _higher(state.suppressed_level, warning.level)
            state.below_since_ts = state.peak_level = None
        state.warning_id = state.proposed_level = None
        warning = None
    return warning, Track(warning=warning.level if warning else None,
                          pending=warning is not None and warning.status == "pending",
                          proposed=state.proposed_level, suppressed=state.suppressed_level,
                          below_since=state.below_since_ts, peak=state.peak_level)


def _proposed(session: Session, station: WarningStation, level: str, warning_id: int) -> None:
    emit(session, StationLevelProposed(station_code=station.code, hazard=station.hazard, level=level,
                                       warning_id=warning_id))


def _apply(session: Session, station: WarningStation, state: StationState, steps: list[Step],
           reading: Reading, *, issuer: service.Issuer, now: datetime) -> None:
    for step in steps:
        level = step.level
        if step.action in ("issue", "raise"):
            assert level is not None
            warning = service.issue(session, data=_create(station, level, reading, now), actor=None,
                                    issuer=issuer, now=now, source="station",
                                    source_detail=_detail(station, reading), pending=step.action == "raise")
            state.warning_id = warning.id
            if step.action == "raise":
                _proposed(session, station, level, warning.id)
            continue
        assert state.warning_id is not None
        if step.action == "cancel":
            reason = (f"{station.name}各项读数已连续{station.hold_s // 60}分钟低于蓝色预警值，预警解除")
            service.cancel(session, warning_id=state.warning_id, reason=reason, actor=None, now=now)
            state.warning_id = None
        elif step.action == "propose":
            assert level is not None
            _proposed(session, station, level, state.warning_id)
        elif step.action == "revise":
            assert level is not None
            data = _update(station, level, reading, now, note="")
            service.revise_pending(session, warning_id=state.warning_id, data=data, now=now)
        elif step.action == "release":
            service.release(session, warning_id=state.warning_id, actor=None, now=now)
        else:
            assert level is not None
            current = repo.get(session, state.warning_id)
            assert current is not None
            direction = "升至" if _rank(level) > _rank(current.level) else "降至"
            note = f"{station.name}读数变化，预警{direction}{hazards.LEVELS[level].colour_zh}"
            service.update(session, warning_id=state.warning_id, actor=None, now=now,
                           data=_update(station, level, reading, now, note))
        changed = repo.get(session, state.warning_id) if state.warning_id is not None else None
        if changed is not None and step.action in ("update", "revise"):
            changed.source_detail = _detail(station, reading)


def _renew(session: Session, station: WarningStation, warning: HazardWarning | None, reading: Reading,
           now: datetime) -> None:
    """Keep a station's warning in force while its readings stay at a level (one Update a quarter of
    the validity before it would expire)."""
    if (warning is not None and warning.status == "issued" and reading.level is not None
            and warning.expires - now < timedelta(seconds=station.validity_s / 4)):
        service.extend(session, warning_id=warning.id, expires=_expires(station, now), actor=None, now=now,
                       note=f"{station.name}读数仍在预警值以上，有效期延长")


def evaluate_station(session: Session, station: WarningStation, state: StationState, at_ms: int, *,
                     issuer: service.Issuer, now: datetime) -> list[Step]:
    """One station at the time of its newest reading (its state locked by the caller)."""
    reading, problems = measure(session, station, at_ms)
    warning, track = _track(session, state, now)
    new, steps = decide(track, reading.level, at_ms, hold_ms=station.hold_s * 1000,
                        confirm=station.confirm_levels)
    _apply(session, station, state, steps, reading, issuer=issuer, now=now)
    if not steps:
        _renew(session, station, warning, reading, now)
    state.proposed_level, state.suppressed_level = new.proposed, new.suppressed
    state.below_since_ts, state.peak_level = new.below_since, new.peak
    state.level = reading.level
    state.metrics = {k: v for k, v in reading.values.items() if v is not None}
    state.reading_ts = at_ms
    state.problem = "; ".join(problems)[:300] or None
    state.updated_at = now
    return steps


def evaluate(session: Session, *, readings: Iterable[Any], issuer: service.Issuer,
             now: datetime | None = None) -> int:
    """The stations whose devices sent these readings ([device_id, key, ts, value]), each at the time
    of its newest one; how many were evaluated. A station whose evaluation fails is skipped with the
    reason in its state (the others go on; the batch is never refused for it)."""
    now = now or utcnow()
    newest: dict[int, int] = {}
    for reading in readings:
        try:
            device_id, ts = int(reading[0]), int(reading[2])
        except (TypeError, ValueError, IndexError):
            continue  # not a reading: nothing to evaluate
        newest[device_id] = max(newest.get(device_id, ts), ts)
    found = repo.stations_of_devices(session, newest)
    for station in found:
        state = repo.lock_station_state(session, station.id, station.hazard)
        try:
            with session.begin_nested():
                evaluate_station(session, station, state, newest[station.device_id], issuer=issuer, now=now)
        except DBAPIError:
            raise  # the database's trouble: the batch is retried
        except Exception as exc:  # one station's failure must not stop the others
            log.exception("station %s: evaluation failed", station.code)
            state.problem = f"evaluation failed: {exc}"[:300]
    return len(found)


def confirm(session: Session, *, code: str, actor: User | None, issuer: service.Issuer,
            now: datetime | None = None) -> HazardWarning:
    """An operator confirms what the station's readings proposed: the pending warning goes out (a CAP
    Alert), or the warning in force is raised to the proposed level (a CAP Update). Conflict (409) when
    nothing awaits confirmation; Forbidden (403) when the station warns for villages outside the actor's
    division scope."""
    now = now or utcnow()
    station = stations.station_by_code(session, code)
    service.authorize_area(session, actor, codes=[v["code"] for v in station.villages], geometry=None,
                           what=f"the area of station {code}")
    state = repo.lock_station_state(session, station.id, station.hazard)
    warning, _track_now = _track(session, state, now)
    values: dict[str, float | None] = dict(state.metrics)
    level, trigger = stations.level_of(station.thresholds, values)
    reading = Reading(values, level, trigger, state.reading_ts or 0)
    if warning is not None and warning.status == "pending":
        service.revise_pending(session, warning_id=warning.id, now=now,
                               data=WarningUpdate(expires=_expires(station, now)))
        service.release(session, warning_id=warning.id, actor=actor, now=now)
    elif warning is not None and _rank(state.proposed_level) > _rank(warning.level):
        assert state.proposed_level is not None
        note = f"值班人员确认{station.name}预警升至{hazards.LEVELS[state.proposed_level].colour_zh}"
        service.update(session, warning_id=warning.id, actor=actor, now=now,
                       data=_update(station, state.proposed_level, reading, now, note))
        warning.source_detail = _detail(station, reading)
        state.proposed_level = None
    else:
        raise Conflict(f"station {code} has nothing awaiting confirmation", code="nothing_to_confirm")
    session.flush()
    return warning


# --- the subscriber --------------------------------------------------------------------------------


def on_readings_stored(session: Session, envelope: Envelope, issuer: service.Issuer) -> None:
    readings = envelope.payload.get("readings")
    if isinstance(readings, list):
        evaluate(session, readings=[r for r in readings if isinstance(r, list | tuple) and len(r) == 4],
                 issuer=issuer)


def watch() -> None:
    """Have this process's ingestion announce the stations' profiles' readings (ReadingsStored)."""
    perception_service.watch_profiles(stations.PROFILES)


def subscribe(bus: EventBus, issuer: service.Issuer) -> None:
    """Register the subscriber once (a second call is a no-op) and watch the stations' profiles."""
    watch()
    topic = perception_service.ReadingsStored.topic
    if not any(name == SUBSCRIBER for name, _ in bus.subscribers.get(topic, [])):
        bus.subscribe(topic, SUBSCRIBER, lambda s, e: on_readings_stored(s, e, issuer))


def install(app: FastAPI) -> None:
    subscribe(app.state.bus, service.Issuer.from_settings(app.state.settings))
