"""Cases and their timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

SOURCES = ("web", "open311", "police", "grid_worker", "sensor", "warning", "credit")
# A case still being worked (the final states are closed, rejected and merged: workflow.FINAL_STATES).
OPEN_CONDITION = "status NOT IN ('closed', 'rejected', 'merged')"


def _unit_fk() -> ForeignKey:
    return ForeignKey("org_units.id", ondelete="SET NULL")


def _user_fk() -> ForeignKey:
    return ForeignKey("users.id", ondelete="SET NULL")


class Case(Base):
    """A case. References to people and org units are SET NULL on delete: removing an account or a
    unit never removes the cases it touched (accounts are normally deactivated, not deleted)."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("level IN ('village', 'township', 'county', 'city')", name="level"),
        Index("ix_cases_status_level", "status", "level"),
        # The open cases by deadline, for the inbox's default order over a million cases; its
        # condition is the one repository.OPEN uses, so the planner can prove it applies.
        Index("ix_cases_open_deadline", "deadline_at", "id",
              sqlite_where=text(OPEN_CONDITION), postgresql_where=text(OPEN_CONDITION)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    type_code: Mapped[str] = mapped_column(String(40), index=True)
    category: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Number, title and description as search tokens (cases/search.py), indexed by the database.
    search_text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    level: Mapped[str] = mapped_column(String(10))
    # The grid code of the location (or the village's when no grid matched), so the division scope
    # rule works by prefix.
    division_code: Mapped[str] = mapped_column(String(15), index=True)
    grid_code: Mapped[str | None] = mapped_column(String(15), default=None)
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    org_unit_id: Mapped[int | None] = mapped_column(_unit_fk(), default=None, index=True)
    assignee_id: Mapped[int | None] = mapped_column(_user_fk(), default=None, index=True)
    # Personal information of the reporter: shown masked to anyone without pii.view.
    reporter_name: Mapped[str | None] = mapped_column(String(60), default=None)
    reporter_phone: Mapped[str | None] = mapped_column(String(20), default=None)
    reporter_user_id: Mapped[int | None] = mapped_column(_user_fk(), default=None, index=True)
    source: Mapped[str] = mapped_column(String(16), default="web")
    public: Mapped[bool] = mapped_column(default=False)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    # Deadline of the current level (working time, set by the SLA engine); the clock stops while
    # paused (waiting on the reporter) and the pauses add up in paused_seconds.
    deadline_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    paused_at: Mapped[datetime | None] = mapped_column(default=None)
    paused_seconds: Mapped[int] = mapped_column(default=0)
    # Optimistic locking: every update checks and bumps it, so two people acting at once never lose
    # an update (SQLAlchemy adds "WHERE version = :old" to the UPDATE).
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - read by SQLAlchemy


class CaseEvent(Base):
    """One line of a case's timeline: every action, who did it, and where the case stood after."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(_user_fk(), default=None)
    actor_name: Mapped[str | None] = mapped_column(String(60), default=None)
    from_status: Mapped[str | None] = mapped_column(String(16), default=None)
    to_status: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(10))
    org_unit_id: Mapped[int | None] = mapped_column(_unit_fk(), default=None)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class CaseCounter(Base):
    """The last case number issued per year (HB-2024-000001 ...)."""

    __tablename__ = "case_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(default=0)


class CaseAttachment(Base):
    """A file attached to a case; the bytes live once on disk under their hash (core/files.py)."""

    __tablename__ = "case_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column()
    media_type: Mapped[str] = mapped_column(String(120))
    filename: Mapped[str] = mapped_column(String(200))
    uploaded_by_id: Mapped[int | None] = mapped_column(_user_fk(), default=None)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseWatcher(Base):
    """Someone who asked to be told when a case moves."""

    __tablename__ = "case_watchers"
    __table_args__ = (UniqueConstraint("case_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseFeedback(Base):
    """The reporter's satisfaction with one closing of a case (once per closing: a reopened and
    closed again case may be rated again)."""

    __tablename__ = "case_feedback"
    __table_args__ = (
        UniqueConstraint("case_id", "closed_at"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    # The closing rated: the case's closed_at when the rating was given.
    closed_at: Mapped[datetime] = mapped_column()
    rating: Mapped[int] = mapped_column()
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    # "reporter" (given by the reporter) or "phone" (recorded by staff after a call-back).
    channel: Mapped[str] = mapped_column(String(10), default="reporter")
    recorded_by_id: Mapped[int | None] = mapped_column(_user_fk(), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
