"""Accounts rules: sign-in with rate limiting, user creation with validation, scoped reads with
personal-information masking and audit, API tokens, org units. Functions only flush; the caller's
unit of work commits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumValidationError

from cityops.accounts import repository as repo
from cityops.accounts.schemas import MeRead, OrgUnitRead, TokenCreated, TokenRead, UserRead
from cityops.config import Settings
from cityops.core.auth import audit
from cityops.core.auth.models import ApiToken, AuditEntry, OrgUnit, User
from cityops.core.auth.pii import mask_id_number, mask_phone
from cityops.core.auth.roles import ROLES, can_view_pii, get_role, has_permission
from cityops.core.auth.scope import GRID_CODE_LENGTH, authorize, can_access, in_scope, scope_prefix
from cityops.core.auth.security import dummy_hash, hash_password, needs_rehash, verify_password
from cityops.core.auth.sessions import forget_tokens_on_commit, issue_token
from cityops.core.db import utcnow
from cityops.core.errors import (
    CityopsError,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from cityops.places import service as places_service

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,39}$")
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
PASSWORD_MIN = 10
LOCALES = ("zh", "en")
# An address is locked after this many times the per-username limit: a government office shares one
# address among many people, an attacker trying many usernames does not get more tries.
IP_FAILURE_FACTOR = 4
INVALID_CREDENTIALS = "invalid username or password"
# Org unit kinds a staff role may belong to.
ROLE_UNIT_KINDS: dict[str, tuple[str, ...]] = {
    "grid_worker": ("centre",),
    "centre_operator": ("centre",),
    "department_handler": ("department",),
    "inspector": ("department",),
    "leader": ("centre", "department"),
    "duty_officer": ("centre", "department"),  # an operations centre's, or the emergency bureau's
    "admin": ("centre", "department"),
    "enterprise_user": ("external",),
    "citizen": ("external",),
}
# Staff roles that may have no division scope: their reach is their org unit.
SCOPE_OPTIONAL_ROLES = frozenset({"department_handler", "inspector"})


# --- validation -------------------------------------------------------------------------------

def clean_text(value: str | None, limit: int = 80) -> str | None:
    """Free text from a query or form as a database can take it: no NUL characters (PostgreSQL refuses
    them), trimmed and bounded; empty becomes None."""
    if value is None:
        return None
    cleaned = value.replace("\x00", "").strip()[:limit]
    return cleaned or None


def validate_username(username: str) -> str:
    if not USERNAME_RE.match(username):
        raise ValidationFailed("username must be 3-40 characters: lower-case letters, digits, '.', '_' "
                               "or '-', starting with a letter or digit", field="username")
    return username


def validate_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise ValidationFailed(f"password must have at least {PASSWORD_MIN} characters", field="password")
    if not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        raise ValidationFailed("password must contain letters and digits", field="password")
    return password


def validate_phone(phone: str | None) -> str | None:
    if phone is None or not phone.strip():
        return None
    value = phone.strip().replace(" ", "")
    if value.startswith("+86"):
        value = value[3:]
    if not (MOBILE_RE.match(value) or LANDLINE_RE.match(value)):
        raise ValidationFailed(f"phone {phone!r} is neither a mainland mobile number (11 digits, 1[3-9]...) "
                               "nor a landline (0xxx-xxxxxxx)", field="phone")
    return value


def validate_id_number(id_number: str | None) -> str | None:
    """A resident identity card number (GB 11643): 18 characters, valid birth date and check digit."""
    if id_number is None or not id_number.strip():
        return None
    try:
        return str(ric.validate(id_number.strip().upper()))
    except StdnumValidationError as exc:
        raise ValidationFailed(f"id_number is not a valid resident ID number: {exc}",
                               field="id_number") from None
    except KeyError:
        # python-stdnum raises KeyError for a region code it knows only at province level.
        raise ValidationFailed("id_number is not a valid resident ID number: unknown region code "
                               f"{id_number.strip()[:6]}", field="id_number") from None


def is_valid_id_number(id_number: str) -> bool:
    try:
        validate_id_number(id_number)
    except ValidationFailed:
        return False
    return True


def _known_division(session: Session, code: str) -> bool:
    """A division or grid code that exists in places."""
    try:
        if len(code) == GRID_CODE_LENGTH:
            places_service.get_grid(session, code=code)
        else:
            places_service.get_division(session, code=code)
    except NotFound:
        return False
    return True


def validate_scope(session: Session, code: str | None, *, field: str = "scope_code") -> str | None:
    if code is None or not code.strip():
        return None
    code = code.strip()
    try:
        scope_prefix(code)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field=field) from None
    if not _known_division(session, code):
        raise ValidationFailed(f"unknown division or grid code {code!r}", field=field)
    return code


# --- presentation -----------------------------------------------------------------------------

def user_division(user: User, org_unit: OrgUnit | None) -> str | None:
    """Where a user sits for the scope rule: their scope, else their org unit's division."""
    return user.scope_code or (org_unit.division_code if org_unit is not None else None)


