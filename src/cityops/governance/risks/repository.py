"""Queries of the risk register."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from cityops.governance.risks.models import Risk, RiskTask


def get(session: Session, risk_id: int) -> Risk | None:
    return session.get(Risk, risk_id)


def pattern_risks(session: Session) -> list[Risk]:
    return list(session.scalars(select(Risk).order_by(Risk.id)))


def tasks(session: Session, risk_id: int) -> list[RiskTask]:
    return list(session.scalars(select(RiskTask).where(RiskTask.risk_id == risk_id).order_by(RiskTask.id)))


def list_query(*, condition: ColumnElement[bool], stage: str | None, kind: str | None) -> Select[Risk]:
    query = select(Risk).where(condition)
    if stage:
        query = query.where(Risk.stage == stage)
    if kind:
        query = query.where(Risk.kind == kind)
    return query.order_by(Risk.last_at.desc(), Risk.id.desc())


def page(session: Session, query: Select[Risk], *, limit: int, offset: int) -> tuple[list[Risk], int]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    return list(session.scalars(query.limit(limit).offset(offset))), int(total)


def count_all(session: Session) -> int:
    return int(session.scalar(select(func.count(Risk.id))) or 0)
