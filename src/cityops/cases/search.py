"""Chinese full-text search of cases: overlapping character pairs, indexed by the database.

Chinese has no spaces, and most searches are two-character words (垃圾, 噪声, 纠纷) that a trigram
index (SQLite FTS5 trigram, pg_trgm) cannot look up. So each case keeps `search_text`: its number,
title and description as space-separated tokens, a pair for every two neighbouring Chinese
characters and a lower-case word for every run of letters and digits. A query is tokenised the
same way and must match its tokens in a row (a phrase), which is exactly "contains the text".

The index is the database's own: an FTS5 table kept by triggers on SQLite, a GIN index over
to_tsvector('simple', search_text) on PostgreSQL; `matches` picks the one of the session's dialect.
A one-character query has no pair to look up and falls back to a scan (LIKE). The SQLite triggers
belong to the cases table: a migration that rebuilds that table must run SQLITE_DDL again.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    event,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from cityops.cases.models import Case
from cityops.cases.repository import escape_like
from cityops.core.db import Base

# A run of Chinese characters (CJK unified ideographs with extension A and compatibility ideographs),
# or a run of letters and digits.
RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[0-9A-Za-z]+")
FTS_TABLE = "cases_fts"


def tokens(value: str) -> list[str]:
    out: list[str] = []
    for run in RUN.findall(value):
        if run.isascii():
            out.append(run.lower())
        elif len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return out


def search_text(*parts: str | None) -> str:
    """What a case is indexed under (kept in cases.search_text)."""
    return " ".join(tokens(" ".join(p for p in parts if p)))


def phrases(query: str) -> list[list[str]]:
    """One phrase per word of the query ("垃圾 东门" -> [["垃圾"], ["东门"]])."""
    return [found for word in query.split() if (found := tokens(word))]


def matches(session: Session, query: str) -> ColumnElement[bool]:
    """A condition on Case: every word of `query` occurs in the number, title or description."""
    words = phrases(query)
    needs_scan = not words or any(len(p) == 1 and len(p[0]) == 1 for p in words)
    if needs_scan:  # single characters and punctuation-only queries: no pair to look up
        pattern = f"%{escape_like(query.strip())}%"
        return or_(Case.title.like(pattern, escape="\\"), Case.description.like(pattern, escape="\\"),
                   Case.number.like(pattern, escape="\\"))
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        expression = " AND ".join('"' + " ".join(p) + '"' for p in words)
        hits: Select[Any] = select(literal_column("rowid")).select_from(text(FTS_TABLE)).where(
            text(f"{FTS_TABLE} MATCH :fts").bindparams(fts=expression))
        return Case.id.in_(hits)
    if dialect == "postgresql":
        vector = func.to_tsvector(literal_column("'simple'"), Case.search_text)
        return and_(*(vector.op("@@")(func.phraseto_tsquery(literal_column("'simple'"), " ".join(p)))
                      for p in words))
    return Case.search_text.like("%" + " ".join(words[0]) + "%")


# The index lives outside the models' metadata (Alembic must not try to drop it): created with the
# cases table by create_all and by migration 0004 from these statements.
_FORGET = (f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, search_text) "
           "VALUES ('delete', old.id, old.search_text);")
SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(search_text, content='cases', content_rowid='id')",
    f"CREATE TRIGGER {FTS_TABLE}_ai AFTER INSERT ON cases BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text); END",
    f"CREATE TRIGGER {FTS_TABLE}_ad AFTER DELETE ON cases BEGIN {_FORGET} END",
    f"CREATE TRIGGER {FTS_TABLE}_au AFTER UPDATE OF search_text ON cases BEGIN {_FORGET} "
    f"INSERT INTO {FTS_TABLE}(rowid, search_text) VALUES (new.id, new.search_text); END",
)
SQLITE_DROP = (f"DROP TRIGGER IF EXISTS {FTS_TABLE}_au", f"DROP TRIGGER IF EXISTS {FTS_TABLE}_ad",
               f"DROP TRIGGER IF EXISTS {FTS_TABLE}_ai", f"DROP TABLE IF EXISTS {FTS_TABLE}")
POSTGRES_DDL = ("CREATE INDEX IF NOT EXISTS ix_cases_search ON cases "
                "USING gin (to_tsvector('simple', search_text))",)
POSTGRES_DROP = ("DROP INDEX IF EXISTS ix_cases_search",)
UNMANAGED = {FTS_TABLE, f"{FTS_TABLE}_data", f"{FTS_TABLE}_idx", f"{FTS_TABLE}_docsize",
             f"{FTS_TABLE}_config", f"{FTS_TABLE}_content", "ix_cases_search"}
Base.metadata.info.setdefault("unmanaged", set()).update(UNMANAGED)


def _create_index(table: Table, connection: Connection, **_kw: object) -> None:
    statements = {"sqlite": SQLITE_DDL, "postgresql": POSTGRES_DDL}.get(connection.dialect.name, ())
    for statement in statements:
        connection.exec_driver_sql(statement)


event.listen(Case.__table__, "after_create", _create_index)
