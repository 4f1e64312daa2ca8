"""Alarm rules as data: a YAML document validated by pydantic with errors that name the line and the
field. The shipped file (data/rules.yaml) applies until someone saves a version in the rules editor
(/devices/rules); the newest saved version is then in force (`in_force`).

The rules of one device, told apart by `kind`:
- threshold: raises when a key passes its limit and stays past it for `for_s` seconds, and clears
  when the value comes back past `clear_at`; in between (the hysteresis band) nothing changes.
- rate_of_change: raises when a key rises (or falls) faster than a limit per `per_s` seconds between
  two consecutive points of the device, and clears when the rate is back under `clear_at`.
- no_data: raises when a device that has reported stays silent for `n_intervals` of its profile's
  report intervals (found by a scheduled job, not by a batch); clears when it reports again.
- geofence: raises when a device's position (two numeric keys) is outside (or inside) a zone, a
  division or grid code or a polygon; clears when it is back.
Confirmations are rules across devices (see ConfirmRule)."""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

import shapely
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cityops.core.errors import ValidationFailed
from cityops.core.yaml_config import ConfigFileError, load_yaml_file, parse_yaml
from cityops.perception import profiles
from cityops.perception.models import RuleSet

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "rules.yaml"
Severity = Literal["CRITICAL", "MAJOR", "MINOR", "WARNING"]
EXPECTED = "a mapping with rules"


class RulesError(ConfigFileError):
    """A rules file that cannot be used; the message names the line."""


class _Rule(BaseModel):
    """What every rule of one device's profile has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=80)
    profile: str
    severity: Severity
    alarm_type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    case_category: str | None = None

    @model_validator(mode="after")
    def _known_profile(self) -> Self:
        try:
            profiles.registry().get(self.profile)
        except ValidationFailed as exc:
            raise ValueError(exc.message) from None
        return self


class ThresholdRule(_Rule):
    kind: Literal["threshold"]
    key: str = Field(min_length=1, max_length=64)
    above: float | None = None
    below: float | None = None
    clear_at: float
    for_s: int = Field(default=0, ge=0, le=86_400)

    @model_validator(mode="after")
    def _consistent(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        if self.above is not None and self.clear_at > self.above:
            raise ValueError("clear_at must not be above the limit it clears")
        if self.below is not None and self.clear_at < self.below:
            raise ValueError("clear_at must not be below the limit it clears")
        return self

    def breached(self, value: float) -> bool:
        return value > self.above if self.above is not None else value < (self.below or 0.0)

    def recovered(self, value: float) -> bool:
        return value < self.clear_at if self.above is not None else value > self.clear_at

    def reading(self, value: float) -> str:
        return f"{self.key} = {value:g}"


class RateRule(_Rule):
    """`key` changing faster than `rise` (or `fall`) per `per_s` seconds, measured between consecutive
    points of the device in time order; clears when the rate in that direction is under `clear_at`."""

    kind: Literal["rate_of_change"]
    key: str = Field(min_length=1, max_length=64)
    rise: float | None = Field(default=None, gt=0)
    fall: float | None = Field(default=None, gt=0)
    per_s: int = Field(default=3600, ge=1, le=86_400)
    clear_at: float

    @field_validator("clear_at")
    @classmethod
    def _under_limit(cls, clear_at: float, info: ValidationInfo) -> float:
        limit = info.data.get("rise") or info.data.get("fall")
        if limit is not None and clear_at > limit:
            raise ValueError("clear_at must not be above the rate it clears")
        return clear_at

    @model_validator(mode="after")
    def _consistent(self) -> RateRule:
        if (self.rise is None) == (self.fall is None):
            raise ValueError("give exactly one of rise or fall")
        return self

    @property
    def limit(self) -> float:
        return self.rise if self.rise is not None else (self.fall or 0.0)

    def rate(self, before: tuple[int, float], ts: int, value: float) -> float:
        """The change from the point before to this one per `per_s`, positive in the rule's direction."""
        change = (value - before[1]) / (ts - before[0]) * 1000 * self.per_s
        return change if self.rise is not None else -change

    def reading(self, value: float) -> str:
        way = "rising" if self.rise is not None else "falling"
        return f"{self.key} {way} {value:g} per {self.per_s} s"


