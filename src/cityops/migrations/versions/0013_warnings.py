"""Warnings: natural-disaster warnings and the CAP 1.2 messages that published them

Revision ID: 0013_warnings
Revises: 0012_device_gateways
Create Date: 2026-12-08 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0013_warnings"
down_revision: str | None = "0012_device_gateways"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "warnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("identifier", sa.String(length=200), nullable=False),
        sa.Column("hazard", sa.String(length=24), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("source_detail", sa.String(length=200), nullable=False),
        sa.Column("sender_name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=12), nullable=False),
        sa.Column("urgency", sa.String(length=12), nullable=False),
        sa.Column("certainty", sa.String(length=12), nullable=False),
        sa.Column("headline", sa.String(length=300), nullable=False),
        sa.Column("headline_en", sa.String(length=300), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=True),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("instruction_en", sa.Text(), nullable=True),
        sa.Column("area_desc", sa.String(length=500), nullable=False),
        sa.Column("division_codes", sa.JSON(), nullable=False),
        sa.Column("area", sa.JSON(), nullable=True),
        sa.Column("onset", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", cityops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_warnings_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warnings")),
        sa.UniqueConstraint("sender", "identifier", name="uq_warnings_sender_identifier"),
    )
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warnings_hazard"), ["hazard"], unique=False)
        batch_op.create_index("ix_warnings_status_expires", ["status", "expires"], unique=False)

    op.create_table(
        "warning_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("warning_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("msg_type", sa.String(length=8), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("identifier", sa.String(length=200), nullable=False),
        sa.Column("sent", sa.String(length=32), nullable=False),
        sa.Column("sent_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_warning_messages_actor_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["warnings.id"],
            name=op.f("fk_warning_messages_warning_id_warnings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_messages")),
        sa.UniqueConstraint("sender", "identifier", name="uq_warning_messages_sender_identifier"),
    )
    with op.batch_alter_table("warning_messages", schema=None) as batch_op:
        batch_op.create_index("ix_warning_messages_warning_id_id", ["warning_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("warning_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_warning_messages_warning_id_id")
    op.drop_table("warning_messages")
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_index("ix_warnings_status_expires")
        batch_op.drop_index(batch_op.f("ix_warnings_hazard"))
    op.drop_table("warnings")
