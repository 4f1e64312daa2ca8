"""Credit: the history of risk class changes made by the credit evaluation; a covering index for it

Revision ID: 0020_credit_scoring
Revises: 0019_credit_records
Create Date: 2026-12-01 18:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0020_credit_scoring"
down_revision: str | None = "0019_credit_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("credit_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credit_records_scoring",
            ["entity_id", "kind", "severity", "grade", "status", "decided_on", "publicity_until"],
            unique=False,
        )
    op.create_table(
        "credit_class_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("from_class", sa.String(length=1), nullable=True),
        sa.Column("to_class", sa.String(length=1), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("changed_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["credit_entities.id"],
            name=op.f("fk_credit_class_changes_entity_id_credit_entities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_class_changes")),
    )
    with op.batch_alter_table("credit_class_changes", schema=None) as batch_op:
        batch_op.create_index("ix_credit_class_changes_entity_at", ["entity_id", "changed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("credit_class_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_class_changes_entity_at")
    op.drop_table("credit_class_changes")
    with op.batch_alter_table("credit_records", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_records_scoring")