class NoDataRule(_Rule):
    """A device that has reported before, silent for `n_intervals` of its profile's report interval.
    Devices that never reported are not watched."""

    kind: Literal["no_data"]
    n_intervals: int = Field(ge=1, le=1000)

    @property
    def key(self) -> str | None:
        return None  # watches no key: the device's silence

    @property
    def silent_s(self) -> int:
        return profiles.registry().get(self.profile).report_interval_s * self.n_intervals

    def reading(self, value: float) -> str:
        return f"no data for {value:g} s"


class GeofenceRule(_Rule):
    """A device's position (`lon_key`, `lat_key`, WGS84) outside the zone (or inside it, with
    `alarm_when: inside`). The zone is a division or grid code (`zone`) or a `polygon` of
    [lon, lat] pairs; a point on its edge is inside. The alarm's value is 1 inside, 0 outside."""

    kind: Literal["geofence"]
    lon_key: str = Field(default="lon", min_length=1, max_length=64)
    lat_key: str = Field(default="lat", min_length=1, max_length=64)
    zone: str | None = Field(default=None, pattern=r"^[0-9A-Za-z_-]{1,15}$")
    polygon: tuple[tuple[float, float], ...] | None = None
    alarm_when: Literal["outside", "inside"] = "outside"

    @field_validator("polygon")
    @classmethod
    def _ring(cls, pairs: tuple[tuple[float, float], ...] | None) -> tuple[tuple[float, float], ...] | None:
        if pairs is None:
            return None
        if len(pairs) < 3:
            raise ValueError("a polygon needs at least three [lon, lat] pairs")
        if any(not (-180 <= lon <= 180 and -90 <= lat <= 90) for lon, lat in pairs):
            raise ValueError("each pair is [lon, lat] in WGS84 degrees (lon within ±180, lat within ±90)")
        if not shapely.Polygon(pairs).is_valid:
            raise ValueError("the polygon's edges cross each other")
        return pairs

    @model_validator(mode="after")
    def _consistent(self) -> GeofenceRule:
        if (self.zone is None) == (self.polygon is None):
            raise ValueError("give exactly one of zone or polygon")
        return self

    @property
    def key(self) -> str | None:
        return None  # watches two keys, lon_key and lat_key

    def breached(self, inside: bool) -> bool:
        return inside == (self.alarm_when == "inside")

    def reading(self, value: float) -> str:
        where = f"zone {self.zone}" if self.zone else "the polygon"
        return f"{'inside' if value else 'outside'} {where}"


