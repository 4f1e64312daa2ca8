"""Warning command board: drone patrol routes, satellite scenes and their flagged change areas

Revision ID: 0023_warning_board
Revises: 0022_credit_repair_lending
Create Date: 2026-12-01 18:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0023_warning_board"
down_revision: str | None = "0022_credit_repair_lending"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"), ondelete="SET NULL"
    )


def upgrade() -> None:
    op.create_table(
        "warning_patrol_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.JSON(), nullable=False),
        sa.Column("length_km", sa.Float(), nullable=False),
        sa.Column("schedule", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_warning_patrol_routes_device_id_devices"),
            ondelete="CASCADE",
        ),
        _user_fk("warning_patrol_routes", "created_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_patrol_routes")),
        sa.UniqueConstraint("name", name=op.f("uq_warning_patrol_routes_name")),
    )
    with op.batch_alter_table("warning_patrol_routes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warning_patrol_routes_device_id"), ["device_id"], unique=False)

    op.create_table(
        "warning_scenes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scene_id", sa.String(length=100), nullable=False),
        sa.Column("sensor", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("acquired_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cloud_cover", sa.Float(), nullable=False),
        sa.Column("resolution_m", sa.Float(), nullable=False),
        sa.Column("footprint", sa.JSON(), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        _user_fk("warning_scenes", "created_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_scenes")),
        sa.UniqueConstraint("source", "scene_id", name="uq_warning_scenes_source_scene_id"),
    )
    with op.batch_alter_table("warning_scenes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warning_scenes_acquired_at"), ["acquired_at"], unique=False)

    op.create_table(
        "warning_change_areas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scene_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("area_km2", sa.Float(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("opened_by_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["scene_id"], ["warning_scenes.id"], name=op.f("fk_warning_change_areas_scene_id_warning_scenes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_warning_change_areas_case_id_cases"), ondelete="SET NULL"
        ),
        _user_fk("warning_change_areas", "opened_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_change_areas")),
        sa.UniqueConstraint("case_id", name=op.f("uq_warning_change_areas_case_id")),
    )
    with op.batch_alter_table("warning_change_areas", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warning_change_areas_scene_id"), ["scene_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("warning_change_areas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warning_change_areas_scene_id"))
    op.drop_table("warning_change_areas")
    with op.batch_alter_table("warning_scenes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warning_scenes_acquired_at"))
    op.drop_table("warning_scenes")
    with op.batch_alter_table("warning_patrol_routes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warning_patrol_routes_device_id"))
    op.drop_table("warning_patrol_routes")
