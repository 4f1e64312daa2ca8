"""Monitoring stations as configurable data: a YAML file (data/stations.yaml is the demo's) validated by
pydantic with errors naming the line and field, loaded into the database after the checks that need
it (the device exists and is of the station's kind, the villages are divisions of this city).

A station is a perception device (rain gauge, water-level gauge, soil-moisture or slope-displacement
sensor) plus: its kind, the water body or hill, the villages it warns for, and per metric the
thresholds of the four levels (blue < yellow < orange < red; a metric may give only some). Metrics are
computed from the device's stored readings at the time of the newest one: sums over a window
(rain_1h ... rain_24h), the newest value (level, moisture) or the change over a window (rise_1h,
displacement_1h). The station's level is the highest any metric reaches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from sqlalchemy.orm import Session

from cityops.core.db import utcnow
from cityops.core.errors import NotFound, ValidationFailed
from cityops.core.i18n import N_, gettext_for
from cityops.core.yaml_config import ConfigFileError, load_yaml_file, parse_yaml
from cityops.perception import profiles
from cityops.perception import service as perception_service
from cityops.warning import hazards, service
from cityops.warning import repository as repo
from cityops.warning.hazards import LevelCode
from cityops.warning.models import HazardWarning, StationState, WarningStation
from cityops.warning.schemas import (
    DivisionCode,
    StationMetricRead,
    StationPage,
    StationRead,
    StationVillage,
)
from cityops.warning.workflow import STATE_LABELS

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "stations.yaml"
EXPECTED = "a mapping with stations"
LEVEL_CODES: tuple[LevelCode, ...] = ("blue", "yellow", "orange", "red")


class StationsError(ConfigFileError):
    """A stations file that cannot be used; the message names the line and the field."""


# --- kinds and metrics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StationKind:
    code: str
    profile: str  # the perception device profile of its device
    hazard: str  # what it warns of unless the station says otherwise
    name_zh: str
    label: str  # English msgid
    place: Literal["water_body", "hill"] | None  # what it must name


KINDS: MappingProxyType[str, StationKind] = MappingProxyType(
    {
        k.code: k
        for k in (
            StationKind("rain", "rain_gauge", "rainstorm", "雨量站", N_("Rain gauge station"), None),
            StationKind("river", "water_level", "flood", "河道水文站", N_("River gauge"), "water_body"),
            StationKind("reservoir", "water_level", "flood", "水库水位站", N_("Reservoir gauge"),
                        "water_body"),
            StationKind("soil", "soil_moisture", "landslide", "土壤含水率监测点", N_("Soil moisture station"),
                        "hill"),
            StationKind("slope", "slope_displacement", "landslide", "边坡位移监测点",
                        N_("Slope displacement station"), "hill"),
        )
    }
)


@dataclass(frozen=True)
class Metric:
    code: str
    key: str  # the telemetry key it is computed from
    how: Literal["sum", "latest", "change"]
    window_s: int  # sum and change: the window; latest: how old the newest reading may be
    unit: str
    name_zh: str  # in the texts of CAP messages
    label: str  # English msgid (also the en-US CAP texts)

    def compute(self, points: Sequence[tuple[int, float]], at_ms: int) -> float | None:
        """The metric at `at_ms` from (ts, value) in time order; None without the readings it needs."""
        window_ms = self.window_s * 1000
        upto = [(ts, v) for ts, v in points if ts <= at_ms]
        if self.how == "sum":
            return sum(v for ts, v in upto if ts > at_ms - window_ms) if upto else None
        if not upto or upto[-1][0] <= at_ms - window_ms:
            return None  # no reading in the window: the device is silent
        if self.how == "latest":
            return upto[-1][1]
        before = [v for ts, v in upto if ts <= at_ms - window_ms]
        return upto[-1][1] - before[-1] if before else None


METRICS: MappingProxyType[str, Metric] = MappingProxyType(
    {
        m.code: m
        for m in (
            Metric("rain_1h", "rain_mm", "sum", 3600, "mm", "1小时降雨量", N_("Rainfall in 1 h")),
            Metric("rain_3h", "rain_mm", "sum", 3 * 3600, "mm", "3小时降雨量", N_("Rainfall in 3 h")),
            Metric("rain_6h", "rain_mm", "sum", 6 * 3600, "mm", "6小时降雨量", N_("Rainfall in 6 h")),
            Metric("rain_12h", "rain_mm", "sum", 12 * 3600, "mm", "12小时降雨量", N_("Rainfall in 12 h")),
            Metric("rain_24h", "rain_mm", "sum", 24 * 3600, "mm", "24小时降雨量", N_("Rainfall in 24 h")),
            Metric("level", "level", "latest", 3600, "m", "水位", N_("Water level")),
            Metric("rise_1h", "level", "change", 3600, "m", "1小时水位涨幅", N_("Water rise in 1 h")),
            Metric("moisture", "moisture", "latest", 3600, "%", "土壤含水率", N_("Soil moisture")),
            Metric("displacement_1h", "displacement_mm", "change", 3600, "mm", "1小时位移量",
                   N_("Displacement in 1 h")),
            Metric("displacement_24h", "displacement_mm", "change", 86_400, "mm", "24小时位移量",
                   N_("Displacement in 24 h")),
        )
    }
)
# What a reading of each key can be; a station sending anything else is sending garbage: the reading
# stays stored (perception keeps what it accepted) but no warning is computed from it.
PLAUSIBLE: MappingProxyType[str, tuple[float, float]] = MappingProxyType(
    {"rain_mm": (0.0, 500.0), "level": (-100.0, 1000.0), "moisture": (0.0, 100.0),
     "displacement_mm": (-100_000.0, 100_000.0)}
)
PROFILES = frozenset(k.profile for k in KINDS.values())


def metrics_of(kind: StationKind) -> list[str]:
    """The metrics a station of the kind can have: those computed from its profile's keys."""
    profile = profiles.registry().get(kind.profile)
    return [m.code for m in METRICS.values() if profile.key(m.key) is not None]


