"""Pydantic schemas of the perception API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Status = Literal["online", "offline", "inactive"]


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    profile: str = Field(min_length=1, max_length=40)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)


class UnitRef(BaseModel):
    id: int
    code: str
    name: str


class LatestValue(BaseModel):
    ts: int  # milliseconds since the epoch, as the device sent it
    at: datetime
    value: float | str | None


class DeviceRead(BaseModel):
    id: int
    name: str
    profile: str
    profile_name: str
    kind: str
    lon: float
    lat: float
    grid_code: str | None
    village_code: str
    division_code: str
    org_unit: UnitRef | None
    status: Status
    last_activity_at: datetime | None
    synthetic: bool
    # The gateway it reports through (ThingsBoard's gateway API), if any.
    gateway_id: int | None = None
    # Only for those who manage devices; None for everyone else and once revoked.
    access_token: str | None = None
    latest: dict[str, LatestValue] = Field(default_factory=dict)
    # False for a device that provisioned itself, until a manager gives its real position.
    position_confirmed: bool = True


class DevicePage(BaseModel):
    items: list[DeviceRead]
    total: int
    limit: int
    offset: int


class SeriesRead(BaseModel):
    key: str
    unit: str | None
    points: list[tuple[int, float | str | None]]


class RejectionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    received_at: datetime
    transport: str
    reason: str
    message: str
    device_id: int | None
    token_prefix: str | None
    excerpt: str


class RejectionsRead(BaseModel):
    counts: dict[str, int]
    items: list[RejectionRead]


class AttributesRead(BaseModel):
    client: dict[str, Any]
    shared: dict[str, Any]


class AlarmRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: int
    device_name: str
    type: str
    rule_code: str
    severity: str
    status: str
    start_at: datetime
    end_at: datetime
    clear_at: datetime | None
    ack_at: datetime | None
    value: float | None
    case_id: int | None


class AlarmPage(BaseModel):
    items: list[AlarmRead]
    total: int


class AlarmCase(BaseModel):
    """The case an alarm opened or joined, as far as the viewer may see it."""

    id: int
    number: str | None = None
    status: str | None = None  # None when the case lies outside the viewer's scope
    org_unit_name: str | None = None


class FireAlarmRead(AlarmRead):
    lon: float
    lat: float
    confirmed_fire: bool  # a cross-device confirmation (camera + smoke), not a detector alone
    confirmed: bool | None = None  # for smoke alarms: a confirmed fire overlapped it
    case: AlarmCase | None = None


class FireCounts(BaseModel):
    active: int
    confirmed_today: int
    unconfirmed_smoke_today: int


class FalseAlarmRate(BaseModel):
    device_id: int
    device_name: str
    division_code: str
    org_unit_name: str | None
    alarms: int
    confirmed: int
    false_alarms: int
    active: int
    rate: float  # false_alarms / alarms, 0..1


class FalseAlarmPage(BaseModel):
    items: list[FalseAlarmRate]
    total: int
    days: int
    window_s: int


class FireBoard(BaseModel):
    counts: FireCounts
    active: list[FireAlarmRead]
    today: list[FireAlarmRead]
    rates: FalseAlarmPage


class RuleVersionRead(BaseModel):
    """A saved version of the alarm rules."""

    id: int
    comment: str
    created_by: str | None
    created_at: datetime


class RulesRead(BaseModel):
    """The rules in force: their version (None: the shipped file), the YAML, the versions saved."""

    version: int | None  # the version shown
    in_force: int | None  # the newest saved version
    text: str
    rules: list[dict[str, Any]]
    versions: list[RuleVersionRead]


class RulesWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=200_000, description="The whole rules document (YAML)")
    comment: str = Field(default="", max_length=200)


class RpcCreate(BaseModel):
    """A command to a device, as ThingsBoard's server-side RPC: two-way waits for the device's answer,
    one-way ends once sent; either ends at the timeout at the latest."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field(min_length=1, max_length=64, description="Letters, digits and _ . - : /")
    params: Any = Field(default_factory=dict, description="Any JSON, sent to the device as it is")
    timeout_ms: int = Field(default=10_000, ge=1_000, le=600_000,
                            description="How long the device has to take it (and answer, if two-way)")
    oneway: bool = False


