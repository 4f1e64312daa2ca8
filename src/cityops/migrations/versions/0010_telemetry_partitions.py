"""Telemetry partitions: on PostgreSQL telemetry_raw becomes partitioned by day (RANGE on ts) with a
DEFAULT partition, keeping its rows; SQLite is unchanged

Revision ID: 0010_telemetry_partitions
Revises: 0009_perception_rpc
Create Date: 2026-12-10 12:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from cityops.perception import partitions

revision: str = "0010_telemetry_partitions"
down_revision: str | None = "0009_perception_rpc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and not partitions.is_partitioned(bind):
        partitions.partition_table(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and partitions.is_partitioned(bind):
        partitions.unpartition_table(bind)
