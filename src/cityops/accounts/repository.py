"""Queries of the accounts tables. Every list takes the viewer and applies the one scope rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, or_, select
from sqlalchemy.orm import Session

from cityops.core.auth.models import ApiToken, AuditEntry, LoginAttempt, OrgUnit, User
from cityops.core.auth.scope import ScopedUser, scope_filter

# A user's division for the scope rule: their own scope, else the division of their org unit
# (a department handler's department sits at city level).
USER_DIVISION: ColumnElement[str | None] = func.coalesce(User.scope_code, OrgUnit.division_code)


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def user_with_org(session: Session, user_id: int) -> tuple[User, OrgUnit | None] | None:
    row = session.execute(
        select(User, OrgUnit).outerjoin(OrgUnit, OrgUnit.id == User.org_unit_id).where(User.id == user_id)
    ).first()
    return None if row is None else (row[0], row[1])


def org_unit_by_code(session: Session, code: str) -> OrgUnit | None:
    return session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def _page(session: Session, stmt: Select[Any, Any], limit: int,
          offset: int) -> tuple[list[tuple[User, OrgUnit | None]], int]:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.execute(stmt.limit(limit).offset(offset)).all()
    return [(r[0], r[1]) for r in rows], total


def list_users(session: Session, *, viewer: ScopedUser, q: str | None = None, role: str | None = None,
               org_unit_id: int | None = None, division: str | None = None, demo: bool | None = None,
               limit: int = 50, offset: int = 0) -> tuple[list[tuple[User, OrgUnit | None]], int]:
    stmt = (select(User, OrgUnit).outerjoin(OrgUnit, OrgUnit.id == User.org_unit_id)
            .where(scope_filter(viewer, USER_DIVISION, User.org_unit_id, User.id)))
    if q:
        pattern = f"%{q.strip()}%"
        stmt = stmt.where(or_(User.username.ilike(pattern), User.display_name.ilike(pattern)))
    if role:
        stmt = stmt.where(User.role == role)
    if org_unit_id is not None:
        stmt = stmt.where(User.org_unit_id == org_unit_id)
    if division:
        stmt = stmt.where(USER_DIVISION.like(division + "%"))
    if demo is not None:
        stmt = stmt.where(User.is_demo.is_(demo))
    return _page(session, stmt.order_by(User.username), limit, offset)


def list_org_units(session: Session, *, viewer: ScopedUser, kind: str | None = None,
                   level: str | None = None, q: str | None = None, limit: int = 50,
                   offset: int = 0) -> tuple[list[OrgUnit], int]:
    # Departments are the city's public directory; centres follow the scope rule.
    stmt = select(OrgUnit).where(or_(OrgUnit.kind == "department",
                                     scope_filter(viewer, OrgUnit.division_code, OrgUnit.id)))
    if kind:
        stmt = stmt.where(OrgUnit.kind == kind)
    if level:
        stmt = stmt.where(OrgUnit.level == level)
    if q:
        pattern = f"%{q.strip()}%"
        stmt = stmt.where(or_(OrgUnit.name.ilike(pattern), OrgUnit.code.ilike(pattern),
                              OrgUnit.name_en.ilike(pattern)))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = session.scalars(stmt.order_by(OrgUnit.kind, OrgUnit.division_code, OrgUnit.code)
                            .limit(limit).offset(offset)).all()
    return list(items), total


def list_tokens(session: Session, *, user_ids: Sequence[int] | None) -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user_ids is not None:
        stmt = stmt.where(ApiToken.user_id.in_(user_ids))
    return list(session.scalars(stmt))


def token_by_prefix(session: Session, prefix: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.prefix == prefix))


def list_audit(session: Session, *, viewer: ScopedUser, action: str | None = None,
               username: str | None = None, resource_type: str | None = None,
               resource_id: str | None = None, since: datetime | None = None, limit: int = 50,
               offset: int = 0) -> tuple[list[AuditEntry], int]:
    stmt = select(AuditEntry).where(scope_filter(viewer, AuditEntry.division_code,
                                                 owner_column=AuditEntry.user_id))
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if username:
        stmt = stmt.where(AuditEntry.username == username)
    if resource_type:
        stmt = stmt.where(AuditEntry.resource_type == resource_type)
    if resource_id:
        stmt = stmt.where(AuditEntry.resource_id == resource_id)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    items = session.scalars(stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                            .limit(limit).offset(offset)).all()
    return list(items), total


# --- login attempts ---------------------------------------------------------------------------

def lockout_seconds(session: Session, *, username: str, ip: str | None, now: datetime,
                    window_s: int, max_failures: int, ip_max_failures: int) -> int:
    """Seconds until another attempt is allowed (0: allowed now). A username is locked after
    `max_failures` failures in the window since its last success; an address after `ip_max_failures`
    failures in the window, whatever the usernames."""
    window_start = now - timedelta(seconds=window_s)
    waits = [0.0]
    last_success = session.scalar(select(func.max(LoginAttempt.at)).where(
        LoginAttempt.username == username, LoginAttempt.success.is_(True), LoginAttempt.at > window_start))
    checks: list[tuple[ColumnElement[bool], int, datetime]] = [
        (LoginAttempt.username == username, max_failures, max(window_start, last_success or window_start)),
    ]
    if ip:
        checks.append((LoginAttempt.ip == ip, ip_max_failures, window_start))
    for condition, limit, start in checks:
        times = session.scalars(
            select(LoginAttempt.at).where(condition, LoginAttempt.success.is_(False), LoginAttempt.at > start)
            .order_by(LoginAttempt.at.desc()).limit(limit)).all()
        if len(times) >= limit:
            waits.append((times[-1] + timedelta(seconds=window_s) - now).total_seconds())
    return max(0, math.ceil(max(waits)))


def add_login_attempt(session: Session, *, username: str, ip: str | None, success: bool,
                      at: datetime) -> None:
    session.add(LoginAttempt(username=username[:80], ip=ip, success=success, at=at))


def forget_login_attempts(session: Session, *, before: datetime) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < before))
