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


class ClassChange(Base):
    """A change of an entity's risk class by the credit evaluation (the first class too, from None), with
    the score and a summary of what moved it: the history the inspector view shows."""

    __tablename__ = "credit_class_changes"
    __table_args__ = (Index("ix_credit_class_changes_entity_at", "entity_id", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("credit_entities.id", ondelete="CASCADE"))
    from_class: Mapped[str | None] = mapped_column(String(1), default=None)
    to_class: Mapped[str] = mapped_column(String(1))
    score: Mapped[float] = mapped_column(Float)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Points by record kind, e.g. "penalty -10.0; honour +5.0" (English keys: the page translates them).
    reason: Mapped[str] = mapped_column(String(300), default="")


# --- credit repair (credit/repair.py) ---------------------------------------------------------------

# The four documents served together with a penalty (四书同达): the penalty decision, the credit-repair
# notice, the credit commitment letter (a template the entity fills in) and the compliance guidance.
DOCUMENT_KINDS = ("decision", "repair_notice", "commitment", "guidance")
SERVING_CHANNELS = ("in_person", "mail", "electronic")  # 直接送达, 邮寄送达, 电子送达
# submitted: waiting to be examined; accepted: complete, being examined; refused: with its reason
# (missing materials named); repaired: granted, the penalty's publication ended.
REPAIR_STATUSES = ("submitted", "accepted", "refused", "repaired")


class PenaltyDocument(Base):
    """One of the four documents of a penalty, stored by core/files under its hash."""

    __tablename__ = "credit_penalty_documents"
    __table_args__ = (UniqueConstraint("record_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("credit_records.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(14))
    filename: Mapped[str] = mapped_column(String(120))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    media_type: Mapped[str] = mapped_column(String(40), default="application/pdf")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PenaltyServing(Base):
    """The serving of a penalty's four documents together: when, to whom, how and by whom."""

    __tablename__ = "credit_penalty_servings"

    record_id: Mapped[int] = mapped_column(
        ForeignKey("credit_records.id", ondelete="CASCADE"), primary_key=True
    )
    served_at: Mapped[datetime]
    served_to: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(12))
    served_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class RepairApplication(Base):
    """An entity's application to repair the credit of one penalty, worked as a credit_repair case."""

    __tablename__ = "credit_repair_applications"
    __table_args__ = (Index("ix_credit_repair_applications_record", "record_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("credit_records.id", ondelete="CASCADE"))
    entity_id: Mapped[int] = mapped_column(ForeignKey("credit_entities.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), default=None)
    # The case's deadline and unit, as the case engine set them (for the staff reminders).
    deadline_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(10), default="submitted")
    # The conditions of the rules: breach corrected, obligations fulfilled (fine paid on a date), and the
    # commitment record (kind commitment) the entity published.
    corrected: Mapped[bool] = mapped_column(default=False)
    obligations_fulfilled: Mapped[bool] = mapped_column(default=False)
    fine_paid_on: Mapped[date | None] = mapped_column(Date, default=None)
    commitment_record_id: Mapped[int | None] = mapped_column(
        ForeignKey("credit_records.id", ondelete="SET NULL"), default=None
    )
    statement: Mapped[str] = mapped_column(String(2000), default="")
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    refusal_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    applicant_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    # When staff were reminded of the case's coming deadline (once per application).
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)
    synthetic: Mapped[bool] = mapped_column(default=False)


class EntityMessage(Base):
    """A message to an entity's contact (its legal representative at its registered address): the
    outbox a text-message or mail gateway sends from. Unique per record and kind, so a reminder job run
    twice writes one."""

    __tablename__ = "credit_entity_messages"
    __table_args__ = (UniqueConstraint("record_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("credit_entities.id", ondelete="CASCADE"), index=True)
    record_id: Mapped[int | None] = mapped_column(
        ForeignKey("credit_records.id", ondelete="CASCADE"), default=None
    )
    kind: Mapped[str] = mapped_column(String(20))
    addressed_to: Mapped[str] = mapped_column(String(400))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class ExchangePartner(Base):
    """Another region's credit platform that repair results are exchanged with. The HMAC key of each
    partner is derived from the installation's secret key and its code (never stored)."""

    __tablename__ = "credit_exchange_partners"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExchangeReceipt(Base):
    """A partner's signed result taken in, kept by its nonce so the same message is never applied twice."""

    __tablename__ = "credit_exchange_receipts"
    __table_args__ = (UniqueConstraint("partner", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner: Mapped[str] = mapped_column(String(40))
    nonce: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(
        ForeignKey("credit_records.id", ondelete="SET NULL"), default=None
    )
    payload: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- inspections (credit/inspections.py) ------------------------------------------------------------

# pending: drawn, not yet inspected; done: its items recorded in the joint visit.
TASK_STATUSES = ("pending", "done")
ITEM_RESULTS = ("compliant", "non_compliant", "not_applicable")
TASK_RESULTS = ("compliant", "non_compliant")
# own: the inspector's own entity (or one they work for); relative: a relative's entity; former_employer;
# home_village: the inspector lives in (or comes from) the village, so none of its entities; other.
CONFLICT_RELATIONS = ("own", "relative", "former_employer", "home_village", "other")
VISIT_STATUSES = ("scheduled", "unscheduled", "done")


class InspectorQualification(Base):
    """An inspector's qualification (执法资格) for one inspection category."""

    __tablename__ = "credit_inspector_qualifications"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(30), primary_key=True, index=True)
    certified_on: Mapped[date | None] = mapped_column(Date, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InspectorConflict(Base):
    """A declared conflict of interest: the inspector is never drawn for the entity, or for any entity of
    the village (relation home_village)."""

    __tablename__ = "credit_inspector_conflicts"
    __table_args__ = (
        Index("ix_credit_inspector_conflicts_user_entity", "user_id", "entity_id", unique=True),
        Index("ix_credit_inspector_conflicts_user_village", "user_id", "village_code", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    entity_id: Mapped[int | None] = mapped_column(
        ForeignKey("credit_entities.id", ondelete="CASCADE"), default=None
    )
    village_code: Mapped[str | None] = mapped_column(String(12), default=None)
    relation: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(200), default="")
    declared_at: Mapped[datetime] = mapped_column(default=utcnow)


class InspectionPlan(Base):
    """A category's random inspection plan for a year: the seed its draw used and what it drew, by class,
    so that anyone can repeat the draw."""

    __tablename__ = "credit_inspection_plans"
    __table_args__ = (UniqueConstraint("year", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int]
    category: Mapped[str] = mapped_column(String(30))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    seed: Mapped[int] = mapped_column(BigInteger)
    # {"A": 0.03, ...}: the share of each class drawn; population and drawn: entities by class drawn as
    # (an unclassified entity counts under the class it is drawn as, and under "unclassified" too).
    ratios: Mapped[dict[str, float]] = mapped_column(JSON)
    population: Mapped[dict[str, int]] = mapped_column(JSON)
    drawn: Mapped[dict[str, int]] = mapped_column(JSON)
    # sha256 of the population's entity ids in draw order: a repeated draw proves it used the same list.
    population_digest: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JointVisit(Base):
    """One visit to an entity that does every department's drawn inspection of it in a year
    (进一次门, 查多项事)."""

    __tablename__ = "credit_joint_visits"
    __table_args__ = (
        UniqueConstraint("year", "entity_id"),
        Index("ix_credit_joint_visits_scheduled_on", "scheduled_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int]
    entity_id: Mapped[int] = mapped_column(ForeignKey("credit_entities.id", ondelete="CASCADE"), index=True)
    # None when no working day of the year had room for the whole team.
    scheduled_on: Mapped[date | None] = mapped_column(Date, default=None)
    # The position on the year's route (township by township, nearest neighbour first).
    sequence: Mapped[int]
    status: Mapped[str] = mapped_column(String(12), default="scheduled")
    recorded_at: Mapped[datetime | None] = mapped_column(default=None)
    recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class VisitInspector(Base):
    """A member of a joint visit's team."""

    __tablename__ = "credit_visit_inspectors"

    visit_id: Mapped[int] = mapped_column(
        ForeignKey("credit_joint_visits.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class InspectionTask(Base):
    """An entity drawn by a category's plan, with the two inspectors drawn for it; done in a joint visit."""

    __tablename__ = "credit_inspection_tasks"
    __table_args__ = (
        UniqueConstraint("plan_id", "entity_id"),
        Index("ix_credit_inspection_tasks_entity_status", "entity_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("credit_inspection_plans.id", ondelete="CASCADE"))
    entity_id: Mapped[int] = mapped_column(ForeignKey("credit_entities.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(30))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    # The entity's class when drawn (None: unclassified) and the class it was drawn as.
    risk_class: Mapped[str | None] = mapped_column(String(1), default=None)
    drawn_as: Mapped[str] = mapped_column(String(1))
    first_inspector_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    second_inspector_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    visit_id: Mapped[int] = mapped_column(
        ForeignKey("credit_joint_visits.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(8), default="pending")
    result: Mapped[str | None] = mapped_column(String(16), default=None)
    recorded_at: Mapped[datetime | None] = mapped_column(default=None)


class InspectionItemResult(Base):
    """The finding of one check item of a task."""

    __tablename__ = "credit_inspection_item_results"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("credit_inspection_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    item: Mapped[str] = mapped_column(String(30), primary_key=True)
    result: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(500), default="")


# --- credit lending, 信易贷 (credit/lending.py) ---------------------------------------------------

LOAN_STATUSES = ("submitted", "approved", "refused", "issued")


class Bank(Base):
    """A bank on the lending platform; the staff of its org unit (permission lending.manage) publish its
    products and decide its applications."""

    __tablename__ = "credit_banks"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    org_unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_units.id", ondelete="SET NULL"), default=None
    )
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoanProduct(Base):
    """A loan product and who it is for: empty lists allow any value."""

    __tablename__ = "credit_loan_products"

    id: Mapped[int] = mapped_column(primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("credit_banks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    max_amount: Mapped[int] = mapped_column(BigInteger)  # yuan
    rate: Mapped[float] = mapped_column(Float)  # annual interest, per cent
    term_months: Mapped[int]
    risk_classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    sections: Mapped[list[str]] = mapped_column(JSON, default=list)  # GB/T 4754 sections (A-T)
    divisions: Mapped[list[str]] = mapped_column(JSON, default=list)  # GB/T 4754 divisions (01-97)
    min_years: Mapped[int] = mapped_column(default=0)
    tax_grades: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    synthetic: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportAuthorisation(Base):
    """An entity's consent to share its credit report with one bank (or every bank: bank_id None) until
    it expires or is revoked. Without one a bank sees nothing of the entity."""

    __tablename__ = "credit_report_authorisations"
    __table_args__ = (Index("ix_credit_report_authorisations_entity", "entity_id", "bank_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("credit_entities.id", ondelete="CASCADE"))
    bank_id: Mapped[int | None] = mapped_column(
        ForeignKey("credit_banks.id", ondelete="CASCADE"), default=None
    )
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    granted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    synthetic: Mapped[bool] = mapped_column(default=False)


class LoanApplication(Base):
    """An entity's application for a product and the bank's decision: the credit line approved, the
    loan issued (at most the line), or the refusal with its reason."""

    __tablename__ = "credit_loan_applications"
    __table_args__ = (Index("ix_credit_loan_applications_product_status", "product_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("credit_entities.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("credit_loan_products.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger)  # asked for, yuan
    status: Mapped[str] = mapped_column(String(10), default="submitted")
    credit_line: Mapped[int | None] = mapped_column(BigInteger, default=None)
    loan_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    refusal_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    issued_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    synthetic: Mapped[bool] = mapped_column(default=False)


# The recompute reads every record's entity, kind, severity, grade, status and dates (two million rows):
# this covering index answers that scan without reading the records' wide rows.
Index(
    "ix_credit_records_scoring",
    CreditRecord.entity_id,
    CreditRecord.kind,
    CreditRecord.severity,
    CreditRecord.grade,
    CreditRecord.status,
    CreditRecord.decided_on,
    CreditRecord.publicity_until,
)
