"""Perception: server-side RPC to devices (device_rpc) and the queue of pushes to devices
(device_downlinks)

Revision ID: 0009_perception_rpc
Revises: 0008_perception_rule_kinds
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0009_perception_rpc"
down_revision: str | None = "0008_perception_rule_kinds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_rpc",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("oneway", sa.Boolean(), nullable=False),
        sa.Column("timeout_ms", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=True),
        sa.Column("expires_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_device_rpc_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_rpc_device_id_devices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_rpc")),
    )
    with op.batch_alter_table("device_rpc", schema=None) as batch_op:
        batch_op.create_index("ix_device_rpc_device_id_id", ["device_id", "id"], unique=False)
        batch_op.create_index("ix_device_rpc_status_expires_at", ["status", "expires_at"], unique=False)

    op.create_table(
        "device_downlinks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=120), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_downlinks_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_downlinks")),
    )


def downgrade() -> None:
    op.drop_table("device_downlinks")
    with op.batch_alter_table("device_rpc", schema=None) as batch_op:
        batch_op.drop_index("ix_device_rpc_status_expires_at")
        batch_op.drop_index("ix_device_rpc_device_id_id")

    op.drop_table("device_rpc")