def to_read(user: User, org_unit: OrgUnit | None, *, pii_visible: bool) -> UserRead:
    role = ROLES.get(user.role)
    return UserRead(
        id=user.id, username=user.username, display_name=user.display_name, role=user.role,
        role_name=role.name_en if role else user.role,
        org_unit=OrgUnitRead.model_validate(org_unit) if org_unit is not None else None,
        scope_code=user.scope_code, division_code=user_division(user, org_unit),
        phone=user.phone if pii_visible else mask_phone(user.phone),
        id_number=user.id_number if pii_visible else mask_id_number(user.id_number),
        pii_visible=pii_visible, locale=user.locale, is_active=user.is_active, is_demo=user.is_demo,
        created_at=user.created_at,
    )


def me(session: Session, *, user: User, csrf: str | None, auth_method: str | None) -> MeRead:
    """The signed-in user's own record: their own data is never masked and not a PII read."""
    found = repo.user_with_org(session, user.id)
    if found is None:
        raise NotFound(f"user {user.id} not found")
    base = to_read(found[0], found[1], pii_visible=True)
    role = ROLES.get(user.role)
    return MeRead(**base.model_dump(), permissions=sorted(role.permissions) if role else [],
                  csrf_token=csrf, auth_method=auth_method)


# --- sign-in ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoginOutcome:
    """The result of a sign-in attempt. Failures are returned, not raised, so the caller's unit of
    work still commits the attempt and its audit entry."""

    user: User | None = None
    error: CityopsError | None = None

    @property
    def retry_after_s(self) -> int | None:
        value = self.error.detail.get("retry_after_s") if self.error else None
        return int(value) if value is not None else None


def login(session: Session, *, username: str, password: str, settings: Settings,
          request: Request | None = None) -> LoginOutcome:
    name = (clean_text(username) or "").lower()
    ip = audit.client_ip(request)
    now = utcnow()
    wait = repo.lockout_seconds(session, username=name, ip=ip, now=now, window_s=settings.login_lockout_s,
                                max_failures=settings.login_max_failures,
                                ip_max_failures=settings.login_max_failures * IP_FAILURE_FACTOR)
    if wait > 0:
        audit.record(session, None, "login_failed", "session", None, username=name, request=request,
                     detail={"reason": "locked"})
        return LoginOutcome(error=TooManyRequests(
            f"too many failed sign-ins; try again in {wait} s", detail={"retry_after_s": wait}))

    user = repo.user_by_username(session, name)
    # Verify against a dummy hash for unknown names so the answer takes as long either way.
    ok = verify_password(user.password_hash if user else dummy_hash(), password)
    refused = None
    if user is None or not ok:
        refused = "unknown user" if user is None else "wrong password"
    elif not user.is_active:
        refused = "account disabled"
    elif user.is_demo and settings.environment == "production":
        refused = "demo account in production"
    if refused is not None or user is None:
        repo.add_login_attempt(session, username=name, ip=ip, success=False, at=now)
        audit.record(session, user, "login_failed", "session", None, username=name, request=request,
                     division_code=user.scope_code if user else None, detail={"reason": refused})
        # One reason for every case: never reveal which part was wrong.
        return LoginOutcome(error=Unauthorized(INVALID_CREDENTIALS))

    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    repo.add_login_attempt(session, username=name, ip=ip, success=True, at=now)
    repo.forget_login_attempts(session, before=now - timedelta(seconds=max(settings.login_lockout_s, 86400)))
    org_unit = session.get(OrgUnit, user.org_unit_id) if user.org_unit_id else None
    audit.record(session, user, "login", "session", None, division_code=user_division(user, org_unit),
                 request=request)
    session.flush()
    return LoginOutcome(user=user)


