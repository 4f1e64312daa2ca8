"""Perception rule kinds: the value of a rule's newest point, for rates of change across batches

Revision ID: 0008_perception_rule_kinds
Revises: 0007
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_perception_rule_kinds"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite alters a table by copying it.
    with op.batch_alter_table("rule_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_value", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rule_states", schema=None) as batch_op:
        batch_op.drop_column("last_value")
