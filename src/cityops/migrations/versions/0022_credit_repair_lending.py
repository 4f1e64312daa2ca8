"""Credit repair (the four documents of a penalty and their serving, repair applications, messages to
entities, cross-region exchange partners and receipts) and credit lending (banks, loan products, report
authorisations, loan applications)

Revision ID: 0022_credit_repair_lending
Revises: 0021_credit_inspections
Create Date: 2026-12-01 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0022_credit_repair_lending"
down_revision: str | None = "0021_credit_inspections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credit_exchange_partners",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_credit_exchange_partners")),
    )
    op.create_table(
        "credit_banks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_credit_banks_org_unit_id_org_units"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_banks")),
        sa.UniqueConstraint("code", name=op.f("uq_credit_banks_code")),
    )
    op.create_table(
        "credit_entity_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("addressed_to", sa.String(length=400), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["credit_entities.id"],
            name=op.f("fk_credit_entity_messages_entity_id_credit_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["credit_records.id"],
            name=op.f("fk_credit_entity_messages_record_id_credit_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_entity_messages")),
        sa.UniqueConstraint("record_id", "kind", name=op.f("uq_credit_entity_messages_record_id")),
    )
    with op.batch_alter_table("credit_entity_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credit_entity_messages_entity_id"), ["entity_id"], unique=False)

    op.create_table(
        "credit_exchange_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner", sa.String(length=40), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["credit_records.id"],
            name=op.f("fk_credit_exchange_receipts_record_id_credit_records"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_exchange_receipts")),
        sa.UniqueConstraint("partner", "nonce", name=op.f("uq_credit_exchange_receipts_partner")),
    )
    op.create_table(
        "credit_loan_products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("max_amount", sa.BigInteger(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("risk_classes", sa.JSON(), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("divisions", sa.JSON(), nullable=False),
        sa.Column("min_years", sa.Integer(), nullable=False),
        sa.Column("tax_grades", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bank_id"],
            ["credit_banks.id"],
            name=op.f("fk_credit_loan_products_bank_id_credit_banks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_loan_products")),
    )
    with op.batch_alter_table("credit_loan_products", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credit_loan_products_bank_id"), ["bank_id"], unique=False)

    op.create_table(
        "credit_penalty_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=14), nullable=False),
        sa.Column("filename", sa.String(length=120), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["credit_records.id"],
            name=op.f("fk_credit_penalty_documents_record_id_credit_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_penalty_documents")),
        sa.UniqueConstraint("record_id", "kind", name=op.f("uq_credit_penalty_documents_record_id")),
    )
    op.create_table(
        "credit_penalty_servings",
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("served_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("served_to", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("served_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["credit_records.id"],
            name=op.f("fk_credit_penalty_servings_record_id_credit_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["served_by_id"],
            ["users.id"],
            name=op.f("fk_credit_penalty_servings_served_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_credit_penalty_servings")),
    )
    op.create_table(
        "credit_report_authorisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=True),
        sa.Column("granted_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("granted_by_id", sa.Integer(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bank_id"],
            ["credit_banks.id"],
            name=op.f("fk_credit_report_authorisations_bank_id_credit_banks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["credit_entities.id"],
            name=op.f("fk_credit_report_authorisations_entity_id_credit_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["granted_by_id"],
            ["users.id"],
            name=op.f("fk_credit_report_authorisations_granted_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_report_authorisations")),
    )
    with op.batch_alter_table("credit_report_authorisations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credit_report_authorisations_entity", ["entity_id", "bank_id"], unique=False
        )

    op.create_table(
        "credit_loan_applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("credit_line", sa.BigInteger(), nullable=True),
        sa.Column("loan_amount", sa.BigInteger(), nullable=True),
        sa.Column("refusal_reason", sa.String(length=500), nullable=True),
        sa.Column("submitted_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("issued_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_credit_loan_applications_decided_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["credit_entities.id"],
            name=op.f("fk_credit_loan_applications_entity_id_credit_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["credit_loan_products.id"],
            name=op.f("fk_credit_loan_applications_product_id_credit_loan_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_loan_applications")),
    )
    with op.batch_alter_table("credit_loan_applications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credit_loan_applications_entity_id"), ["entity_id"], unique=False
        )
        batch_op.create_index(
            "ix_credit_loan_applications_product_status", ["product_id", "status"], unique=False
        )

    op.create_table(
        "credit_repair_applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("deadline_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("org_unit_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("corrected", sa.Boolean(), nullable=False),
        sa.Column("obligations_fulfilled", sa.Boolean(), nullable=False),
        sa.Column("fine_paid_on", sa.Date(), nullable=True),
        sa.Column("commitment_record_id", sa.Integer(), nullable=True),
        sa.Column("statement", sa.String(length=2000), nullable=False),
        sa.Column("missing", sa.JSON(), nullable=False),
        sa.Column("refusal_reason", sa.String(length=500), nullable=True),
        sa.Column("applicant_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["applicant_id"],
            ["users.id"],
            name=op.f("fk_credit_repair_applications_applicant_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_credit_repair_applications_case_id_cases"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["commitment_record_id"],
            ["credit_records.id"],
            name=op.f("fk_credit_repair_applications_commitment_record_id_credit_records"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_credit_repair_applications_decided_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["credit_entities.id"],
            name=op.f("fk_credit_repair_applications_entity_id_credit_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_credit_repair_applications_org_unit_id_org_units"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["credit_records.id"],
            name=op.f("fk_credit_repair_applications_record_id_credit_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_repair_applications")),
    )
    with op.batch_alter_table("credit_repair_applications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credit_repair_applications_deadline_at"), ["deadline_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_credit_repair_applications_entity_id"), ["entity_id"], unique=False
        )
        batch_op.create_index("ix_credit_repair_applications_record", ["record_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("credit_repair_applications", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_repair_applications_record")
        batch_op.drop_index(batch_op.f("ix_credit_repair_applications_entity_id"))
        batch_op.drop_index(batch_op.f("ix_credit_repair_applications_deadline_at"))

    op.drop_table("credit_repair_applications")
    with op.batch_alter_table("credit_loan_applications", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_loan_applications_product_status")
        batch_op.drop_index(batch_op.f("ix_credit_loan_applications_entity_id"))

    op.drop_table("credit_loan_applications")
    with op.batch_alter_table("credit_report_authorisations", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_report_authorisations_entity")

    op.drop_table("credit_report_authorisations")
    op.drop_table("credit_penalty_servings")
    op.drop_table("credit_penalty_documents")
    with op.batch_alter_table("credit_loan_products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_loan_products_bank_id"))

    op.drop_table("credit_loan_products")
    op.drop_table("credit_exchange_receipts")
    with op.batch_alter_table("credit_entity_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_entity_messages_entity_id"))

    op.drop_table("credit_entity_messages")
    op.drop_table("credit_banks")
    op.drop_table("credit_exchange_partners")
