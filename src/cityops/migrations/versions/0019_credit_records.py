"""Credit: records from departments, supervision tags, and each entity's latest risk class and score

Revision ID: 0019_credit_records
Revises: 0018_livability_network
Create Date: 2026-12-01 18:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0019_credit_records"
down_revision: str | None = "0018_livability_network"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("credit_entities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("risk_class", sa.String(length=1), nullable=True))
        batch_op.add_column(sa.Column("score", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("classified_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True)
        )

    op.create_table(
        "credit_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_record_id", sa.String(length=80), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=True),
        sa.Column("grade", sa.String(length=2), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("publicity_until", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["credit_entities.id"],
            name=op.f("fk_credit_records_entity_id_credit_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_credit_records_org_unit_id_org_units"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_records")),
        sa.UniqueConstraint("source", "source_record_id", name=op.f("uq_credit_records_source")),
    )
    with op.batch_alter_table("credit_records", schema=None) as batch_op:
        batch_op.create_index("ix_credit_records_entity_kind", ["entity_id", "kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_credit_records_org_unit_id"), ["org_unit_id"], unique=False)

    op.create_table(
        "credit_entity_tags",
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=30), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["credit_entities.id"],
            name=op.f("fk_credit_entity_tags_entity_id_credit_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entity_id", "tag", name=op.f("pk_credit_entity_tags")),
    )
    with op.batch_alter_table("credit_entity_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credit_entity_tags_tag"), ["tag"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("credit_entity_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_entity_tags_tag"))
    op.drop_table("credit_entity_tags")
    with op.batch_alter_table("credit_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_records_org_unit_id"))
        batch_op.drop_index("ix_credit_records_entity_kind")
    op.drop_table("credit_records")
    with op.batch_alter_table("credit_entities", schema=None) as batch_op:
        batch_op.drop_column("classified_at")
        batch_op.drop_column("score")
        batch_op.drop_column("risk_class")
