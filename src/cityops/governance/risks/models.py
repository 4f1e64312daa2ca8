"""Risks found in case patterns and the control tasks sent to units."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

STAGES = ("searchlight", "excavator", "roller", "closed")
KINDS = ("cluster", "same_place", "same_parties")


class Risk(Base):
    """A pattern of cases: a cluster of one category on the map, repeat disputes at one place or between
    the same parties. `pattern_key` makes a scan register a pattern once."""

    __tablename__ = "governance_risks"
    __table_args__ = (
        CheckConstraint("stage IN ('searchlight', 'excavator', 'roller', 'closed')", name="stage"),
        CheckConstraint("kind IN ('cluster', 'same_place', 'same_parties')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), index=True)
    pattern_key: Mapped[str] = mapped_column(String(120), unique=True)
    type_code: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    # The smallest division holding every case of the pattern (scope by prefix).
    division_code: Mapped[str] = mapped_column(String(15), index=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float, default=0.0)
    case_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    case_count: Mapped[int] = mapped_column(default=0)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    stage: Mapped[str] = mapped_column(String(12), default="searchlight", index=True)
    identified_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    aftercare: Mapped[str | None] = mapped_column(Text, default=None)
    root_cause: Mapped[str | None] = mapped_column(Text, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class RiskTask(Base):
    """A control task (挖掘机): a case sent to a unit to deal with the risk."""

    __tablename__ = "governance_risk_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    risk_id: Mapped[int] = mapped_column(ForeignKey("governance_risks.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), default=None)
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="SET NULL"), default=None
    )
    title: Mapped[str] = mapped_column(String(200))
    created_by_name: Mapped[str | None] = mapped_column(String(80), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
