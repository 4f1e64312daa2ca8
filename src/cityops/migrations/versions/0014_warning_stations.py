"""Warning stations: monitoring stations (perception devices with thresholds) and where each stands

Revision ID: 0014_warning_stations
Revises: 0013_warnings
Create Date: 2026-12-09 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0014_warning_stations"
down_revision: str | None = "0013_warnings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "warning_stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("hazard", sa.String(length=24), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("device_name", sa.String(length=120), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("water_body", sa.String(length=40), nullable=True),
        sa.Column("hill", sa.String(length=40), nullable=True),
        sa.Column("villages", sa.JSON(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("confirm_levels", sa.JSON(), nullable=False),
        sa.Column("hold_s", sa.Integer(), nullable=False),
        sa.Column("validity_s", sa.Integer(), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_warning_stations_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_stations")),
        sa.UniqueConstraint("code", name=op.f("uq_warning_stations_code")),
        sa.UniqueConstraint("device_id", name=op.f("uq_warning_stations_device_id")),
    )

    op.create_table(
        "warning_station_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("hazard", sa.String(length=24), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("reading_ts", sa.BigInteger(), nullable=True),
        sa.Column("warning_id", sa.Integer(), nullable=True),
        sa.Column("proposed_level", sa.String(length=8), nullable=True),
        sa.Column("suppressed_level", sa.String(length=8), nullable=True),
        sa.Column("below_since_ts", sa.BigInteger(), nullable=True),
        sa.Column("peak_level", sa.String(length=8), nullable=True),
        sa.Column("problem", sa.String(length=300), nullable=True),
        sa.Column("updated_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["warning_stations.id"],
            name=op.f("fk_warning_station_states_station_id_warning_stations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["warnings.id"],
            name=op.f("fk_warning_station_states_warning_id_warnings"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_station_states")),
        sa.UniqueConstraint("station_id", "hazard", name="uq_warning_station_states_station_id_hazard"),
    )


def downgrade() -> None:
    op.drop_table("warning_station_states")
    op.drop_table("warning_stations")
