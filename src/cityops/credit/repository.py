"""Queries of the credit package."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Exists, Select, delete, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from cityops.core.auth.models import OrgUnit
from cityops.core.db import table_of
from cityops.credit.models import Entity, EntityDepartment

CHUNK = 5_000  # codes per IN (...) list


def by_codes(session: Session, codes: Iterable[str]) -> dict[str, Entity]:
    wanted = list(dict.fromkeys(codes))
    found: dict[str, Entity] = {}
    for start in range(0, len(wanted), CHUNK):
        found.update(
            {
                e.code: e
                for e in session.scalars(select(Entity).where(Entity.code.in_(wanted[start : start + CHUNK])))
            }
        )
    return found


def departments_by_code_or_name(session: Session, keys: Iterable[str]) -> dict[str, OrgUnit]:
    """Departments (org units of kind department) by their code and by their name."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    found: dict[str, OrgUnit] = {}
    for unit in session.scalars(
        select(OrgUnit).where(
            OrgUnit.kind == "department", or_(OrgUnit.code.in_(wanted), OrgUnit.name.in_(wanted))
        )
    ):
        found[unit.code] = unit
        found[unit.name] = unit
    return found


def insert_entities(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """One INSERT run for every row (executemany, the driver's fast path); the new ids by code, read
    back by the codes (much faster than RETURNING, which makes SQLAlchemy send the rows in batches of
    multi-row VALUES)."""
    if not rows:
        return {}
    ordered = sorted(rows, key=lambda row: row["code"])  # neighbours in the code index: fewer pages touched
    session.connection().execute(insert(table_of(Entity)), ordered)
    wanted = [row["code"] for row in ordered]
    ids: dict[str, int] = {}
    for start in range(0, len(wanted), CHUNK):
        ids.update(
            (code, id_)
            for code, id_ in session.execute(
                select(Entity.code, Entity.id).where(Entity.code.in_(wanted[start : start + CHUNK]))
            )
        )
    return ids


def update_entities(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE by primary key, one statement per set of columns (each row carries its id)."""
    if rows:
        session.execute(update(Entity), list(rows))


def replace_departments(session: Session, links: Mapping[int, Sequence[int]], *, fresh: bool = False) -> None:
    """Set each entity's supervising departments; `fresh` for entities that have none yet."""
    if not links:
        return
    if not fresh:
        ids = list(links)
        for start in range(0, len(ids), CHUNK):
            session.execute(
                delete(EntityDepartment).where(EntityDepartment.entity_id.in_(ids[start : start + CHUNK]))
            )
    rows = [
        {"entity_id": entity_id, "org_unit_id": unit}
        for entity_id, units in links.items()
        for unit in dict.fromkeys(units)
    ]
    if rows:
        session.connection().execute(insert(table_of(EntityDepartment)), rows)


def departments_of(session: Session, entity_ids: Sequence[int]) -> dict[int, list[OrgUnit]]:
    found: dict[int, list[OrgUnit]] = {i: [] for i in entity_ids}
    if not entity_ids:
        return found
    for entity_id, unit in session.execute(
        select(EntityDepartment.entity_id, OrgUnit)
        .join(OrgUnit, OrgUnit.id == EntityDepartment.org_unit_id)
        .where(EntityDepartment.entity_id.in_(entity_ids))
        .order_by(OrgUnit.code)
    ):
        found[entity_id].append(unit)
    return found


def supervised_by(org_unit_id: int) -> Select[Any]:
    """The ids of the entities a department supervises (for an IN condition)."""
    return select(EntityDepartment.entity_id).where(EntityDepartment.org_unit_id == org_unit_id)


def supervised_exists(org_unit_id: int) -> Exists:
    """Whether the department supervises the entity of the row (a correlated condition)."""
    return exists().where(
        EntityDepartment.entity_id == Entity.id, EntityDepartment.org_unit_id == org_unit_id
    )


def supervises(session: Session, org_unit_id: int, entity_id: int) -> bool:
    return session.get(EntityDepartment, (entity_id, org_unit_id)) is not None


def page(session: Session, condition: ColumnElement[bool], *, limit: int, offset: int) -> list[Entity]:
    """Newest registrations first (by id)."""
    return list(
        session.scalars(
            select(Entity).where(condition).order_by(Entity.id.desc()).limit(limit).offset(offset)
        )
    )


def count(session: Session, condition: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(Entity).where(condition)) or 0


def stream(session: Session, condition: ColumnElement[bool], *, limit: int) -> Iterator[Entity]:
    """The rows of a list, fetched in batches (exports)."""
    query = select(Entity).where(condition).order_by(Entity.id.desc()).limit(limit)
    yield from session.scalars(query.execution_options(yield_per=2_000))


def synthetic_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Entity).where(Entity.synthetic.is_(True))) or 0
