"""Chinese full-text search of cases: cases.search_text and its index (FTS5 on SQLite, GIN on PostgreSQL)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cityops.cases import search

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    bind = op.get_bind()
    # Existing cases get their tokens (computed in Python: the tokeniser is not SQL).
    cases = sa.table("cases", sa.column("id", sa.Integer), sa.column("number", sa.String),
                     sa.column("title", sa.String), sa.column("description", sa.Text),
                     sa.column("search_text", sa.Text))
    rows = bind.execute(sa.select(cases.c.id, cases.c.number, cases.c.title, cases.c.description)).all()
    for start in range(0, len(rows), 5000):
        bind.execute(cases.update().where(cases.c.id == sa.bindparam("case_id"))
                     .values(search_text=sa.bindparam("text")),
                     [{"case_id": r.id, "text": search.search_text(r.number, r.title, r.description)}
                      for r in rows[start:start + 5000]])
    statements = {"sqlite": search.SQLITE_DDL, "postgresql": search.POSTGRES_DDL}.get(bind.dialect.name, ())
    for statement in statements:
        op.execute(statement)
    if bind.dialect.name == "sqlite":  # index what is already there
        op.execute(f"INSERT INTO {search.FTS_TABLE}({search.FTS_TABLE}) VALUES ('rebuild')")


def downgrade() -> None:
    bind = op.get_bind()
    statements = {"sqlite": search.SQLITE_DROP, "postgresql": search.POSTGRES_DROP}.get(bind.dialect.name, ())
    for statement in statements:
        op.execute(statement)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("search_text")
