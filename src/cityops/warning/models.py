"""Warnings and the CAP messages that published them.

A warning is identified as CAP identifies messages: by its sender and the identifier of its first
message (`cityops.hebi.<uuid>` for the platform's own). Every message sent or imported for it (Alert,
Update, Cancel) is kept whole, with the time it was sent as the message wrote it, so later messages can
reference it and the history can be exported as it went out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

SOURCES = ("manual", "station", "external")


class HazardWarning(Base):
    __tablename__ = "warnings"
    __table_args__ = (
        UniqueConstraint("sender", "identifier", name="uq_warnings_sender_identifier"),
        Index("ix_warnings_status_expires", "status", "expires"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(200))
    identifier: Mapped[str] = mapped_column(String(200))
    hazard: Mapped[str] = mapped_column(String(24), index=True)
    level: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12))
    source: Mapped[str] = mapped_column(String(12))
    # Who stands behind it: the sender's name for an imported warning, the rule for a station's.
    source_detail: Mapped[str] = mapped_column(String(200), default="")
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(12))
    urgency: Mapped[str] = mapped_column(String(12))
    certainty: Mapped[str] = mapped_column(String(12))
    headline: Mapped[str] = mapped_column(String(300))
    headline_en: Mapped[str | None] = mapped_column(String(300), default=None)
    description: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str | None] = mapped_column(Text, default=None)
    instruction: Mapped[str] = mapped_column(Text, default="")
    instruction_en: Mapped[str | None] = mapped_column(Text, default=None)
    area_desc: Mapped[str] = mapped_column(String(500))
    # Division codes (GB/T 2260, NBS) the area was given as; sent as CAP geocodes.
    division_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The area as a GeoJSON MultiPolygon (WGS84), None when only codes are known (an import naming
    # divisions of another city, or places not loaded).
    area: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    onset: Mapped[datetime | None] = mapped_column(default=None)
    expires: Mapped[datetime]
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)  # cancelled or expired
    end_reason: Mapped[str | None] = mapped_column(String(500), default=None)


class WarningMessage(Base):
    """One CAP message of a warning, as sent (or received): the history of the warning."""

    __tablename__ = "warning_messages"
    __table_args__ = (
        UniqueConstraint("sender", "identifier", name="uq_warning_messages_sender_identifier"),
        Index("ix_warning_messages_warning_id_id", "warning_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warnings.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(12))  # issue, confirm, update, extend, cancel, import
    msg_type: Mapped[str] = mapped_column(String(8))  # Alert, Update, Cancel
    sender: Mapped[str] = mapped_column(String(200))
    identifier: Mapped[str] = mapped_column(String(200))
    # As the message wrote it (e.g. 2026-07-20T08:00:00+08:00): references must repeat it exactly.
    sent: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    xml: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the response: targets, notices, tasks, evacuations ---------------------------------------------


class WarningTarget(Base):
    """A grid or a village a warning's area covers, kept as resolved so pages and the bench read it. One
    that an update took out of the area keeps its row, with `removed_at`."""

    __tablename__ = "warning_targets"
    __table_args__ = (UniqueConstraint("warning_id", "code", name="uq_warning_targets_warning_id_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warnings.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # grid or village
    code: Mapped[str] = mapped_column(String(15))
    village_code: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(100))
    # A point inside it, where its tasks are placed (and so routed to its grid).
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(default=None)


class WarningNotice(Base):
    """One person told of one CAP message of a warning: at most once (a redelivered event tells nobody
    again; a new message, e.g. the Update raising the warning to red, tells everyone again)."""

    __tablename__ = "warning_notices"
    __table_args__ = (
        UniqueConstraint("message_id", "user_id", name="uq_warning_notices_message_id_user_id"),
        Index("ix_warning_notices_warning_id_message_id", "warning_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warnings.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("warning_messages.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(24))  # grid_worker, or village_head
    target_code: Mapped[str] = mapped_column(String(15))
    level: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WarningTask(Base):
    """A response task of a warning's emergency plan: a case, once per (warning, plan item, target)."""

    __tablename__ = "warning_tasks"
    __table_args__ = (
        UniqueConstraint(
            "warning_id", "item", "target_code", name="uq_warning_tasks_warning_id_item_target_code"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warnings.id", ondelete="CASCADE"))
    item: Mapped[str] = mapped_column(String(81))  # plan code.item code, e.g. flood.evacuate_low_lying
    level: Mapped[str] = mapped_column(String(8))  # the plan level the item belongs to
    # A grid or village code, or the department's org unit code (dept-emergency).
    target_code: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("warning_messages.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WarningEvacuation(Base):
    """A village's report of the people it has moved to safety so far: the latest report of a village
    holds its figures (running totals, so a report sent twice counts once)."""

    __tablename__ = "warning_evacuations"
    __table_args__ = (
        Index("ix_warning_evacuations_warning_id_village_code", "warning_id", "village_code", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warnings.id", ondelete="CASCADE"))
    village_code: Mapped[str] = mapped_column(String(12))
    evacuated: Mapped[int]  # people moved out of danger
    sheltered: Mapped[int] = mapped_column(default=0)  # of them, in shelters
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    reported_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    reported_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- monitoring stations ---------------------------------------------------------------------------


class WarningStation(Base):
    """A monitoring station: a perception device and what warnings need to know of it (its kind, the
    water body or hill, the villages it warns for, per metric the thresholds of the four levels), as
    loaded from a stations file (data/stations.yaml for the demo; see stations.py)."""

    __tablename__ = "warning_stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(12))  # rain, river, reservoir, soil, slope
    hazard: Mapped[str] = mapped_column(String(24))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), unique=True)
    device_name: Mapped[str] = mapped_column(String(120))
    # Where the device stood when the stations were loaded (for the map).
    lon: Mapped[float]
    lat: Mapped[float]
    water_body: Mapped[str | None] = mapped_column(String(40), default=None)
    hill: Mapped[str | None] = mapped_column(String(40), default=None)
    # [{"code": ..., "name": ...}]: the divisions (low-lying villages downstream) it warns for.
    villages: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # {metric: {level: threshold}}, e.g. {"level": {"blue": 2.6, "yellow": 3.2}}.
    thresholds: Mapped[dict[str, dict[str, float]]] = mapped_column(JSON)
    # Levels an operator confirms before they go out (the others are issued at once).
    confirm_levels: Mapped[list[str]] = mapped_column(JSON, default=list)
    hold_s: Mapped[int]  # how long the readings stay below a level before the warning steps down
    validity_s: Mapped[int]  # how long a station warning stays in force without new readings
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StationState(Base):
    """Where a station stands for its hazard: the level its newest readings reach, the warning it
    raised, an escalation awaiting confirmation, the hold before stepping down. The row is also the
    lock that keeps two batches of one station from raising two warnings."""

    __tablename__ = "warning_station_states"
    __table_args__ = (
        UniqueConstraint("station_id", "hazard", name="uq_warning_station_states_station_id_hazard"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("warning_stations.id", ondelete="CASCADE"))
    hazard: Mapped[str] = mapped_column(String(24))
    level: Mapped[str | None] = mapped_column(String(8), default=None)  # of the newest readings
    metrics: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)  # metric -> value
    reading_ts: Mapped[int | None] = mapped_column(BigInteger, default=None)  # ms, the readings' time
    warning_id: Mapped[int | None] = mapped_column(
        ForeignKey("warnings.id", ondelete="SET NULL"), default=None
    )
    proposed_level: Mapped[str | None] = mapped_column(String(8), default=None)
    # The level of the station's warning an operator ended: not raised again unless passed.
    suppressed_level: Mapped[str | None] = mapped_column(String(8), default=None)
    below_since_ts: Mapped[int | None] = mapped_column(BigInteger, default=None)
    peak_level: Mapped[str | None] = mapped_column(String(8), default=None)  # highest during the hold
    problem: Mapped[str | None] = mapped_column(String(300), default=None)  # readings left out, why
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the command board: drone patrol routes, satellite scenes and their change areas ----------------


class PatrolRoute(Base):
    """A drone's patrol route: a named line (GeoJSON LineString, WGS84) inside the city, assigned to one
    drone (a perception device of the drone profile), with its schedule and status."""

    __tablename__ = "warning_patrol_routes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    line: Mapped[dict[str, Any]] = mapped_column(JSON)
    length_km: Mapped[float] = mapped_column(Float)
    schedule: Mapped[str] = mapped_column(String(100), default="")  # e.g. 每日 08:00、14:00
    status: Mapped[str] = mapped_column(String(12), default="planned")  # planned, active, suspended, retired
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SatelliteScene(Base):
    """A satellite scene of the catalogue: where it looked (its footprint), when, with which sensor."""

    __tablename__ = "warning_scenes"
    __table_args__ = (UniqueConstraint("source", "scene_id", name="uq_warning_scenes_source_scene_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scene_id: Mapped[str] = mapped_column(String(100))  # the provider's identifier
    sensor: Mapped[str] = mapped_column(String(40))  # GF-1, GF-2, GF-6, Sentinel-2 ...
    source: Mapped[str] = mapped_column(String(100))  # who delivered it
    acquired_at: Mapped[datetime] = mapped_column(index=True)
    cloud_cover: Mapped[float] = mapped_column(Float)  # percent
    resolution_m: Mapped[float] = mapped_column(Float)
    footprint: Mapped[dict[str, Any]] = mapped_column(JSON)  # GeoJSON Polygon or MultiPolygon
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChangeArea(Base):
    """An area a scene's analysis flagged as changed (water spreading, a landslide, a new building); at
    most one case is opened from it."""

    __tablename__ = "warning_change_areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    scene_id: Mapped[int] = mapped_column(ForeignKey("warning_scenes.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # flooding, landslide, illegal_building
    confidence: Mapped[float] = mapped_column(Float)  # 0..1
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)  # GeoJSON Polygon or MultiPolygon
    # Its representative point (inside it): where a case opened from it is located and routed.
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    area_km2: Mapped[float] = mapped_column(Float)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), unique=True, default=None
    )
    opened_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    opened_at: Mapped[datetime | None] = mapped_column(default=None)
