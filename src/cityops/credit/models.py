"""The register of business entities (市场主体) and the departments that supervise them.

An entity is identified by its unified social credit code (GB 32100-2015), which never changes: an
import of the market-regulation register updates the entity of a code it already holds. Its place is
kept at the precision it was known: a point (with its grid), or the division its address names, or
only the registration authority's division from the code."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

KINDS = ("enterprise", "individual", "cooperative", "social_org", "other")
STATUSES = ("active", "revoked", "cancelled", "moved_out")  # 存续（在业）, 吊销, 注销, 迁出
LOCATED_BY = ("point", "address", "code")


class Entity(Base):
    __tablename__ = "credit_entities"
    # Lists filter by scope (a division prefix) and often by industry section; kind and status have too
    # few values to be worth an index of their own.
    __table_args__ = (Index("ix_credit_entities_section_division", "industry_section", "division_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(12))
    # GB/T 4754-2017: the division (2 digits) and its section (A-T), None when not known.
    industry_code: Mapped[str | None] = mapped_column(String(2), default=None)
    industry_section: Mapped[str | None] = mapped_column(String(1), default=None)
    # Registered capital (注册资本; 资金数额 of an individual business) in units of its currency.
    capital: Mapped[int | None] = mapped_column(BigInteger, default=None)
    capital_currency: Mapped[str] = mapped_column(String(3), default="CNY")
    established_on: Mapped[date | None] = mapped_column(Date, default=None)
    status: Mapped[str] = mapped_column(String(12), default="active")
    address: Mapped[str] = mapped_column(String(300), default="")
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    grid_code: Mapped[str | None] = mapped_column(String(15), default=None)
    village_code: Mapped[str | None] = mapped_column(String(12), default=None)
    # The finest division known (grid, village, township or county): what scopes the entity.
    division_code: Mapped[str] = mapped_column(String(15), index=True)
    located_by: Mapped[str] = mapped_column(String(8), default="code")
    # Personal information: shown masked to anyone without pii.view.
    legal_rep_name: Mapped[str] = mapped_column(String(60), default="")
    legal_rep_id_number: Mapped[str | None] = mapped_column(String(18), default=None)
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EntityDepartment(Base):
    """A department (org unit) that supervises an entity."""

    __tablename__ = "credit_entity_departments"

    entity_id: Mapped[int] = mapped_column(
        ForeignKey("credit_entities.id", ondelete="CASCADE"), primary_key=True
    )
    org_unit_id: Mapped[int] = mapped_column(
        ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True, index=True
    )
