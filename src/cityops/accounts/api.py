"""JSON routes: sign-in/out, the signed-in user, users, org units, API tokens and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from cityops.accounts import service
from cityops.accounts.schemas import (
    AuditEntryRead,
    LoginRequest,
    LoginResponse,
    MeRead,
    OrgUnitRead,
    Page,
    PasswordChange,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserRead,
)
from cityops.core.auth import audit
from cityops.core.auth.deps import CurrentUser, require_permission
from cityops.core.auth.middleware import clear_session_cookie, set_session_cookie
from cityops.core.auth.models import User
from cityops.core.auth.security import csrf_for
from cityops.core.auth.sessions import end_session, end_user_sessions, start_session
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api", tags=["accounts"])

# Bounded so that no number can overflow a database integer (PostgreSQL INTEGER is 32-bit).
MAX_ID = 2_147_483_647
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]
OrgUnitId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def error_json(error: CityopsError) -> JSONResponse:
    response = JSONResponse(error.to_dict(), status_code=error.status)
    retry = error.detail.get("retry_after_s")
    if retry is not None:
        response.headers["Retry-After"] = str(retry)
    return response


@router.post("/auth/login", response_model=LoginResponse,
             responses={401: {"description": "Wrong credentials"}, 429: {"description": "Locked out"}})
def login(body: LoginRequest, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Sign in; sets the HttpOnly session cookie and returns the CSRF token for unsafe requests."""
    outcome = service.login(session, username=body.username, password=body.password, settings=settings,
                            request=request)
    if outcome.error is not None or outcome.user is None:
        assert outcome.error is not None
        return error_json(outcome.error)
    previous = getattr(request.state, "session_key", None)
    if previous:  # signing in again replaces the browser's session
        end_session(session, previous)
    key = start_session(session, user=outcome.user, max_age_s=settings.session_max_age_s,
                        ip=audit.client_ip(request),
                        user_agent=request.headers.get("user-agent"))
    csrf = csrf_for(settings.secret_key, key)
    me = service.me(session, user=outcome.user, csrf=csrf, auth_method="session")
    response = JSONResponse(LoginResponse(user=me, csrf_token=csrf).model_dump(mode="json"))
    set_session_cookie(response, settings, key)
    return response


@router.post("/auth/logout")
def logout(request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> Response:
    """End this browser session (a bearer token stays valid: revoke it instead)."""
    key = getattr(request.state, "session_key", None)
    if key:
        end_session(session, key)
    service.logout(session, user=user, request=request)
    response = JSONResponse({"status": "signed out"})
    clear_session_cookie(response, settings)
    return response


@router.get("/me", response_model=MeRead)
def read_me(request: Request, session: SessionDep, user: CurrentUser) -> MeRead:
    return service.me(session, user=user, csrf=getattr(request.state, "csrf", None),
                      auth_method=getattr(request.state, "auth_method", None))


@router.post("/me/password")
def change_password(body: PasswordChange, request: Request, session: SessionDep,
                    user: CurrentUser) -> dict[str, str]:
    """Change one's own password; every other session of the account is signed out."""
    service.change_password(session, user=user, old_password=body.old_password,
                            new_password=body.new_password, request=request)
    end_user_sessions(session, user.id, keep_key=getattr(request.state, "session_key", None))
    return {"status": "password changed"}


@router.get("/users", response_model=Page[UserRead])
def list_users(session: SessionDep, settings: SettingsDep, user: CurrentUser, limit: Limit = 50,
               offset: Offset = 0, q: str | None = None, role: str | None = None,
               division: str | None = None, org_unit_id: OrgUnitId = None) -> Page[UserRead]:
    """Accounts in the caller's scope; phone and ID numbers are always masked in lists."""
    limit = min(limit, settings.page_size_max)
    items, total = service.list_users(session, viewer=user, q=q, role=role, division=division,
                                      org_unit_id=org_unit_id, limit=limit, offset=offset)
    return Page[UserRead](items=items, total=total, limit=limit, offset=offset)


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(body: UserCreate, request: Request, session: SessionDep, settings: SettingsDep,
                user: Annotated[User, Depends(require_permission("users.manage"))]) -> UserRead:
    created = service.create_user(session, username=body.username, password=body.password,
                                  display_name=body.display_name, role=body.role,
                                  org_unit_code=body.org_unit_code, scope_code=body.scope_code,
                                  phone=body.phone, id_number=body.id_number, locale=body.locale,
                                  actor=user, settings=settings, request=request)
    return service.get_user(session, viewer=user, user_id=created.id, request=request)


@router.get("/users/{user_id}", response_model=UserRead)
def read_user(user_id: UserId, request: Request, session: SessionDep, user: CurrentUser) -> UserRead:
    """One account in scope; phone and ID number unmasked only for roles with pii.view (audited)."""
    return service.get_user(session, viewer=user, user_id=user_id, request=request)


@router.get("/org-units", response_model=Page[OrgUnitRead])
def list_org_units(session: SessionDep, settings: SettingsDep, user: CurrentUser, limit: Limit = 50,
                   offset: Offset = 0, kind: str | None = None, level: str | None = None,
                   q: str | None = None) -> Page[OrgUnitRead]:
    """The city departments and the governance centres in the caller's scope."""
    limit = min(limit, settings.page_size_max)
    items, total = service.list_org_units(session, viewer=user, kind=kind, level=level, q=q, limit=limit,
                                          offset=offset)
    return Page[OrgUnitRead](items=items, total=total, limit=limit, offset=offset)


@router.get("/tokens", response_model=list[TokenRead])
def list_tokens(session: SessionDep, user: CurrentUser, username: str | None = None) -> list[TokenRead]:
    return service.list_tokens(session, viewer=user, username=username)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenCreate, request: Request, session: SessionDep, user: CurrentUser) -> TokenCreated:
    """Issue an API token (shown once in the answer)."""
    return service.create_token(session, actor=user, username=body.username, name=body.name, days=body.days,
                                request=request)


@router.delete("/tokens/{prefix}", response_model=TokenRead)
def revoke_token(prefix: str, request: Request, session: SessionDep, user: CurrentUser) -> TokenRead:
    row = service.revoke_token(session, actor=user, prefix=prefix, request=request)
    return TokenRead.model_validate(row)


@router.get("/audit", response_model=Page[AuditEntryRead])
def list_audit(session: SessionDep, settings: SettingsDep,
               user: Annotated[User, Depends(require_permission("audit.read"))], limit: Limit = 50,
               offset: Offset = 0, action: str | None = None, username: str | None = None,
               resource_type: str | None = None, resource_id: str | None = None) -> Page[AuditEntryRead]:
    """Audit entries about records in the caller's scope (and the caller's own actions)."""
    limit = min(limit, settings.page_size_max)
    items, total = service.list_audit(session, viewer=user, action=action, username=username,
                                      resource_type=resource_type, resource_id=resource_id, limit=limit,
                                      offset=offset)
    return Page[AuditEntryRead](items=[AuditEntryRead.model_validate(e) for e in items], total=total,
                                limit=limit, offset=offset)
