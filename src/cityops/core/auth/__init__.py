"""Security kernel: users, roles, division scope, sessions, tokens, CSRF and the audit log.

What other packages use:
  can_access / authorize / scope_filter / scope_prefix   the one authorisation rule (scope.py)
  has_permission, can_view_pii, ROLES                     roles as data (roles.py)
  CurrentUser, OptionalUser, require_permission           FastAPI dependencies (deps.py)
  csrf_token(request)                                     the token for forms and HTMX headers
  audit.record(...)                                       the audit log
  mask_phone, mask_id_number                              personal-information masking
"""

from __future__ import annotations

from fastapi import FastAPI

from cityops.core.auth import audit
from cityops.core.auth.deps import CurrentUser, OptionalUser, current_user, optional_user, require_permission
from cityops.core.auth.middleware import AuthMiddleware, csrf_token
from cityops.core.auth.models import ApiToken, AuditEntry, LoginAttempt, OrgUnit, User, WebSession
from cityops.core.auth.pii import mask_id_number, mask_phone
from cityops.core.auth.roles import PERMISSIONS, ROLES, Role, can_view_pii, get_role, has_permission
from cityops.core.auth.scope import (
    authorize,
    can_access,
    division_level,
    in_scope,
    scope_filter,
    scope_prefix,
    sees_everything,
)

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "ApiToken",
    "AuditEntry",
    "AuthMiddleware",
    "CurrentUser",
    "LoginAttempt",
    "OptionalUser",
    "OrgUnit",
    "Role",
    "User",
    "WebSession",
    "audit",
    "authorize",
    "can_access",
    "can_view_pii",
    "csrf_token",
    "current_user",
    "division_level",
    "get_role",
    "has_permission",
    "in_scope",
    "mask_id_number",
    "mask_phone",
    "optional_user",
    "require_permission",
    "scope_filter",
    "scope_prefix",
    "sees_everything",
]


def install(app: FastAPI) -> None:
    """Add the authentication/CSRF middleware to a FastAPI app (called by create_app)."""
    app.add_middleware(AuthMiddleware)
