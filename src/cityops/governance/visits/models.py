"""Household visits, patrol logs and the issues grid workers find on them (each one a case)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

# 四大一送: the kinds of a household visit (a visit may be several at once).
VISIT_KINDS = ("visit", "publicise", "check", "resolve", "support")


def _user_fk() -> ForeignKey:
    return ForeignKey("users.id", ondelete="SET NULL")


class Visit(Base):
    """One household visit by a grid worker in their grid. The household head's name and phone are
    personal information: masked for viewers without pii.view."""

    __tablename__ = "grid_visits"
    __table_args__ = (Index("ix_grid_visits_division_visited", "division_code", "visited_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int | None] = mapped_column(_user_fk(), default=None, index=True)
    worker_name: Mapped[str] = mapped_column(String(80))
    # The grid of the visit's GPS point (or its village when no grid matched): the scope rule works
    # by prefix, as for cases.
    division_code: Mapped[str] = mapped_column(String(15))
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    kinds: Mapped[list[str]] = mapped_column(JSON)
    address: Mapped[str] = mapped_column(String(200))
    household_head: Mapped[str | None] = mapped_column(String(60), default=None)
    household_phone: Mapped[str | None] = mapped_column(String(20), default=None)
    notes: Mapped[str] = mapped_column(Text, default="")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    # The photo is stored by its SHA-256 under settings.attachments_dir (cityops.core.files).
    photo_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    photo_media_type: Mapped[str | None] = mapped_column(String(40), default=None)
    photo_size: Mapped[int | None] = mapped_column(default=None)
    visited_at: Mapped[datetime] = mapped_column(default=utcnow)
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Patrol(Base):
    """A patrol: started and ended by a grid worker, with the track the phone posted meanwhile."""

    __tablename__ = "grid_patrols"
    __table_args__ = (Index("ix_grid_patrols_division_started", "division_code", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int | None] = mapped_column(_user_fk(), default=None, index=True)
    worker_name: Mapped[str] = mapped_column(String(80))
    # The worker's scope when the patrol started (a grid, or a village for centre staff).
    division_code: Mapped[str] = mapped_column(String(15))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    # [[lon, lat, "ISO time"], ...] in the order walked.
    track: Mapped[list[Any]] = mapped_column(JSON, default=list)
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)
    notes: Mapped[str] = mapped_column(Text, default="")
    synthetic: Mapped[bool] = mapped_column(default=False)


class GridIssue(Base):
    """An issue a grid worker found, and the case it became: on a visit, on a patrol or reported on
    its own from the phone page (then with its own photo)."""

    __tablename__ = "grid_issues"
    __table_args__ = (
        CheckConstraint("NOT (visit_id IS NOT NULL AND patrol_id IS NOT NULL)", name="one_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("grid_visits.id", ondelete="CASCADE"), default=None, index=True
    )
    patrol_id: Mapped[int | None] = mapped_column(
        ForeignKey("grid_patrols.id", ondelete="CASCADE"), default=None, index=True
    )
    worker_id: Mapped[int | None] = mapped_column(_user_fk(), default=None, index=True)
    division_code: Mapped[str] = mapped_column(String(15), index=True)
    photo_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    photo_media_type: Mapped[str | None] = mapped_column(String(40), default=None)
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
