"""Warning response: the grids and villages a warning covers, the people told of each message, the
emergency plan's tasks (cases) and evacuation figures

Revision ID: 0015_warning_response
Revises: 0014_warning_stations
Create Date: 2026-12-09 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0015_warning_response"
down_revision: str | None = "0014_warning_stations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _warning_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["warning_id"], ["warnings.id"], name=op.f(f"fk_{table}_warning_id_warnings"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "warning_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("warning_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("added_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        _warning_fk("warning_targets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_targets")),
        sa.UniqueConstraint("warning_id", "code", name="uq_warning_targets_warning_id_code"),
    )

    op.create_table(
        "warning_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("warning_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("target_code", sa.String(length=15), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        _warning_fk("warning_notices"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["warning_messages.id"],
            name=op.f("fk_warning_notices_message_id_warning_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_warning_notices_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_notices")),
        sa.UniqueConstraint("message_id", "user_id", name="uq_warning_notices_message_id_user_id"),
    )
    with op.batch_alter_table("warning_notices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_warning_notices_warning_id_message_id", ["warning_id", "message_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_warning_notices_user_id"), ["user_id"], unique=False)

    op.create_table(
        "warning_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("warning_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=81), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("target_code", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        _warning_fk("warning_tasks"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_warning_tasks_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["warning_messages.id"],
            name=op.f("fk_warning_tasks_message_id_warning_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_tasks")),
        sa.UniqueConstraint(
            "warning_id", "item", "target_code", name="uq_warning_tasks_warning_id_item_target_code"
        ),
    )
    with op.batch_alter_table("warning_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warning_tasks_case_id"), ["case_id"], unique=False)

    op.create_table(
        "warning_evacuations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("warning_id", sa.Integer(), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("evacuated", sa.Integer(), nullable=False),
        sa.Column("sheltered", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("reported_by_id", sa.Integer(), nullable=True),
        sa.Column("reported_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        _warning_fk("warning_evacuations"),
        sa.ForeignKeyConstraint(
            ["reported_by_id"],
            ["users.id"],
            name=op.f("fk_warning_evacuations_reported_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_evacuations")),
    )
    with op.batch_alter_table("warning_evacuations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_warning_evacuations_warning_id_village_code",
            ["warning_id", "village_code", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("warning_evacuations", schema=None) as batch_op:
        batch_op.drop_index("ix_warning_evacuations_warning_id_village_code")
    op.drop_table("warning_evacuations")
    with op.batch_alter_table("warning_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warning_tasks_case_id"))
    op.drop_table("warning_tasks")
    with op.batch_alter_table("warning_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warning_notices_user_id"))
        batch_op.drop_index("ix_warning_notices_warning_id_message_id")
    op.drop_table("warning_notices")
    op.drop_table("warning_targets")