def logout(session: Session, *, user: User, request: Request | None = None) -> None:
    audit.record(session, user, "logout", "session", None, division_code=user.scope_code, request=request)


def change_password(session: Session, *, user: User, old_password: str, new_password: str,
                    request: Request | None = None) -> User:
    row = session.get(User, user.id)
    if row is None:
        raise NotFound(f"user {user.id} not found")
    if not verify_password(row.password_hash, old_password):
        raise ValidationFailed("the current password is wrong", field="old_password")
    validate_password(new_password)
    if new_password == old_password:
        raise ValidationFailed("the new password must differ from the current one", field="new_password")
    row.password_hash = hash_password(new_password)
    row.password_changed_at = utcnow()
    audit.record(session, row, "password_change", "user", row.id, division_code=row.scope_code,
                 request=request)
    session.flush()
    return row


# --- users ------------------------------------------------------------------------------------

def create_user(session: Session, *, username: str, display_name: str, role: str,
                password: str | None = None, password_hash: str | None = None,
                org_unit_code: str | None = None, scope_code: str | None = None,
                phone: str | None = None, id_number: str | None = None, locale: str = "zh",
                is_demo: bool = False, actor: User | None = None, settings: Settings | None = None,
                request: Request | None = None) -> User:
    """Create an account after checking every field; `actor` None means the command line.

    Exactly one of `password` (validated and hashed) or `password_hash` (seeding) is given."""
    validate_username(username)
    if not display_name.strip():
        raise ValidationFailed("display_name must not be empty", field="display_name")
    if role not in ROLES:
        raise ValidationFailed(f"unknown role {role!r}; one of: {', '.join(ROLES)}", field="role")
    if (password is None) == (password_hash is None):
        raise ValidationFailed("give a password", field="password")
    if password is not None:
        validate_password(password)
    if locale not in LOCALES:
        raise ValidationFailed(f"locale must be one of {', '.join(LOCALES)}", field="locale")
    if is_demo and settings is not None and settings.environment == "production":
        raise Forbidden("demo accounts are never created in production")
    role_def = get_role(role)

    org_unit = None
    if org_unit_code:
        org_unit = repo.org_unit_by_code(session, org_unit_code.strip())
        if org_unit is None:
            raise ValidationFailed(f"unknown org unit {org_unit_code!r}", field="org_unit_code")
        if org_unit.kind not in ROLE_UNIT_KINDS[role]:
            raise ValidationFailed(
                f"a {role} belongs to a {' or '.join(ROLE_UNIT_KINDS[role])} org unit, "
                f"not to {org_unit.code} ({org_unit.kind})", field="org_unit_code")
    elif role_def.staff:
        raise ValidationFailed(f"a {role} must belong to an org unit", field="org_unit_code")

    scope = validate_scope(session, scope_code)
    if not role_def.staff and scope is not None:
        raise ValidationFailed(f"a {role} has no division scope (they see their own records)",
                               field="scope_code")
    if role_def.staff and scope is None and role not in SCOPE_OPTIONAL_ROLES:
        raise ValidationFailed(f"a {role} needs a division scope", field="scope_code")
    if (org_unit is not None and org_unit.kind == "centre" and scope is not None
            and not in_scope(org_unit.division_code, scope)):
        raise ValidationFailed(f"scope {scope} lies outside {org_unit.code}'s division "
                               f"{org_unit.division_code}", field="scope_code")

    if actor is not None:
        if not has_permission(actor, "users.manage"):
            raise Forbidden("your role may not create accounts (needs permission 'users.manage')")
        if not can_access(actor, division_code=scope or (org_unit.division_code if org_unit else None),
                          org_unit_id=org_unit.id if org_unit else None):
            raise Forbidden("the new account would lie outside your scope")
        if role == "admin" and actor.role != "admin":
            raise Forbidden("only an administrator may create administrators")

    if repo.user_by_username(session, username) is not None:
        raise Conflict(f"username {username!r} is taken", field="username")
    user = User(username=username, display_name=display_name.strip(), role=role,
                password_hash=password_hash if password_hash is not None else hash_password(password or ""),
                org_unit_id=org_unit.id if org_unit else None, scope_code=scope,
                phone=validate_phone(phone), id_number=validate_id_number(id_number), locale=locale,
                is_demo=is_demo)
    session.add(user)
    session.flush()
    audit.record(session, actor, "create", "user", user.id, division_code=user_division(user, org_unit),
                 request=request, detail={"username": username, "role": role,
                                          "via": "api" if actor is not None else "cli"})
    return user


