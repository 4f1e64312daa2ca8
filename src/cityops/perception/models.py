"""Devices, their credentials and attributes, and the telemetry they send.

Telemetry is stored as ThingsBoard stores it: a dictionary of key names (a point carries a small key
id, not the name), the latest value per device and key, and the raw history keyed by (device, key,
ts), so a message delivered twice is stored once. Numbers and booleans (1/0) go to `num`, text and
JSON to `text`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow
from cityops.perception import partitions


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    profile_code: Mapped[str] = mapped_column(String(40), index=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_code: Mapped[str | None] = mapped_column(String(15), default=None)
    village_code: Mapped[str] = mapped_column(String(12))
    division_code: Mapped[str] = mapped_column(String(15), index=True)
    # The department that owns the device and receives its alarms.
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="SET NULL"),
                                                    default=None, index=True)
    # ThingsBoard's device access token: the device sends it, so it is kept as it is (shown to
    # administrators only); None once revoked.
    access_token: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    token_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime | None] = mapped_column(default=None)
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The gateway this device is connected behind (ThingsBoard's gateway API): only that gateway may
    # speak for it, and the platform reaches it through that gateway's connection.
    gateway_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"),
                                                   default=None, index=True)
    # False while the device stands where provisioning placed it (its division's first grid), until a
    # manager gives its real position.
    position_confirmed: Mapped[bool] = mapped_column(default=True)


class DeviceAttribute(Base):
    """Attributes as ThingsBoard has them: client (sent by the device), shared (set by the platform,
    read by the device), server (the platform's own)."""

    __tablename__ = "device_attributes"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TelemetryKeyName(Base):
    __tablename__ = "telemetry_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)


class TelemetryLatest(Base):
    __tablename__ = "telemetry_latest"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger)  # milliseconds since the epoch, as devices send it
    num: Mapped[float | None] = mapped_column(Float, default=None)
    text: Mapped[str | None] = mapped_column(String(2000), default=None)


class TelemetryPoint(Base):
    """Raw history. No row id on SQLite: the key (device, key, ts) is the table, ~30 bytes a point.
    On PostgreSQL one partition per day, so retention drops whole days (see partitions.py)."""

    __tablename__ = "telemetry_raw"
    __table_args__ = ({"sqlite_with_rowid": False, "postgresql_partition_by": "RANGE (ts)"},)

    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    num: Mapped[float | None] = mapped_column(Float, default=None)
    text: Mapped[str | None] = mapped_column(String(2000), default=None)


# create_all (tests) gets the default partition and the coming days, as the migration makes them.
event.listen(TelemetryPoint.__table__, "after_create", partitions.after_create)


class IngestRejection(Base):
    """A message that was not stored, and why: the dead-letter list of ingestion."""

    __tablename__ = "ingest_rejections"
    __table_args__ = (Index("ix_ingest_rejections_reason_at", "reason", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    transport: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(24))
    message: Mapped[str] = mapped_column(String(300))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"), default=None)
    token_prefix: Mapped[str | None] = mapped_column(String(8), default=None)
    excerpt: Mapped[str] = mapped_column(String(500), default="")


class TelemetryRollup(Base):
    """min/max/sum/count of a key's numeric points per minute (period_s 60) and per hour (3600), kept
    after the raw points are deleted."""

    __tablename__ = "telemetry_rollups"
    __table_args__ = ({"sqlite_with_rowid": False},)

    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # start, ms since the epoch
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    sum: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)


class TelemetryDirtyHour(Base):
    """Hours of a device's key that received points since their rollups were last computed: the
    rollup job recomputes exactly these (points may arrive late, up to the raw retention)."""

    __tablename__ = "telemetry_dirty_hours"
    __table_args__ = ({"sqlite_with_rowid": False},)

    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # start, ms since the epoch


