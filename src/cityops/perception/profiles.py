"""Device profiles as configuration: a YAML file (data/device_profiles.yaml, overridable per city)
validated by pydantic; a bad file raises ProfilesError naming the line."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityops.core.errors import ValidationFailed
from cityops.core.yaml_config import ConfigFileError, load_yaml_file, parse_yaml

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "device_profiles.yaml"
# A device silent for this many report intervals is offline.
OFFLINE_AFTER_INTERVALS = 3
EXPECTED = "a mapping with profiles"


class ProfilesError(ConfigFileError):
    """A device profiles file that cannot be used; the message names the line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TelemetryKey(_Strict):
    key: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.]{0,63}$")
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=80)
    unit: str | None = Field(default=None, max_length=16)
    type: Literal["number", "boolean", "string"] = "number"


class DeviceProfile(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=80)
    # A gateway speaks for the devices behind it (ThingsBoard's gateway API, perception/mqtt.py).
    kind: Literal["sensor", "camera", "gateway"]
    department: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")
    report_interval_s: int = Field(ge=1, le=86_400)
    keys: tuple[TelemetryKey, ...] = ()

    @property
    def offline_after_s(self) -> int:
        return self.report_interval_s * OFFLINE_AFTER_INTERVALS

    def key(self, name: str) -> TelemetryKey | None:
        return next((k for k in self.keys if k.key == name), None)


class DeviceProfiles(_Strict):
    profiles: tuple[DeviceProfile, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> DeviceProfiles:
        codes = [p.code for p in self.profiles]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"profile codes repeat: {', '.join(dupes)}")
        return self

    def get(self, code: str) -> DeviceProfile:
        for profile in self.profiles:
            if profile.code == code:
                return profile
        known = ", ".join(p.code for p in self.profiles)
        raise ValidationFailed(f"unknown device profile {code!r}; known: {known}", field="profile")


def parse(text: str, *, source: str = "device profiles") -> DeviceProfiles:
    return parse_yaml(text, DeviceProfiles, source=source, expected=EXPECTED, error=ProfilesError)


@lru_cache(maxsize=8)
def registry(path: Path = DEFAULT_PATH) -> DeviceProfiles:
    """The configured profiles, loaded and validated once per file."""
    return load_yaml_file(path, DeviceProfiles, expected=EXPECTED, error=ProfilesError)
