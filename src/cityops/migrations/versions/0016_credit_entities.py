"""Credit: the register of business entities and the departments that supervise them

Revision ID: 0016_credit_entities
Revises: 0015_warning_response
Create Date: 2026-12-01 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0016_credit_entities"
down_revision: str | None = "0015_warning_response"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credit_entities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("industry_code", sa.String(length=2), nullable=True),
        sa.Column("industry_section", sa.String(length=1), nullable=True),
        sa.Column("capital", sa.BigInteger(), nullable=True),
        sa.Column("capital_currency", sa.String(length=3), nullable=False),
        sa.Column("established_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("village_code", sa.String(length=12), nullable=True),
        sa.Column("division_code", sa.String(length=15), nullable=False),
        sa.Column("located_by", sa.String(length=8), nullable=False),
        sa.Column("legal_rep_name", sa.String(length=60), nullable=False),
        sa.Column("legal_rep_id_number", sa.String(length=18), nullable=True),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_entities")),
        sa.UniqueConstraint("code", name=op.f("uq_credit_entities_code")),
    )
    with op.batch_alter_table("credit_entities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credit_entities_division_code"), ["division_code"], unique=False)
        batch_op.create_index(
            "ix_credit_entities_section_division", ["industry_section", "division_code"], unique=False
        )

    op.create_table(
        "credit_entity_departments",
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["credit_entities.id"],
            name=op.f("fk_credit_entity_departments_entity_id_credit_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_credit_entity_departments_org_unit_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entity_id", "org_unit_id", name=op.f("pk_credit_entity_departments")),
    )
    with op.batch_alter_table("credit_entity_departments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credit_entity_departments_org_unit_id"), ["org_unit_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("credit_entity_departments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credit_entity_departments_org_unit_id"))
    op.drop_table("credit_entity_departments")
    with op.batch_alter_table("credit_entities", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_entities_section_division")
        batch_op.drop_index(batch_op.f("ix_credit_entities_division_code"))
    op.drop_table("credit_entities")