def list_users(session: Session, *, viewer: User, q: str | None = None, role: str | None = None,
               org_unit_id: int | None = None, division: str | None = None, limit: int = 50,
               offset: int = 0) -> tuple[list[UserRead], int]:
    """Users the viewer may see. Lists are always masked (data minimisation): the unmasked values
    appear only on a single user's record, where the read is audited."""
    if not has_permission(viewer, "users.read"):
        raise Forbidden("your role may not list accounts (needs permission 'users.read')")
    if division:
        try:
            scope_prefix(division)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="division") from None
    if role and role not in ROLES:
        raise ValidationFailed(f"unknown role {role!r}; one of: {', '.join(ROLES)}", field="role")
    rows, total = repo.list_users(session, viewer=viewer, q=clean_text(q), role=role, org_unit_id=org_unit_id,
                                  division=division, limit=limit, offset=offset)
    return [to_read(u, o, pii_visible=False) for u, o in rows], total


def get_user(session: Session, *, viewer: User, user_id: int, request: Request | None = None) -> UserRead:
    """One user, if inside the viewer's scope (otherwise NotFound, as if it did not exist).
    Viewers with `pii.view` see phone and ID number unmasked, and that read is audited as pii_read."""
    found = repo.user_with_org(session, user_id)
    if found is None:
        raise NotFound(f"user {user_id} not found")
    user, org_unit = found
    division = user_division(user, org_unit)
    if viewer.id != user.id:
        if not has_permission(viewer, "users.read"):
            raise NotFound(f"user {user_id} not found")
        authorize(viewer, division_code=division, org_unit_id=user.org_unit_id, resource="user",
                  resource_id=user_id)
    reveal = can_view_pii(viewer) or viewer.id == user.id
    has_pii = bool(user.phone or user.id_number)
    if viewer.id != user.id:
        if reveal and has_pii:
            audit.record(session, viewer, "pii_read", "user", user.id, division_code=division,
                         request=request, detail={"fields": [f for f in ("phone", "id_number")
                                                             if getattr(user, f)]})
        else:
            audit.record(session, viewer, "read", "user", user.id, division_code=division, request=request)
    return to_read(user, org_unit, pii_visible=reveal)