def level_of(thresholds: dict[str, dict[str, float]],
             values: dict[str, float | None]) -> tuple[str | None, str | None]:
    """The highest level any metric reaches (value >= threshold), and the metric that reaches it."""
    best: tuple[int, str, str] | None = None
    for metric, levels in thresholds.items():
        value = values.get(metric)
        if value is None:
            continue
        for code, threshold in levels.items():
            rank = hazards.LEVELS[code].rank
            if value >= threshold and (best is None or rank > best[0]):
                best = (rank, code, metric)
    return (best[1], best[2]) if best else (None, None)


# --- the file --------------------------------------------------------------------------------------

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Thresholds(_Strict):
    """The value of a metric at which each level begins; levels left out are not raised by it."""

    blue: FiniteFloat | None = None
    yellow: FiniteFloat | None = None
    orange: FiniteFloat | None = None
    red: FiniteFloat | None = None

    @model_validator(mode="after")
    def _rising(self) -> Self:
        given = self.levels()
        if not given:
            raise ValueError("give the threshold of at least one level: blue, yellow, orange or red")
        for (low, a), (high, b) in zip(given.items(), list(given.items())[1:], strict=False):
            if b <= a:
                raise ValueError(f"{high} ({b:g}) must be above {low} ({a:g}): the levels rise "
                                 "blue < yellow < orange < red")
        return self

    def levels(self) -> dict[str, float]:
        return {code: v for code in LEVEL_CODES if (v := getattr(self, code)) is not None}


