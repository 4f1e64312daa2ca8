"""Accounts kernel tables: org units, users, web sessions, API tokens, the audit log and login attempts.

These live in core (not in the accounts package) because every package's routes check them: who is
asking, in which division scope, for which org unit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow

ORG_UNIT_KINDS = ("department", "centre", "external")
ORG_UNIT_LEVELS = ("city", "county", "township", "village")


class OrgUnit(Base):
    """A body users belong to: one of the city departments, a governance centre (综治中心) of a
    division, or an external organisation (e.g. a utility)."""

    __tablename__ = "org_units"
    __table_args__ = (
        CheckConstraint("kind IN ('department', 'centre', 'external')", name="kind"),
        CheckConstraint("level IN ('city', 'county', 'township', 'village')", name="level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120), index=True)
    name_en: Mapped[str | None] = mapped_column(String(160), default=None)
    kind: Mapped[str] = mapped_column(String(12), index=True)
    level: Mapped[str] = mapped_column(String(10))
    # The division the unit serves (for a centre) or sits in (for a department: the city).
    division_code: Mapped[str] = mapped_column(String(15), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(24), index=True)
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), default=None, index=True)
    # Division subtree the user works in; empty for citizens and enterprise users.
    scope_code: Mapped[str | None] = mapped_column(String(15), default=None, index=True)
    # Personal information (PIPL): shown masked unless the viewer's role may see it; reads are audited.
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    id_number: Mapped[str | None] = mapped_column(String(18), default=None)
    locale: Mapped[str] = mapped_column(String(5), default="zh")
    is_active: Mapped[bool] = mapped_column(default=True)
    is_demo: Mapped[bool] = mapped_column(default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:  # never print personal information or the hash
        return f"User(id={self.id!r}, username={self.username!r}, role={self.role!r})"


class WebSession(Base):
    """A signed-in browser. The cookie carries the random key (signed); only its SHA-256 is stored,
    so a copy of the database cannot be replayed as a login. Logout deletes the row."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(200), default=None)


class ApiToken(Base):
    """A bearer token for another system. Only the SHA-256 of the token is stored, plus a short
    prefix to recognise and revoke it."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditEntry(Base):
    """Who read or changed what, when, from where. Rows are only ever added."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_division_at", "division_code", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # No foreign key: the log must outlive the accounts it mentions.
    user_id: Mapped[int | None] = mapped_column(default=None, index=True)
    username: Mapped[str | None] = mapped_column(String(40), default=None)
    action: Mapped[str] = mapped_column(String(24), index=True)
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(64), default=None)
    division_code: Mapped[str | None] = mapped_column(String(15), default=None)
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class LoginAttempt(Base):
    """One login attempt; kept in the database so the rate limit holds across workers and machines."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    success: Mapped[bool] = mapped_column(default=False)
