"""HTML pages: sign-in/out, the users list and a user's record, the audit log."""

from __future__ import annotations

import math
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cityops.accounts import service
from cityops.accounts.api import MAX_ID, Offset
from cityops.core.auth import audit as audit_log
from cityops.core.auth.deps import CurrentUser, OptionalUser, require_permission
from cityops.core.auth.middleware import check_login_csrf, clear_session_cookie, set_session_cookie
from cityops.core.auth.models import User
from cityops.core.auth.roles import ROLES
from cityops.core.auth.sessions import end_session, start_session
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError
from cityops.core.export import xlsx_response
from cityops.core.i18n import N_, gettext_for, locale_of
from cityops.core.templating import NavItem, register_nav, render

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
PAGE_SIZE = 50

register_nav(NavItem("users", N_("Users"), "/users", order=80, permission="users.read",
                     description=N_("Accounts in your scope, their roles and org units.")))
register_nav(NavItem(
    "audit", N_("Audit log"), "/audit", order=90, permission="audit.read",
    description=N_("Who read or changed what, including every read of personal information.")))

# What the login page says for each refusal; the service's reasons are English API messages.
LOGIN_ERRORS = {
    401: N_("Wrong username or password."),
    429: N_("Too many failed sign-ins. Try again in %(seconds)s seconds."),
    403: N_("The form has expired. Please try again."),
}

ACTION_LABELS = {
    "read": N_("Read"),
    "pii_read": N_("Personal information read"),
    "create": N_("Created"),
    "update": N_("Changed"),
    "delete": N_("Deleted"),
    "login": N_("Signed in"),
    "login_failed": N_("Sign-in failed"),
    "logout": N_("Signed out"),
    "password_change": N_("Password changed"),
    "token_create": N_("API token issued"),
    "token_revoke": N_("API token revoked"),
    "export": N_("Exported"),
}


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute URL or a scheme-relative '//host'."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _login_page(request: Request, *, next_url: str, username: str = "", error: str | None = None,
                error_args: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "accounts/login.html",
                  {"next": next_url, "username": username, "error": error, "error_args": error_args or {}},
                  status_code=status_code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_url=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
def login_submit(request: Request, session: SessionDep, settings: SettingsDep,
                 username: Annotated[str, Form(max_length=80)] = "",
                 password: Annotated[str, Form(max_length=256)] = "",
                 csrf_token: Annotated[str, Form()] = "",
                 next: Annotated[str, Form()] = "/") -> Response:
    target = safe_next(next)
    if not check_login_csrf(request, csrf_token):
        return _login_page(request, next_url=target, username=username, error=LOGIN_ERRORS[403],
                           status_code=403)
    outcome = service.login(session, username=username, password=password, settings=settings, request=request)
    if outcome.error is not None or outcome.user is None:
        error: CityopsError | None = outcome.error
        status = error.status if error else 401
        return _login_page(request, next_url=target, username=username,
                           error=LOGIN_ERRORS.get(status, LOGIN_ERRORS[401]),
                           error_args={"seconds": outcome.retry_after_s or 0}, status_code=status)
    previous = getattr(request.state, "session_key", None)
    if previous:  # signing in again replaces the browser's session
        end_session(session, previous)
    key = start_session(session, user=outcome.user, max_age_s=settings.session_max_age_s,
                        ip=audit_log.client_ip(request), user_agent=request.headers.get("user-agent"))
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, settings, key)
    return response


@router.post("/logout")
def logout_submit(request: Request, session: SessionDep, settings: SettingsDep,
                  user: OptionalUser) -> Response:
    key = getattr(request.state, "session_key", None)
    if key:
        end_session(session, key)
    if user is not None:
        service.logout(session, user=user, request=request)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response


def _pages(total: int, offset: int) -> dict[str, int]:
    return {"page": offset // PAGE_SIZE + 1, "pages": max(1, math.ceil(total / PAGE_SIZE)),
            "total": total, "offset": offset, "page_size": PAGE_SIZE}


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, session: SessionDep, user: CurrentUser, q: str | None = None,
               role: str | None = None, offset: Offset = 0) -> HTMLResponse:
    role = role or None
    items, total = service.list_users(session, viewer=user, q=q, role=role, limit=PAGE_SIZE, offset=offset)
    return render(request, "accounts/users.html", {
        "items": items, "q": q or "", "role": role or "", "roles": list(ROLES.values()),
        "query": _query(q=q, role=role), **_pages(total, offset)})


EXPORT_MAX_ROWS = 100_000


@router.get("/users/export.xlsx")
def users_export(request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser,
                 q: str | None = None, role: str | None = None) -> Response:
    """The filtered user list as Excel, masked as on the page."""
    items, _total = service.list_users(session, viewer=user, q=q, role=role or None, limit=EXPORT_MAX_ROWS)
    _ = gettext_for(locale_of(request)).gettext
    headers = [_("Username"), _("Name"), _("Role"), _("Org unit"), _("Division"), _("Phone"), _("Status")]
    rows = ([u.username, u.display_name, _(ROLES[u.role].label) if u.role in ROLES else u.role,
             u.org_unit.name if u.org_unit else "", u.scope_code or "", u.phone or "",
             _("Active") if u.is_active else _("Disabled")] for u in items)
    return xlsx_response(f"{_('Users')}.xlsx", _("Users"), headers, rows, timezone=settings.display_timezone)


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_page(user_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, session: SessionDep,
              user: CurrentUser) -> HTMLResponse:
    item = service.get_user(session, viewer=user, user_id=user_id, request=request)
    return render(request, "accounts/user.html", {"item": item, "role_def": ROLES.get(item.role)})


@router.get("/audit/export.xlsx")
def audit_export(request: Request, session: SessionDep, settings: SettingsDep,
                 user: Annotated[User, Depends(require_permission("audit.read"))],
                 action: str | None = None, username: str | None = None) -> Response:
    """The filtered audit log as Excel, times in the display time zone."""
    items, _total = service.list_audit(session, viewer=user, action=action or None,
                                       username=username or None, limit=EXPORT_MAX_ROWS)
    _ = gettext_for(locale_of(request)).gettext
    headers = [_("Time"), _("User"), _("Action"), _("Record"), _("Division"), _("IP address")]
    rows = ([e.at, e.username or "", _(ACTION_LABELS.get(e.action, e.action)),
             f"{e.resource_type} {e.resource_id or ''}".strip(), e.division_code or "", e.ip or ""]
            for e in items)
    return xlsx_response(f"{_('Audit log')}.xlsx", _("Audit log"), headers, rows,
                         timezone=settings.display_timezone)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep,
               user: Annotated[User, Depends(require_permission("audit.read"))],
               action: str | None = None, username: str | None = None,
               offset: Offset = 0) -> HTMLResponse:
    action = action or None
    items, total = service.list_audit(session, viewer=user, action=action, username=username or None,
                                      limit=PAGE_SIZE, offset=offset)
    return render(request, "accounts/audit.html", {
        "items": items, "action": action or "", "username": username or "",
        "actions": sorted(audit_log.ACTIONS), "action_labels": ACTION_LABELS,
        "query": _query(action=action, username=username),
        **_pages(total, offset)})
