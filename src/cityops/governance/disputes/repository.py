"""Queries of disputes. Lists join the dispute's case for its number, status, level and handling unit
(read-only columns; every change to a case goes through the cases service)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from cityops.cases.models import Case
from cityops.core.auth.models import OrgUnit
from cityops.governance.disputes.models import Dispute, DisputeParty, MediationSession


def get(session: Session, dispute_id: int) -> Dispute | None:
    return session.get(Dispute, dispute_id)


def case(session: Session, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_query(
    *,
    condition: ColumnElement[bool],
    status: str | None = None,
    category: str | None = None,
    q: str | None = None,
    ids: Collection[int] | None = None,
) -> Select[Dispute, str, str, str, str]:
    query: Select[Dispute, str, str, str, str] = (
        select(Dispute, Case.number, Case.status, Case.level, OrgUnit.name)
        .join(Case, Case.id == Dispute.case_id)
        .outerjoin(OrgUnit, OrgUnit.id == Case.org_unit_id)
        .where(condition)
    )
    if status:
        query = query.where(Dispute.status == status)
    if category:
        query = query.where(Dispute.category == category)
    if q:
        pattern = f"%{escape_like(q)}%"
        query = query.where(
            or_(
                Dispute.title.like(pattern, escape="\\"),
                Dispute.place.like(pattern, escape="\\"),
                Case.number.like(pattern, escape="\\"),
            )
        )
    if ids is not None:
        query = query.where(Dispute.id.in_(sorted(ids)))
    return query


def page(session: Session, query: Select[Any], *, limit: int, offset: int) -> tuple[list[Any], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.execute(
        query.order_by(Dispute.created_at.desc(), Dispute.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def one_row(session: Session, dispute_id: int) -> Any:
    return session.execute(list_query(condition=Dispute.id == dispute_id)).one()


def parties(session: Session, dispute_ids: Iterable[int]) -> dict[int, list[DisputeParty]]:
    wanted = sorted(set(dispute_ids))
    found: dict[int, list[DisputeParty]] = {i: [] for i in wanted}
    for start in range(0, len(wanted), 500):
        for party in session.scalars(
            select(DisputeParty)
            .where(DisputeParty.dispute_id.in_(wanted[start : start + 500]))
            .order_by(DisputeParty.id)
        ):
            found[party.dispute_id].append(party)
    return found


def sessions(session: Session, dispute_id: int) -> list[MediationSession]:
    return list(
        session.scalars(
            select(MediationSession)
            .where(MediationSession.dispute_id == dispute_id)
            .order_by(MediationSession.held_on, MediationSession.id)
        )
    )


def points(
    session: Session, condition: ColumnElement[bool], until: datetime | None = None
) -> list[tuple[int, int, str, datetime, float, float]]:
    """(id, case id, division code, created at, lon, lat) of every dispute matching."""
    query = select(
        Dispute.id, Dispute.case_id, Dispute.division_code, Dispute.created_at, Dispute.lon, Dispute.lat
    ).where(condition)
    if until is not None:
        query = query.where(Dispute.created_at < until)
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def party_keys(
    session: Session, condition: ColumnElement[bool], until: datetime | None = None
) -> list[tuple[int, str | None, str, str | None]]:
    """(dispute id, ID number, name, phone) of the parties of every dispute matching."""
    query = (
        select(DisputeParty.dispute_id, DisputeParty.id_number, DisputeParty.name, DisputeParty.phone)
        .join(Dispute, Dispute.id == DisputeParty.dispute_id)
        .where(condition)
    )
    if until is not None:
        query = query.where(Dispute.created_at < until)
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Dispute)) or 0


def count_open(session: Session, condition: ColumnElement[bool]) -> int:
    return (
        session.scalar(select(func.count()).select_from(Dispute).where(condition, Dispute.status != "agreed"))
        or 0
    )


def statuses(session: Session, dispute_ids: Collection[int]) -> dict[int, str]:
    wanted = sorted(dispute_ids)
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 5000):
        rows = session.execute(
            select(Dispute.id, Dispute.status).where(Dispute.id.in_(wanted[start : start + 5000]))
        )
        found.update((dispute_id, status) for dispute_id, status in rows)
    return found
