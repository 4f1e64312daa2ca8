"""Queries of centres (org units of kind "centre"), their rosters and village contacts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select
from sqlalchemy.orm import Session

from cityops.core.auth.models import OrgUnit
from cityops.governance.centres.models import DutyEntry, VillageContact

LEVEL_ORDER = {"city": 0, "county": 1, "township": 2, "village": 3}


def centre_by_division(session: Session, division_code: str) -> OrgUnit | None:
    return session.scalar(
        select(OrgUnit).where(OrgUnit.kind == "centre", OrgUnit.division_code == division_code)
    )


def centres_query(condition: ColumnElement[bool], level: str | None = None) -> Select[Any]:
    query = select(OrgUnit).where(OrgUnit.kind == "centre", condition)
    if level:
        query = query.where(OrgUnit.level == level)
    return query


def page(session: Session, query: Select[Any], *, limit: int, offset: int) -> tuple[list[OrgUnit], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.scalars(
        query.order_by(func.length(OrgUnit.division_code), OrgUnit.division_code).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def duties(session: Session, unit_ids: Iterable[int], start: date, end: date) -> list[DutyEntry]:
    wanted = sorted(set(unit_ids))
    if not wanted:
        return []
    return list(
        session.scalars(
            select(DutyEntry)
            .where(
                DutyEntry.org_unit_id.in_(wanted), DutyEntry.duty_date >= start, DutyEntry.duty_date <= end
            )
            .order_by(DutyEntry.duty_date, DutyEntry.shift, DutyEntry.id)
        )
    )


def clear_days(session: Session, unit_id: int, days: Iterable[date]) -> None:
    session.execute(
        delete(DutyEntry).where(DutyEntry.org_unit_id == unit_id, DutyEntry.duty_date.in_(sorted(set(days))))
    )


def roster_rows(
    session: Session, condition: ColumnElement[bool], start: date, end: date
) -> list[tuple[DutyEntry, OrgUnit]]:
    rows = session.execute(
        select(DutyEntry, OrgUnit)
        .join(OrgUnit, OrgUnit.id == DutyEntry.org_unit_id)
        .where(condition, DutyEntry.duty_date >= start, DutyEntry.duty_date <= end)
        .order_by(DutyEntry.duty_date, OrgUnit.division_code, DutyEntry.shift, DutyEntry.id)
    )
    return [(d, u) for d, u in rows]


def contacts(session: Session, village_codes: Iterable[str]) -> list[VillageContact]:
    wanted = sorted(set(village_codes))
    if not wanted:
        return []
    return list(session.scalars(select(VillageContact).where(VillageContact.village_code.in_(wanted))))


def contact(session: Session, village_code: str, role: str) -> VillageContact | None:
    return session.scalar(
        select(VillageContact).where(VillageContact.village_code == village_code, VillageContact.role == role)
    )


def count_duties(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DutyEntry)) or 0
