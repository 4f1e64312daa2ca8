"""The audit log: who read or changed what (PIPL). `record` adds a row to the caller's transaction."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.orm import Session
from starlette.requests import Request

from cityops.core.auth.models import AuditEntry

ACTIONS = frozenset({
    "read", "pii_read", "create", "update", "delete", "login", "login_failed", "logout",
    "password_change", "token_create", "token_revoke", "export",
})


class Actor(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def username(self) -> str: ...


def client_ip(request: Request | None) -> str | None:
    if request is None or request.client is None:
        return None
    return request.client.host[:45]


def record(session: Session, user: Actor | None, action: str, resource_type: str,
           resource_id: object = None, division_code: str | None = None,
           detail: dict[str, Any] | None = None, request: Request | None = None, *,
           username: str | None = None) -> AuditEntry:
    """Add an audit entry in the same transaction as the read or change it describes.

    `username` names the account when there is no user object (e.g. a failed login)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; known: {', '.join(sorted(ACTIONS))}")
    entry = AuditEntry(
        user_id=user.id if user is not None else None,
        username=(user.username if user is not None else (username or "")[:40] or None),
        action=action,
        resource_type=resource_type,
        resource_id=None if resource_id is None else str(resource_id)[:64],
        division_code=division_code,
        ip=client_ip(request),
        detail=detail,
    )
    session.add(entry)
    return entry