class RpcRead(BaseModel):
    id: int
    device_id: int
    method: str
    params: Any
    oneway: bool
    # QUEUED, SENT, DELIVERED (the broker took it), SUCCESSFUL, TIMEOUT, EXPIRED (never sent), FAILED
    status: str
    transport: str | None
    timeout_ms: int
    expires_at: datetime
    created_by: int | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    completed_at: datetime | None
    response: Any = None
    error: str | None


class RpcPage(BaseModel):
    items: list[RpcRead]
    total: int


class AttributeRead(BaseModel):
    key: str
    value: Any
    updated_at: datetime  # when it was last set (by the device for client attributes)


class DeviceAttributesRead(BaseModel):
    """A device's attributes by ThingsBoard's scopes, each by key: client (sent by the device), shared
    (set by the platform, read by the device), server (the platform's own)."""

    client: list[AttributeRead]
    shared: list[AttributeRead]
    server: list[AttributeRead]


class DeviceUpdate(BaseModel):
    """A device's name and position, placed as a new device is (grid, village, division from the
    point). Fields left out keep their value; a position is lon and lat together, and confirms it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)


# --- device provisioning (ThingsBoard's POST /api/v1/provision) ---------------------------------

# A token a device may choose: what is safe as a URL path segment and as an MQTT user name, long enough
# not to be guessed easily (it is the device's only credential).
TOKEN_PATTERN = r"^[A-Za-z0-9_.~-]{8,64}$"


class ProvisionRequest(BaseModel):
    """ThingsBoard's provisioning request. Without a name the device gets a generated one; it may ask
    for its access token with `"credentialsType": "ACCESS_TOKEN", "token": "..."`. ThingsBoard's other
    fields (gateway, the credentials of other types) are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    device_name: str | None = Field(default=None, alias="deviceName", max_length=120)
    provision_device_key: str = Field(alias="provisionDeviceKey", max_length=200)
    provision_device_secret: str = Field(alias="provisionDeviceSecret", max_length=200)
    credentials_type: str | None = Field(default=None, alias="credentialsType", max_length=40)
    token: str | None = Field(default=None, max_length=64)

    @field_validator("device_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the name is blank; leave deviceName out to get a generated one")
        return value.strip() if value is not None else None

    @field_validator("credentials_type")
    @classmethod
    def _credentials_type(cls, value: str | None) -> str | None:
        if value is not None and value != "ACCESS_TOKEN":
            raise ValueError("cityops issues access tokens only: ACCESS_TOKEN, or leave credentialsType out")
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(TOKEN_PATTERN, value):
            raise ValueError("an access token is 8 to 64 letters, digits and _ . ~ -")
        return value


class ProvisioningWrite(BaseModel):
    """Enable, change or disable a profile's provisioning. Fields left out keep their value (a new one
    needs division_code, and is enabled); rotate_secret gives a new secret, answered this once."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    division_code: str | None = Field(default=None, pattern=r"^[0-9]{6,15}$")
    max_devices: int | None = Field(default=None, ge=1, le=100_000)
    # The slug of the owning department (org unit dept-<slug>); empty: the profile's own.
    department: str | None = Field(default=None, pattern=r"^([a-z][a-z0-9-]{0,30})?$")
    rotate_secret: bool = False


class ProvisioningRead(BaseModel):
    profile: str
    profile_name: str
    enabled: bool
    # The key devices present with the secret; not secret on its own.
    provision_key: str
    division_code: str
    department: str
    org_unit: UnitRef | None
    max_devices: int
    provisioned: int
    failed_attempts: int
    last_failure_at: datetime | None
    last_provisioned_at: datetime | None
    secret_changed_at: datetime
    updated_at: datetime
    # Only in the answer that made it (enabling for the first time, or rotating): never again.
    secret: str | None = None
