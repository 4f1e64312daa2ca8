"""Meetings of the four levels, their agenda items and the decision taken on each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

OUTCOMES = ("note", "new_case", "assign")


class Meeting(Base):
    """One meeting of a governance centre. Its agenda is drawn from the cases that arrived at its level
    in its division since the centre's previous meeting."""

    __tablename__ = "governance_meetings"
    __table_args__ = (
        CheckConstraint("level IN ('village', 'township', 'county', 'city')", name="level"),
        CheckConstraint("status IN ('planned', 'held')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[str] = mapped_column(String(10))
    division_code: Mapped[str] = mapped_column(String(12), index=True)
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="SET NULL"), default=None, index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    held_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(8), default="planned")
    attendees: Mapped[list[Any]] = mapped_column(JSON, default=list)
    minutes: Mapped[str] = mapped_column(Text, default="")
    # Start of the window the agenda was drawn from (the previous meeting), kept to show it.
    agenda_since: Mapped[datetime | None] = mapped_column(default=None)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgendaItem(Base):
    """A case (or a free topic) on a meeting's agenda, with the decision and what it became: a new case
    or an action on the agenda case (assigned to a unit)."""

    __tablename__ = "governance_meeting_items"
    __table_args__ = (UniqueConstraint("meeting_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("governance_meetings.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), default=None, index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str | None] = mapped_column(Text, default=None)
    outcome: Mapped[str | None] = mapped_column(String(10), default=None)
    result_case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="SET NULL"), default=None
    )
    result_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="SET NULL"), default=None
    )
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by_name: Mapped[str | None] = mapped_column(String(80), default=None)
