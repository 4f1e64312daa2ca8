"""ThingsBoard's gateway API: a device may be connected behind a gateway device

Revision ID: 0012_device_gateways
Revises: 0011_alarm_rule_sets
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_device_gateways"
down_revision: str | None = "0011_alarm_rule_sets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite alters a table by copying it.
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gateway_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_devices_gateway_id"), ["gateway_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_devices_gateway_id_devices"),
            "devices",
            ["gateway_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_devices_gateway_id_devices"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_devices_gateway_id"))
        batch_op.drop_column("gateway_id")
