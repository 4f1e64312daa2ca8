"""Duty rosters of the governance centres and the village contacts (一村一警一法律顾问一民调组织).
The centres themselves are org units (core.auth.models.OrgUnit, kind "centre")."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

SHIFTS = ("day", "night")
CONTACT_ROLES = ("police", "legal", "mediation")


class DutyEntry(Base):
    """One person on duty at a centre on a day and shift (值班表). The phone is personal information."""

    __tablename__ = "governance_duty_entries"
    __table_args__ = (Index("ix_governance_duty_entries_unit_date", "org_unit_id", "duty_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    # The centre's division, for the scope rule by prefix.
    division_code: Mapped[str] = mapped_column(String(15), index=True)
    duty_date: Mapped[date] = mapped_column(index=True)
    shift: Mapped[str] = mapped_column(String(8))
    person_name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VillageContact(Base):
    """The village's police officer, legal adviser or mediation organisation: one per role."""

    __tablename__ = "governance_village_contacts"
    __table_args__ = (UniqueConstraint("village_code", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    role: Mapped[str] = mapped_column(String(10))
    # Officer, lawyer or the mediation committee's contact person.
    name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    # Police station, law firm, or the mediation organisation itself.
    organisation: Mapped[str] = mapped_column(String(120))
    synthetic: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