class StationConfig(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    name: str = Field(min_length=1, max_length=60)
    kind: Literal["rain", "river", "reservoir", "soil", "slope"]
    device: str = Field(min_length=1, max_length=120, description="the name of its perception device")
    hazard: str | None = Field(default=None, description="default: the kind's (rainstorm, flood, landslide)")
    water_body: str | None = Field(default=None, min_length=1, max_length=40)
    hill: str | None = Field(default=None, min_length=1, max_length=40)
    villages: list[DivisionCode] = Field(min_length=1, max_length=200)
    thresholds: dict[str, Thresholds] = Field(min_length=1)
    confirm_levels: list[LevelCode] | None = None
    hold_minutes: int | None = Field(default=None, ge=0, le=1440)
    # [lon, lat] (WGS84) where the demo registers the device; a city's file names devices it has.
    place: tuple[FiniteFloat, FiniteFloat] | None = None

    @field_validator("hazard")
    @classmethod
    def _known_hazard(cls, value: str | None) -> str | None:
        if value is not None and value not in hazards.HAZARDS:
            raise ValueError(f"unknown hazard {value!r}; known: {', '.join(hazards.HAZARDS)}")
        return value

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, value: dict[str, Thresholds], info: ValidationInfo) -> dict[str, Thresholds]:
        kind = KINDS.get(str(info.data.get("kind")))
        for metric in value:
            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
            if kind is not None and metric not in metrics_of(kind):
                raise ValueError(f"a {kind.code} station has no {metric!r} (its {kind.profile} device "
                                 f"reports no {METRICS[metric].key}); it has {', '.join(metrics_of(kind))}")
        return value

    @model_validator(mode="after")
    def _placed(self) -> Self:
        kind = KINDS[self.kind]
        if kind.place is not None and getattr(self, kind.place) is None:
            raise ValueError(f"a {kind.code} station names its {kind.place.replace('_', ' ')} ({kind.place})")
        return self

    @property
    def station_kind(self) -> StationKind:
        return KINDS[self.kind]


class StationsConfig(_Strict):
    # Levels an operator confirms before they go out; the others are issued at once.
    confirm_levels: list[LevelCode] = ["orange", "red"]
    # How long the readings stay below a level before the warning steps down (or is lifted).
    hold_minutes: int = Field(default=60, ge=0, le=1440)
    # A station warning stays in force this long after its last change, renewed while readings last.
    validity_hours: int = Field(default=12, ge=1, le=168)
    stations: list[StationConfig] = Field(min_length=1, max_length=5000)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        for field in ("code", "device"):
            values = [getattr(s, field) for s in self.stations]
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"station {field}s repeat: {', '.join(repeated)}")
        return self


def parse(text: str, *, source: str = "stations") -> StationsConfig:
    return parse_yaml(text, StationsConfig, source=source, expected=EXPECTED, error=StationsError)


@lru_cache(maxsize=4)
def shipped(path: Path = DEFAULT_PATH) -> StationsConfig:
    """The demo's stations file, validated once."""
    return load_yaml_file(path, StationsConfig, expected=EXPECTED, error=StationsError)


# --- loading into the database ---------------------------------------------------------------------


def _device(session: Session, name: str, where: str) -> tuple[int, str, float, float]:
    page = perception_service.list_devices(session, viewer=None, q=name, limit=100)
    for device in page.items:
        if device.name == name:
            return device.id, device.profile, device.lon, device.lat
    raise ValidationFailed(f"{where}.device: no device named {name!r}", field=f"{where}.device")


def load(session: Session, *, config: StationsConfig, now: datetime | None = None) -> list[WarningStation]:
    """Make the stored stations those of `config`: new ones added, known ones (by code) changed, the
    others removed (their warnings stay as they are). Refused whole, naming the station's field, when
    a device is missing or of another kind, or a village is not a division of this city."""
    now = now or utcnow()
    rows: list[dict[str, object]] = []
    for i, item in enumerate(config.stations):
        where = f"stations.{i}"
        kind = item.station_kind
        device_id, profile, lon, lat = _device(session, item.device, where)
        if profile != kind.profile:
            raise ValidationFailed(
                f"{where}.device: {item.device!r} is a {profile} device; a {kind.code} station's device "
                f"is a {kind.profile}",
                field=f"{where}.device",
            )
        try:
            area = service.resolve_area(session, polygon=None, codes=item.villages)
        except ValidationFailed as exc:
            raise ValidationFailed(f"{where}.villages: {exc.message}", field=f"{where}.villages") from None
        hold = item.hold_minutes if item.hold_minutes is not None else config.hold_minutes
        confirm = item.confirm_levels if item.confirm_levels is not None else config.confirm_levels
        rows.append({
            "code": item.code, "name": item.name, "kind": kind.code, "hazard": item.hazard or kind.hazard,
            "device_id": device_id, "device_name": item.device, "lon": lon, "lat": lat,
            "water_body": item.water_body, "hill": item.hill,
            "villages": [{"code": c, "name": n} for c, n in zip(area.codes, area.names, strict=True)],
            "thresholds": {m: t.levels() for m, t in item.thresholds.items()},
            "confirm_levels": [c for c in LEVEL_CODES if c in confirm],
            "hold_s": hold * 60, "validity_s": config.validity_hours * 3600,
        })
    known = {s.code: s for s in repo.all_stations(session)}
    wanted = {str(r["code"]) for r in rows}
    for code, gone in known.items():
        if code not in wanted:
            session.delete(gone)
    session.flush()  # a device may move from a removed station to a new one
    loaded = []
    for values in rows:
        station = known.get(str(values["code"])) or WarningStation(created_at=now)
        if station.id is None:
            session.add(station)
        for key, value in values.items():
            setattr(station, key, value)
        station.updated_at = now
        loaded.append(station)
    session.flush()
    return loaded


