"""Warnings and the CAP messages that published them.

A warning is identified as CAP identifies messages: by its sender and the identifier of its first
message (`cityops.hebi.<uuid>` for the platform's own). Every message sent or imported for it (Alert,
Update, Cancel) is kept whole, with the time it was sent as the message wrote it, so later messages can
reference it and the history can be exported as it went out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
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