def set_active(session: Session, *, username: str, active: bool, actor: User | None = None,
               request: Request | None = None) -> User:
    user = repo.user_by_username(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    org_unit = session.get(OrgUnit, user.org_unit_id) if user.org_unit_id else None
    if actor is not None:
        if not has_permission(actor, "users.manage"):
            raise Forbidden("your role may not change accounts (needs permission 'users.manage')")
        authorize(actor, division_code=user_division(user, org_unit), org_unit_id=user.org_unit_id,
                  resource="user", resource_id=user.id)
    user.is_active = active
    forget_tokens_on_commit(session)
    audit.record(session, actor, "update", "user", user.id, division_code=user_division(user, org_unit),
                 request=request, detail={"is_active": active})
    session.flush()
    return user


def set_password(session: Session, *, username: str, password: str) -> User:
    """Set a password from the command line (an operator's reset)."""
    user = repo.user_by_username(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    validate_password(password)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    audit.record(session, None, "password_change", "user", user.id, division_code=user.scope_code,
                 detail={"via": "cli"})
    session.flush()
    return user


# --- org units --------------------------------------------------------------------------------

def list_org_units(session: Session, *, viewer: User, kind: str | None = None, level: str | None = None,
                   q: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[OrgUnitRead], int]:
    items, total = repo.list_org_units(session, viewer=viewer, kind=clean_text(kind), level=clean_text(level),
                                       q=clean_text(q), limit=limit, offset=offset)
    return [OrgUnitRead.model_validate(o) for o in items], total


def get_org_unit(session: Session, *, code: str) -> OrgUnit | None:
    return repo.org_unit_by_code(session, code)


# --- API tokens -------------------------------------------------------------------------------

def _token_owner(session: Session, *, actor: User | None, username: str | None) -> User:
    if username is None:
        if actor is None:
            raise ValidationFailed("name the user the token is for", field="username")
        owner = session.get(User, actor.id)
    else:
        owner = repo.user_by_username(session, username)
    if owner is None:
        raise NotFound(f"no user named {username!r}")
    if actor is not None and owner.id != actor.id:
        if not has_permission(actor, "tokens.manage"):
            raise Forbidden("your role may not manage other users' tokens (needs 'tokens.manage')")
        org_unit = session.get(OrgUnit, owner.org_unit_id) if owner.org_unit_id else None
        authorize(actor, division_code=user_division(owner, org_unit), org_unit_id=owner.org_unit_id,
                  resource="user", resource_id=owner.id)
    return owner


def create_token(session: Session, *, actor: User | None, username: str | None, name: str,
                 days: int | None, request: Request | None = None) -> TokenCreated:
    """Issue an API token; the token itself is in the result once and never stored."""
    if not name.strip():
        raise ValidationFailed("token name must not be empty", field="name")
    if days is not None and not 1 <= days <= 3650:
        raise ValidationFailed("days must be between 1 and 3650", field="days")
    owner = _token_owner(session, actor=actor, username=username)
    if not owner.is_active:
        raise ValidationFailed(f"account {owner.username!r} is disabled", field="username")
    row, token = issue_token(session, user=owner, name=name.strip(), days=days)
    audit.record(session, actor, "token_create", "api_token", row.prefix, division_code=owner.scope_code,
                 request=request, detail={"for": owner.username, "name": row.name, "days": days})
    return TokenCreated(**TokenRead.model_validate(row).model_dump(), token=token)


def revoke_token(session: Session, *, actor: User | None, prefix: str,
                 request: Request | None = None) -> ApiToken:
    row = repo.token_by_prefix(session, prefix.strip())
    if row is None:
        raise NotFound(f"no token with prefix {prefix!r}")
    owner = session.get(User, row.user_id)
    if actor is not None and owner is not None:
        _token_owner(session, actor=actor, username=owner.username)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        forget_tokens_on_commit(session)
        audit.record(session, actor, "token_revoke", "api_token", row.prefix,
                     division_code=owner.scope_code if owner else None, request=request)
    session.flush()
    return row


def list_tokens(session: Session, *, viewer: User | None, username: str | None = None) -> list[TokenRead]:
    """A viewer's own tokens, or a named user's (needs tokens.manage and scope). None: the CLI, all."""
    if viewer is None:
        owner = repo.user_by_username(session, username) if username else None
        if username and owner is None:
            raise NotFound(f"no user named {username!r}")
        rows = repo.list_tokens(session, user_ids=[owner.id] if owner else None)
    else:
        owner = _token_owner(session, actor=viewer, username=username)
        rows = repo.list_tokens(session, user_ids=[owner.id])
    return [TokenRead.model_validate(r) for r in rows]


# --- audit ------------------------------------------------------------------------------------

def list_audit(session: Session, *, viewer: User, action: str | None = None, username: str | None = None,
               resource_type: str | None = None, resource_id: str | None = None, limit: int = 50,
               offset: int = 0) -> tuple[list[AuditEntry], int]:
    if not has_permission(viewer, "audit.read"):
        raise Forbidden("your role may not read the audit log (needs permission 'audit.read')")
    if action and action not in audit.ACTIONS:
        raise ValidationFailed(f"unknown action {action!r}; one of: {', '.join(sorted(audit.ACTIONS))}",
                               field="action")
    return repo.list_audit(session, viewer=viewer, action=action, username=clean_text(username),
                           resource_type=clean_text(resource_type), resource_id=clean_text(resource_id),
                           limit=limit, offset=offset)


def describe(user: User) -> dict[str, Any]:
    """Short facts about an account for command-line output (no personal information)."""
    return {"username": user.username, "role": user.role, "scope_code": user.scope_code,
            "is_active": user.is_active, "is_demo": user.is_demo}
