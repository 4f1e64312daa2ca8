"""Credit: inspection categories' qualifications and conflicts, random inspection plans, joint visits

Revision ID: 0021_credit_inspections
Revises: 0020_credit_scoring
Create Date: 2026-12-01 18:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityops.core.db

revision: str = "0021_credit_inspections"
down_revision: str | None = "0020_credit_scoring"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = cityops.core.db.UTCDateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def upgrade() -> None:
    t = "credit_inspector_qualifications"
    op.create_table(
        t,
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("certified_on", sa.Date(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        _fk(t, "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "category", name=op.f(f"pk_{t}")),
    )
    op.create_index(op.f(f"ix_{t}_category"), t, ["category"], unique=False)

    t = "credit_inspector_conflicts"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("village_code", sa.String(length=12), nullable=True),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("declared_at", UTC, nullable=False),
        _fk(t, "user_id", "users", "CASCADE"),
        _fk(t, "entity_id", "credit_entities", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
    )
    op.create_index(f"ix_{t}_user_entity", t, ["user_id", "entity_id"], unique=True)
    op.create_index(f"ix_{t}_user_village", t, ["user_id", "village_code"], unique=True)

    t = "credit_inspection_plans"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("ratios", sa.JSON(), nullable=False),
        sa.Column("population", sa.JSON(), nullable=False),
        sa.Column("drawn", sa.JSON(), nullable=False),
        sa.Column("population_digest", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        _fk(t, "org_unit_id", "org_units", "CASCADE"),
        _fk(t, "created_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("year", "category", name=op.f(f"uq_{t}_year")),
    )

    t = "credit_joint_visits"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("scheduled_on", sa.Date(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("recorded_at", UTC, nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        _fk(t, "entity_id", "credit_entities", "CASCADE"),
        _fk(t, "recorded_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("year", "entity_id", name=op.f(f"uq_{t}_year")),
    )
    op.create_index(op.f(f"ix_{t}_entity_id"), t, ["entity_id"], unique=False)
    op.create_index(f"ix_{t}_scheduled_on", t, ["scheduled_on"], unique=False)

    t = "credit_visit_inspectors"
    op.create_table(
        t,
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _fk(t, "visit_id", "credit_joint_visits", "CASCADE"),
        _fk(t, "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("visit_id", "user_id", name=op.f(f"pk_{t}")),
    )
    op.create_index(op.f(f"ix_{t}_user_id"), t, ["user_id"], unique=False)

    t = "credit_inspection_tasks"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("risk_class", sa.String(length=1), nullable=True),
        sa.Column("drawn_as", sa.String(length=1), nullable=False),
        sa.Column("first_inspector_id", sa.Integer(), nullable=False),
        sa.Column("second_inspector_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("recorded_at", UTC, nullable=True),
        _fk(t, "plan_id", "credit_inspection_plans", "CASCADE"),
        _fk(t, "entity_id", "credit_entities", "CASCADE"),
        _fk(t, "org_unit_id", "org_units", "CASCADE"),
        _fk(t, "first_inspector_id", "users", "CASCADE"),
        _fk(t, "second_inspector_id", "users", "CASCADE"),
        _fk(t, "visit_id", "credit_joint_visits", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("plan_id", "entity_id", name=op.f(f"uq_{t}_plan_id")),
    )
    op.create_index(f"ix_{t}_entity_status", t, ["entity_id", "status"], unique=False)
    op.create_index(op.f(f"ix_{t}_visit_id"), t, ["visit_id"], unique=False)

    t = "credit_inspection_item_results"
    op.create_table(
        t,
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=30), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        _fk(t, "task_id", "credit_inspection_tasks", "CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "item", name=op.f(f"pk_{t}")),
    )


def downgrade() -> None:
    for t in (
        "credit_inspection_item_results",
        "credit_inspection_tasks",
        "credit_visit_inspectors",
        "credit_joint_visits",
        "credit_inspection_plans",
        "credit_inspector_conflicts",
        "credit_inspector_qualifications",
    ):
        op.drop_table(t)
