"""Disputes (矛盾纠纷) and their parties and mediation sessions. Each dispute is a case of type
"dispute": the case carries routing, deadlines, escalation and the timeline the figures read."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

STATUSES = ("mediating", "referred", "agreed")
SESSION_OUTCOMES = ("agreement", "continue", "referred")


class Dispute(Base):
    __tablename__ = "governance_disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    # The case's division code at intake (grid or village code), for the scope rule by prefix.
    division_code: Mapped[str] = mapped_column(String(15), index=True)
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    category: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    place: Mapped[str] = mapped_column(String(200), default="")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10), default="mediating", index=True)
    agreement: Mapped[str | None] = mapped_column(Text, default=None)
    referral_level: Mapped[str | None] = mapped_column(String(10), default=None)
    referral_unit_code: Mapped[str | None] = mapped_column(String(40), default=None)
    referral_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    outcome_at: Mapped[datetime | None] = mapped_column(default=None)
    # Demo records are labelled: their people are made up.
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class DisputeParty(Base):
    """A side of a dispute. Name, phone, ID number and address are personal information: masked for
    viewers without pii.view; unmasked reads are audited."""

    __tablename__ = "governance_dispute_parties"
    __table_args__ = (Index("ix_governance_dispute_parties_name_phone", "name", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("governance_disputes.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    id_number: Mapped[str | None] = mapped_column(String(18), default=None, index=True)
    address: Mapped[str | None] = mapped_column(String(200), default=None)


class MediationSession(Base):
    __tablename__ = "governance_mediation_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("governance_disputes.id", ondelete="CASCADE"), index=True
    )
    held_on: Mapped[date]
    mediator: Mapped[str] = mapped_column(String(60))
    place: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(10))
    notes: Mapped[str] = mapped_column(Text, default="")
    # The case level when the session was held (village, township ...).
    level: Mapped[str] = mapped_column(String(10))
    recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