class RuleState(Base):
    """Where a rule stands for a device: since when its limit has been passed (for the minimum
    duration), whether it has raised its alarm, and the newest point seen (its ts, and its value for
    a rate of change, measured from one point to the next across batches)."""

    __tablename__ = "rule_states"

    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True)
    rule_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    breach_since: Mapped[int | None] = mapped_column(BigInteger, default=None)
    raised: Mapped[bool] = mapped_column(default=False)
    last_ts: Mapped[int] = mapped_column(BigInteger, default=0)
    last_value: Mapped[float | None] = mapped_column(Float, default=None)


ALARM_STATUSES = ("ACTIVE_UNACK", "ACTIVE_ACK", "CLEARED_UNACK", "CLEARED_ACK")


class Alarm(Base):
    """ThingsBoard's alarm: one per (originator, type) while active, updated rather than repeated;
    cleared on recovery; acknowledged by a person. The case it opened or joined is kept."""

    __tablename__ = "alarms"
    __table_args__ = (Index("ix_alarms_device_type", "device_id", "type"),
                      Index("ix_alarms_status", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    rule_code: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE_UNACK")
    start_ts: Mapped[int] = mapped_column(BigInteger)  # the point that raised it, ms
    end_ts: Mapped[int] = mapped_column(BigInteger)  # the latest point that kept it up (or cleared it)
    clear_ts: Mapped[int | None] = mapped_column(BigInteger, default=None)
    ack_at: Mapped[datetime | None] = mapped_column(default=None)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuleSet(Base):
    """A version of the alarm rules, edited in the UI: the newest is in force (none: the shipped
    file). Kept whole, as the YAML document people wrote, so each change can be read back."""

    __tablename__ = "alarm_rule_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                      default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# ThingsBoard's RPC statuses: EXPIRED was never sent before its deadline, TIMEOUT was sent and not
# answered in time.
RPC_STATUSES = ("QUEUED", "SENT", "DELIVERED", "SUCCESSFUL", "TIMEOUT", "EXPIRED", "FAILED")
RPC_OPEN = ("QUEUED", "SENT", "DELIVERED")


class DeviceRpc(Base):
    """A command to a device (ThingsBoard's server-side RPC), kept with its outcome. Sent over MQTT by
    the ingest worker or handed to the device's HTTP long poll; one-way ends when sent, two-way when
    the device answers, both at `expires_at` at the latest."""

    __tablename__ = "device_rpc"
    # The senders' poll and the expiry sweep look for open ones; the device page for a device's newest.
    __table_args__ = (Index("ix_device_rpc_status_expires_at", "status", "expires_at"),
                      Index("ix_device_rpc_device_id_id", "device_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(64))
    params: Mapped[Any] = mapped_column(JSON)
    oneway: Mapped[bool] = mapped_column(default=False)
    timeout_ms: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="QUEUED")
    transport: Mapped[str | None] = mapped_column(String(8), default=None)  # how it was sent: mqtt, http
    expires_at: Mapped[datetime]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    response: Mapped[Any | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(String(300), default=None)


class DeviceDownlink(Base):
    """A message waiting for an ingest worker to publish to a device over MQTT (shared attribute
    updates). A worker takes it by deleting it: sent at most once, like ThingsBoard's pushes, which a
    device that was away catches up on by requesting its attributes."""

    __tablename__ = "device_downlinks"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(120))  # the device's topic, e.g. v1/devices/me/attributes
    payload: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceProvisioning(Base):
    """ThingsBoard's device provisioning, enabled per profile by an administrator: a device that
    presents the profile's key and secret registers itself (POST /api/v1/provision). The secret is
    kept only as an HMAC; new devices are placed in `division_code` and owned by `department` (the
    profile's when None), at most `max_devices` of them."""

    __tablename__ = "device_provisioning"

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_code: Mapped[str] = mapped_column(String(40), unique=True)
    provision_key: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(default=True)
    division_code: Mapped[str] = mapped_column(String(15))
    department: Mapped[str | None] = mapped_column(String(32), default=None)
    max_devices: Mapped[int] = mapped_column(Integer)
    provisioned: Mapped[int] = mapped_column(Integer, default=0)
    # Requests with this key and a wrong secret: shown to administrators, never to devices.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(default=None)
    last_provisioned_at: Mapped[datetime | None] = mapped_column(default=None)
    secret_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
