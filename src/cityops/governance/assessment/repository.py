"""Queries of project risk assessment."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from cityops.core.auth.models import OrgUnit, User
from cityops.governance.assessment.models import Mitigation, RiskAssessment, RiskProject


def get(session: Session, project_id: int) -> RiskProject | None:
    return session.get(RiskProject, project_id)


def unit_by_code(session: Session, code: str) -> OrgUnit | None:
    return session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def units(session: Session, ids: Iterable[int | None]) -> dict[int, OrgUnit]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(OrgUnit).where(OrgUnit.id.in_(wanted)))}


def assessments(session: Session, project_id: int) -> list[RiskAssessment]:
    return list(
        session.scalars(
            select(RiskAssessment)
            .where(RiskAssessment.project_id == project_id)
            .order_by(RiskAssessment.assessed_at.desc(), RiskAssessment.id.desc())
        )
    )


def mitigations(session: Session, project_id: int) -> list[Mitigation]:
    return list(
        session.scalars(select(Mitigation).where(Mitigation.project_id == project_id).order_by(Mitigation.id))
    )


def mitigation(session: Session, project_id: int, mitigation_id: int) -> Mitigation | None:
    found = session.get(Mitigation, mitigation_id)
    return found if found is not None and found.project_id == project_id else None


def mitigation_counts(session: Session, project_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(all, open) mitigations per project."""
    ids = list(project_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(
            Mitigation.project_id,
            func.count(),
            func.count(Mitigation.id).filter(Mitigation.done_at.is_(None)),
        )
        .where(Mitigation.project_id.in_(ids))
        .group_by(Mitigation.project_id)
    )
    return {pid: (int(total), int(open_)) for pid, total, open_ in rows}


def _open_count() -> ColumnElement[int]:
    return (
        select(func.count(Mitigation.id))
        .where(Mitigation.project_id == RiskProject.id, Mitigation.done_at.is_(None))
        .scalar_subquery()
    )


def _any_count() -> ColumnElement[int]:
    return select(func.count(Mitigation.id)).where(Mitigation.project_id == RiskProject.id).scalar_subquery()


def blocked_condition() -> ColumnElement[bool]:
    """High risk and a mitigation still open (or none recorded yet)."""
    return (RiskProject.risk_level == "high") & ((_open_count() > 0) | (_any_count() == 0))


def list_query(
    *,
    condition: ColumnElement[bool],
    status: str | None,
    risk_level: str | None,
    blocked: bool | None,
    q: str | None,
) -> Select[RiskProject]:
    query = select(RiskProject).where(condition)
    if status:
        query = query.where(RiskProject.status == status)
    if risk_level:
        query = query.where(RiskProject.risk_level == risk_level)
    if blocked is True:
        query = query.where(blocked_condition())
    elif blocked is False:
        query = query.where(~blocked_condition())
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(RiskProject.name.like(f"%{escaped}%", escape="\\"))
    return query.order_by(RiskProject.created_at.desc(), RiskProject.id.desc())


def page(
    session: Session, query: Select[RiskProject], *, limit: int, offset: int
) -> tuple[list[RiskProject], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    return list(session.scalars(query.limit(limit).offset(offset))), int(total)


def counts(session: Session, condition: ColumnElement[bool]) -> tuple[int, int, int, int]:
    """(total, high, blocked, released) among the projects matching condition."""
    high = RiskProject.risk_level == "high"
    row = session.execute(
        select(
            func.count(RiskProject.id),
            func.count(RiskProject.id).filter(high),
            func.count(RiskProject.id).filter(blocked_condition()),
            func.count(RiskProject.id).filter(high, RiskProject.approved_at.is_not(None)),
        ).where(condition)
    ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def count_all(session: Session) -> int:
    return int(session.scalar(select(func.count(RiskProject.id))) or 0)


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def centre_divisions(session: Session, level: str) -> list[str]:
    """Division codes of the governance centres at a level (every division has one)."""
    return list(
        session.scalars(
            select(OrgUnit.division_code)
            .where(OrgUnit.kind == "centre", OrgUnit.level == level)
            .order_by(OrgUnit.division_code)
        )
    )
