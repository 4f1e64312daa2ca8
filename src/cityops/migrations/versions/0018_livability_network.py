"""Livability: named walking networks, their nodes and edges (u, v, length in metres, shape when bent)

Revision ID: 0018_livability_network
Revises: 0017_device_provisioning
Create Date: 2026-12-11 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0018_livability_network"
down_revision: str | None = "0017_device_provisioning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "livability_networks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("synthetic", sa.Boolean(), nullable=False),
        sa.Column("crs", sa.String(length=200), nullable=False),
        sa.Column("node_count", sa.Integer(), nullable=False),
        sa.Column("edge_count", sa.Integer(), nullable=False),
        sa.Column("length_km", sa.Float(), nullable=False),
        sa.Column("min_lon", sa.Float(), nullable=False),
        sa.Column("min_lat", sa.Float(), nullable=False),
        sa.Column("max_lon", sa.Float(), nullable=False),
        sa.Column("max_lat", sa.Float(), nullable=False),
        sa.Column("created_at", cityops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_livability_networks")),
        sa.UniqueConstraint("name", name=op.f("uq_livability_networks_name")),
    )
    op.create_table(
        "livability_nodes",
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("osm_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["livability_networks.id"],
            name=op.f("fk_livability_nodes_network_id_livability_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("network_id", "id", name=op.f("pk_livability_nodes")),
    )
    op.create_table(
        "livability_edges",
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("u", sa.Integer(), nullable=False),
        sa.Column("v", sa.Integer(), nullable=False),
        sa.Column("length_m", sa.Float(), nullable=False),
        sa.Column("geometry", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["livability_networks.id"],
            name=op.f("fk_livability_edges_network_id_livability_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("network_id", "id", name=op.f("pk_livability_edges")),
    )


def downgrade() -> None:
    op.drop_table("livability_edges")
    op.drop_table("livability_nodes")
    op.drop_table("livability_networks")