def load_text(session: Session, *, text: str, source: str = "stations") -> StationPage:
    """The stations of a YAML document (the API's and the CLI's way in); the stations as stored."""
    try:
        config = parse(text, source=source)
    except StationsError as exc:
        raise ValidationFailed(str(exc), field="text") from None
    load(session, config=config)
    return list_stations(session)


# --- reading ---------------------------------------------------------------------------------------


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1000, UTC)


def to_read(station: WarningStation, state: StationState | None, warning: HazardWarning | None, *,
            locale: str = "zh", now: datetime | None = None) -> StationRead:
    _ = gettext_for(locale).gettext
    kind = KINDS[station.kind]
    values = state.metrics if state is not None else {}
    metrics = []
    for code, levels in station.thresholds.items():
        metric = METRICS[code]
        value = values.get(code)
        reached, _metric = level_of({code: levels}, {code: value})
        metrics.append(StationMetricRead(code=code, label=_(metric.label), unit=metric.unit, value=value,
                                         thresholds=levels, level=reached))
    level = state.level if state is not None else None
    status = service._status_now(warning, now or utcnow()) if warning is not None else None
    proposed = state.proposed_level if state is not None else None
    if warning is not None and status == "pending":
        proposed = warning.level
    return StationRead(
        code=station.code, name=station.name, kind=kind.code, kind_label=_(kind.label), hazard=station.hazard,
        hazard_label=_(hazards.HAZARDS[station.hazard].label), water_body=station.water_body,
        hill=station.hill, device_id=station.device_id, device_name=station.device_name, lon=station.lon,
        lat=station.lat, villages=[StationVillage(**v) for v in station.villages], metrics=metrics,
        confirm_levels=list(station.confirm_levels), hold_minutes=station.hold_s // 60,
        level=level, level_label=_(hazards.LEVELS[level].label) if level else None,
        reading_at=_at(state.reading_ts) if state is not None and state.reading_ts else None,
        warning_id=warning.id if warning is not None else None, warning_status=status,
        warning_status_label=_(STATE_LABELS[status]) if status else None,
        warning_level=warning.level if warning is not None else None, proposed_level=proposed,
        problem=state.problem if state is not None else None,
    )


def list_stations(session: Session, *, kind: str | None = None, locale: str = "zh") -> StationPage:
    if kind is not None and kind not in KINDS:
        raise ValidationFailed(f"unknown station kind {kind!r}; known: {', '.join(KINDS)}", field="kind")
    stations = [s for s in repo.all_stations(session) if kind is None or s.kind == kind]
    states = repo.station_states(session, [s.id for s in stations])
    warnings = repo.warnings_by_id(session, [st.warning_id for st in states.values() if st.warning_id])
    now = utcnow()
    items = []
    for station in stations:
        state = states.get(station.id)
        warning = warnings.get(state.warning_id) if state is not None and state.warning_id else None
        items.append(to_read(station, state, warning, locale=locale, now=now))
    return StationPage(items=items, total=len(items))


def station_by_code(session: Session, code: str) -> WarningStation:
    station = repo.station_by_code(session, code)
    if station is None:
        raise NotFound(f"no station with code {code!r}", field="station_code")
    return station


def get_station(session: Session, *, code: str, locale: str = "zh") -> StationRead:
    station = station_by_code(session, code)
    state = repo.station_states(session, [station.id]).get(station.id)
    warning = repo.get(session, state.warning_id) if state is not None and state.warning_id else None
    return to_read(station, state, warning, locale=locale)


def device_ids(session: Session) -> set[int]:
    """The devices that are stations (the demo feeds them its own readings)."""
    return {s.device_id for s in repo.all_stations(session)}
