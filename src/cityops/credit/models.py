"""The register of business entities (市场主体) and the departments that supervise them.

An entity is identified by its unified social credit code (GB 32100-2015), which never changes: an
import of the market-regulation register updates the entity of a code it already holds. Its place is
kept at the precision it was known: a point (with its grid), or the division its address names, or
only the registration authority's division from the code."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

KINDS = ("enterprise", "individual", "cooperative", "social_org", "other")
STATUSES = ("active", "revoked", "cancelled", "moved_out")  # 存续（在业）, 吊销, 注销, 迁出
LOCATED_BY = ("point", "address", "code")
# Risk classes after SAMR's classified supervision: A low risk ... D high risk.
RISK_CLASSES = ("A", "B", "C", "D")
# What departments report about an entity (公共信用信息): licences, administrative penalties, the list of
# abnormal operations (经营异常名录), serious dishonesty lists (严重失信主体名单), court enforcement
# (被执行人), the tax credit grade, social-insurance and utility arrears, honours and credit commitments.
RECORD_KINDS = (
    "licence",
    "penalty",
    "abnormal",
    "dishonest",
    "enforcement",
    "tax_grade",
    "arrears",
    "honour",
    "commitment",
)
PENALTY_SEVERITIES = ("minor", "general", "serious")  # 轻微, 一般, 严重 失信行为
# active: in force and public; ended: its publication or validity is over; repaired: ended early by a
# credit repair; revoked: withdrawn by the department that sent it.
RECORD_STATUSES = ("active", "ended", "repaired", "revoked")


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
    # The credit evaluation's latest result (internal: never on a public page); None until evaluated.
    risk_class: Mapped[str | None] = mapped_column(String(1), default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    classified_at: Mapped[datetime | None] = mapped_column(default=None)
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


class CreditRecord(Base):
    """One fact a department's system reported about an entity, kept under the sender's own record id so
    that a retry or a re-import updates it instead of adding it twice."""

    __tablename__ = "credit_records"
    __table_args__ = (
        UniqueConstraint("source", "source_record_id"),
        Index("ix_credit_records_entity_kind", "entity_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("credit_entities.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))
    # The sending system (e.g. "hebi-samr-penalty") and its id for the record.
    source: Mapped[str] = mapped_column(String(40))
    source_record_id: Mapped[str] = mapped_column(String(80))
    # The department responsible for the record, when it is one of ours.
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="SET NULL"), default=None, index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    # Penalties: minor / general / serious.
    severity: Mapped[str | None] = mapped_column(String(8), default=None)
    # Tax credit grade (A, B, M, C, D) of a tax_grade record.
    grade: Mapped[str | None] = mapped_column(String(2), default=None)
    # Fines, arrears, credit lines: in yuan.
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    decided_on: Mapped[date] = mapped_column(Date)
    # A licence's or commitment's validity; a listing's planned end.
    valid_until: Mapped[date | None] = mapped_column(Date, default=None)
    # The last day the record is published (penalties, abnormal operations, dishonesty lists).
    publicity_until: Mapped[date | None] = mapped_column(Date, default=None)
    status: Mapped[str] = mapped_column(String(10), default="active")
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EntityTag(Base):
    """A supervision tag (消防重点单位, 食品经营, ...) on an entity, with where it came from."""

    __tablename__ = "credit_entity_tags"

    entity_id: Mapped[int] = mapped_column(
        ForeignKey("credit_entities.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(30), primary_key=True, index=True)
    # industry, record or manual.
    source: Mapped[str] = mapped_column(String(8), default="industry")
