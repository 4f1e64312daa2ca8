"""Alarm rules as configuration: a YAML file (data/rules.yaml, overridable per city) validated by
pydantic with errors that name the line, and their evaluation over a batch of points.

A threshold rule raises when a key passes its limit and stays past it for `for_s` seconds, and clears
when the value comes back past `clear_at`; in between (the hysteresis band) nothing changes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityops.core.errors import ValidationFailed
from cityops.core.yaml_config import ConfigFileError, load_yaml_file, parse_yaml
from cityops.perception import profiles

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "rules.yaml"
Severity = Literal["CRITICAL", "MAJOR", "MINOR", "WARNING"]
EXPECTED = "a mapping with rules"


class RulesError(ConfigFileError):
    """A rules file that cannot be used; the message names the line."""


class ThresholdRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=80)
    profile: str
    kind: Literal["threshold"]
    key: str = Field(min_length=1, max_length=64)
    above: float | None = None
    below: float | None = None
    clear_at: float
    for_s: int = Field(default=0, ge=0, le=86_400)
    severity: Severity
    alarm_type: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    case_category: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        if self.above is not None and self.clear_at > self.above:
            raise ValueError("clear_at must not be above the limit it clears")
        if self.below is not None and self.clear_at < self.below:
            raise ValueError("clear_at must not be below the limit it clears")
        try:
            profiles.registry().get(self.profile)
        except ValidationFailed as exc:
            raise ValueError(exc.message) from None
        return self

    def breached(self, value: float) -> bool:
        return value > self.above if self.above is not None else value < (self.below or 0.0)

    def recovered(self, value: float) -> bool:
        return value < self.clear_at if self.above is not None else value > self.clear_at


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


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[ThresholdRule, ...]
    confirmations: tuple[ConfirmRule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> Rules:
        codes = [r.code for r in self.rules] + [c.code for c in self.confirmations]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"rule codes repeat: {', '.join(dupes)}")
        return self

    def for_profile(self, profile: str) -> list[ThresholdRule]:
        return [r for r in self.rules if r.profile == profile]

    def by_profile_key(self) -> dict[tuple[str, str], tuple[ThresholdRule, ...]]:
        """The rules on each (profile, key), indexed once: ingestion looks them up per point."""
        return _by_profile_key(self)

    def all(self) -> list[ThresholdRule | ConfirmRule]:
        return [*self.rules, *self.confirmations]

    def rule(self, code: str) -> ThresholdRule | ConfirmRule | None:
        return next((r for r in self.all() if r.code == code), None)


@lru_cache(maxsize=8)
def _by_profile_key(rules: Rules) -> dict[tuple[str, str], tuple[ThresholdRule, ...]]:
    index: dict[tuple[str, str], tuple[ThresholdRule, ...]] = {}
    for rule in rules.rules:
        index[(rule.profile, rule.key)] = (*index.get((rule.profile, rule.key), ()), rule)
    return index


def parse(text: str, *, source: str = "rules") -> Rules:
    return parse_yaml(text, Rules, source=source, expected=EXPECTED, error=RulesError)


@lru_cache(maxsize=8)
def registry(path: Path = DEFAULT_PATH) -> Rules:
    """The configured rules, loaded and validated once per file."""
    return load_yaml_file(path, Rules, expected=EXPECTED, error=RulesError)
