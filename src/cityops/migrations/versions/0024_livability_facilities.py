"""Livability: facilities of the living circle (category, location, area and area class of green
spaces) and the entrances of green spaces

Revision ID: 0024_livability_facilities
Revises: 0023_warning_board
Create Date: 2026-12-01 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0024_livability_facilities"
down_revision: str | None = "0023_warning_board"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "livability_facilities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source_id", sa.String(length=80), nullable=True),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=True),
        sa.Column("area_class", sa.String(length=20), nullable=True),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_livability_facilities")),
        sa.UniqueConstraint("source_id", name=op.f("uq_livability_facilities_source_id")),
    )
    op.create_index(op.f("ix_livability_facilities_category"), "livability_facilities", ["category"])
    op.create_table(
        "livability_entrances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["livability_facilities.id"],
            name=op.f("fk_livability_entrances_facility_id_livability_facilities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_livability_entrances")),
    )
    op.create_index(op.f("ix_livability_entrances_facility_id"), "livability_entrances", ["facility_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_livability_entrances_facility_id"), table_name="livability_entrances")
    op.drop_table("livability_entrances")
    op.drop_index(op.f("ix_livability_facilities_category"), table_name="livability_facilities")
    op.drop_table("livability_facilities")
