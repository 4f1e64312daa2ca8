"""Projects and major decisions, their risk assessments and the mitigations a high risk calls for."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

KINDS = ("project", "decision")
RISK_LEVELS = ("low", "medium", "high")
STATUSES = ("assessing", "approved", "proceeding")


def _unit_fk() -> ForeignKey:
    return ForeignKey("org_units.id", ondelete="SET NULL")


class RiskProject(Base):
    """A major project or decision under social stability risk assessment. `risk_level` is the level
    of the latest assessment (None until assessed)."""

    __tablename__ = "risk_projects"
    __table_args__ = (
        CheckConstraint("kind IN ('project', 'decision')", name="kind"),
        CheckConstraint("status IN ('assessing', 'approved', 'proceeding')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10), default="project")
    description: Mapped[str] = mapped_column(Text, default="")
    owner_unit_id: Mapped[int | None] = mapped_column(_unit_fk(), default=None, index=True)
    division_code: Mapped[str] = mapped_column(String(15), index=True)
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    status: Mapped[str] = mapped_column(String(12), default="assessing", index=True)
    risk_level: Mapped[str | None] = mapped_column(String(8), default=None, index=True)
    # Set when an approval was refused because of open mitigations: counts the project as stopped.
    blocked_at: Mapped[datetime | None] = mapped_column(default=None)
    approved_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskAssessment(Base):
    """One assessment of a project; the newest one counts."""

    __tablename__ = "risk_assessments"
    __table_args__ = (CheckConstraint("level IN ('low', 'medium', 'high')", name="level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("risk_projects.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(8))
    factors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    conclusion: Mapped[str] = mapped_column(Text, default="")
    assessed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    assessed_by_name: Mapped[str | None] = mapped_column(String(80), default=None)
    assessed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Mitigation(Base):
    """A measure a unit must carry out before a high-risk project may go ahead."""

    __tablename__ = "risk_mitigations"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("risk_projects.id", ondelete="CASCADE"), index=True)
    measure: Mapped[str] = mapped_column(String(500))
    responsible_unit_id: Mapped[int | None] = mapped_column(_unit_fk(), default=None)
    due_date: Mapped[date | None] = mapped_column(default=None)
    done_at: Mapped[datetime | None] = mapped_column(default=None)
    done_note: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
