"""Device provisioning: a profile's key and secret with which devices register themselves (ThingsBoard's
POST /api/v1/provision), and whether a device's position awaits a manager's confirmation

Revision ID: 0017_device_provisioning
Revises: 0016_credit_entities
Create Date: 2026-12-10 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0017_device_provisioning"
down_revision: str | None = "0016_credit_entities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_provisioning",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_code", sa.String(length=40), nullable=False),
        sa.Column("provision_key", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("division_code", sa.String(length=15), nullable=False),
        sa.Column("department", sa.String(length=32), nullable=True),
        sa.Column("max_devices", sa.Integer(), nullable=False),
        sa.Column("provisioned", sa.Integer(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_provisioned_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("secret_changed_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_provisioning")),
        sa.UniqueConstraint("profile_code", name=op.f("uq_device_provisioning_profile_code")),
        sa.UniqueConstraint("provision_key", name=op.f("uq_device_provisioning_provision_key")),
    )
    # Batch mode (SQLite alters a table by copying it; adding a column it does in place). Devices
    # registered before keep their positions: confirmed.
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("position_confirmed", sa.Boolean(), nullable=False,
                                      server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("position_confirmed")
    op.drop_table("device_provisioning")