class Signal(BaseModel):
    """One device's part of a confirmation: its profile's key passing a limit or equal to a value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str
    key: str = Field(min_length=1, max_length=64)
    above: float | None = None
    equals: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Signal:
        if (self.above is None) == (self.equals is None):
            raise ValueError("give exactly one of above or equals")
        try:
            profiles.registry().get(self.profile)
        except ValidationFailed as exc:
            raise ValueError(exc.message) from None
        return self

    def met(self, num: float | None, text: str | None) -> bool:
        if self.above is not None:
            return num is not None and num > self.above
        return text == self.equals


class ConfirmRule(BaseModel):
    """Confirmation across devices in one place: every signal seen within `within_m` metres and
    `window_s` seconds (smoke and a camera's fire event). The alarm's originator is the device of the
    first signal; it clears when that device's value comes back under `clear_at`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=80)
    kind: Literal["confirm"]
    signals: tuple[Signal, Signal]
    clear_at: float
    within_m: float = Field(gt=0, le=5_000)
    window_s: int = Field(ge=1, le=86_400)
    severity: Severity
    alarm_type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    case_category: str | None = None

    @property
    def profile(self) -> str:
        return self.signals[0].profile

    @property
    def key(self) -> str:
        return self.signals[0].key

    def reading(self, value: float) -> str:
        return f"{self.key} = {value:g}"


# A rule of one device's profile; `kind` picks the model, so an error names the fields of that kind.
DeviceRule = Annotated[ThresholdRule | RateRule | NoDataRule | GeofenceRule, Field(discriminator="kind")]
# The rules evaluated over a batch's points, indexed by (profile, key).
PointRule = ThresholdRule | RateRule | GeofenceRule
AnyRule = ThresholdRule | RateRule | NoDataRule | GeofenceRule | ConfirmRule


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[DeviceRule, ...]
    confirmations: tuple[ConfirmRule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Rules:
        codes = [r.code for r in self.rules] + [c.code for c in self.confirmations]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"rule codes repeat: {', '.join(dupes)}")
        return self

    def for_profile(self, profile: str) -> list[DeviceRule]:
        return [r for r in self.rules if r.profile == profile]

    def by_profile_key(self) -> dict[tuple[str, str], tuple[PointRule, ...]]:
        """The rules on each (profile, key), indexed once: ingestion looks them up per point. A
        geofence is under both of its position keys."""
        return _by_profile_key(self)

    def no_data(self) -> list[NoDataRule]:
        return [r for r in self.rules if isinstance(r, NoDataRule)]

    def all(self) -> list[AnyRule]:
        return [*self.rules, *self.confirmations]

    def rule(self, code: str) -> AnyRule | None:
        return next((r for r in self.all() if r.code == code), None)


@lru_cache(maxsize=8)
def _by_profile_key(rules: Rules) -> dict[tuple[str, str], tuple[PointRule, ...]]:
    index: dict[tuple[str, str], tuple[PointRule, ...]] = {}
    for rule in rules.rules:
        if isinstance(rule, NoDataRule):
            continue
        keys = (rule.lon_key, rule.lat_key) if isinstance(rule, GeofenceRule) else (rule.key,)
        for key in keys:
            index[(rule.profile, key)] = (*index.get((rule.profile, key), ()), rule)
    return index


def parse(text: str, *, source: str = "rules") -> Rules:
    return parse_yaml(text, Rules, source=source, expected=EXPECTED, error=RulesError)


@lru_cache(maxsize=8)
def registry(path: Path = DEFAULT_PATH) -> Rules:
    """The configured rules, loaded and validated once per file."""
    return load_yaml_file(path, Rules, expected=EXPECTED, error=RulesError)


# --- the rules in force -------------------------------------------------------------------------

CHECK_EVERY_S = 1.0  # how stale a process's rules may be after someone saved new ones elsewhere


@dataclass
class _InForce:
    version: int | None = -1  # the rule set loaded; None: the shipped file
    rules: Rules | None = None
    checked: float = -math.inf


_in_force: weakref.WeakKeyDictionary[Engine, _InForce] = weakref.WeakKeyDictionary()


def in_force(session: Session) -> Rules:
    """The rules in force: the newest version saved in the UI, else the shipped file. Looked up at
    most once a second per process (one indexed max), so every ingest batch may ask."""
    state = _in_force.setdefault(session.get_bind().engine, _InForce())
    now = time.monotonic()
    if state.rules is not None and now - state.checked < CHECK_EVERY_S:
        return state.rules
    latest = session.scalar(select(func.max(RuleSet.id)))
    if latest != state.version or state.rules is None:
        text = session.scalar(select(RuleSet.text).where(RuleSet.id == latest)) if latest else None
        # A saved version was validated when saved; the shipped file at start.
        state.rules = parse(text, source=f"rules v{latest}") if text is not None else registry()
        state.version = latest
    state.checked = now
    return state.rules


def forget_in_force(session: Session) -> None:
    """This process's next in_force() reads the database again (after saving a version)."""
    _in_force.pop(session.get_bind().engine, None)
