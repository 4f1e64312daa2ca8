"""Authentication and CSRF protection for every request (a pure ASGI middleware).

For each HTTP request it works out who is asking and puts it in `request.state`:
  user         the signed-in User (detached from any session) or None
  auth_method  "session" (browser cookie), "token" (Authorization: Bearer) or None
  auth_error   why presented credentials were not accepted (shown by CurrentUser as a 401 reason)
  csrf         the session's synchronizer token (see `csrf_token(request)`)

A bad bearer token is answered at once with 401 and the reason ("token expired", "token revoked",
"invalid token"): a system presenting a token must learn it is wrong. A bad session cookie makes the
request anonymous and the cookie is cleared; pages then redirect to /login, the API answers 401.

Every unsafe request (POST/PUT/PATCH/DELETE) authenticated by the session cookie must carry the
session's CSRF token in the `X-CSRF-Token` header or a `csrf_token` form field; otherwise 403. Bearer
requests need none (a browser cannot be tricked into sending that header). The login routes check the
anonymous visitor's token themselves (see `check_login_csrf`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityops.config import Settings
from cityops.core.auth.models import User
from cityops.core.auth.security import (
    ANON_SALT,
    SESSION_SALT,
    CookieInvalid,
    csrf_for,
    sign,
    tokens_match,
    unsign,
)
from cityops.core.auth.sessions import (
    CredentialsRejected,
    user_for_session,
    user_for_token,
    verified_tokens,
)
from cityops.core.db import Database
from cityops.core.i18n import N_

SESSION_COOKIE = "cityops_session"
ANON_COOKIE = "cityops_csrf"
ANON_MAX_AGE_S = 24 * 3600
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The login routes run before there is a session; they check the anonymous token themselves.
LOGIN_PATHS = frozenset({"/login", "/api/auth/login"})
SKIP_PREFIXES = ("/static/", "/healthz")
JSON_PREFIXES = ("/api/", "/open311/")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Reasons shown by the API as they are and by the error page translated.
CSRF_MISSING = N_("CSRF token missing: send the X-CSRF-Token header or the csrf_token form field "
                  "(reload the page and try again)")
CSRF_MISMATCH = N_("CSRF token does not match this session (reload the page and try again)")


@dataclass
class Identity:
    user: User | None = None
    method: str | None = None
    session_key: str | None = None
    error: str | None = None
    clear_cookie: bool = False
    token_rejected: bool = False


def wants_json(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    accept = Headers(scope=scope).get("accept", "")
    return path.startswith(JSON_PREFIXES) or "application/json" in accept


def _resolve(db: Database, settings: Settings, authorization: str | None,
             session_cookie: str | None) -> Identity:
    """Runs in a worker thread: the database calls are blocking."""
    identity = Identity()
    with db.sessions() as session:
        try:
            if authorization is not None:
                identity.method = "token"
                identity.user = _token_user(session, authorization)
            elif session_cookie:
                identity.method = "session"
                key = unsign(settings.secret_key, SESSION_SALT, session_cookie, settings.session_max_age_s)
                identity.user = user_for_session(session, key)
                identity.session_key = key
        except (CookieInvalid, CredentialsRejected) as exc:
            identity.user = None
            identity.error = exc.reason
            identity.token_rejected = identity.method == "token"
            identity.clear_cookie = identity.method == "session"
            identity.method = None
        if session.dirty or session.deleted:
            session.commit()
    return identity


def _recent_token_user(authorization: str | None) -> User | None:
    scheme, _, token = (authorization or "").partition(" ")
    return verified_tokens.get(token.strip()) if scheme.lower() == "bearer" and token.strip() else None


def _token_user(session: Session, authorization: str) -> User:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CredentialsRejected("invalid token: use 'Authorization: Bearer <token>'")
    return user_for_token(session, token.strip())


def cookie_header(settings: Settings, name: str, value: str, *, max_age: int | None) -> tuple[bytes, bytes]:
    """A Set-Cookie header with the platform's flags: HttpOnly, SameSite=Lax, Secure per settings."""
    response = Response()
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=settings.secure_cookies)
    return response.raw_headers[-1]


def delete_cookie_header(settings: Settings, name: str) -> tuple[bytes, bytes]:
    response = Response()
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies)
    return response.raw_headers[-1]


def set_session_cookie(response: Response, settings: Settings, key: str) -> None:
    response.set_cookie(SESSION_COOKIE, sign(settings.secret_key, SESSION_SALT, key),
                        max_age=settings.session_max_age_s, path="/", httponly=True, samesite="lax",
                        secure=settings.secure_cookies)


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=settings.secure_cookies)


def csrf_token(request: Request) -> str:
    """The CSRF token to embed in forms (`csrf_token` field) and HTMX headers (`X-CSRF-Token`).

    For a signed-in browser it is the session's token; for an anonymous visitor (the login form) a
    token bound to a random nonce in the `cityops_csrf` cookie, which the middleware sets."""
    state = request.state
    token = getattr(state, "csrf", None)
    if token:
        return str(token)
    settings: Settings = request.app.state.settings
    nonce = getattr(state, "anon_nonce", None)
    if not nonce:
        nonce = secrets.token_urlsafe(16)
        state.anon_nonce = nonce
        state.anon_nonce_new = True
    return csrf_for(settings.secret_key, "anon|" + nonce)


def check_login_csrf(request: Request, given: str | None) -> bool:
    """For the login form: the token must match the visitor's own (anonymous or session) token."""
    settings: Settings = request.app.state.settings
    expected = [getattr(request.state, "csrf", None)]
    nonce = getattr(request.state, "anon_nonce", None)
    if nonce and not getattr(request.state, "anon_nonce_new", False):
        expected.append(csrf_for(settings.secret_key, "anon|" + nonce))
    return any(token and tokens_match(token, given) for token in expected)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SKIP_PREFIXES):
            await self.app(scope, receive, send)
            return
        state_app = scope["app"].state
        settings: Settings = state_app.settings
        db: Database = state_app.db
        request = Request(scope)
        authorization = request.headers.get("authorization")
        session_cookie = request.cookies.get(SESSION_COOKIE)
        identity = Identity()
        known = _recent_token_user(authorization)
        if known is not None:
            identity = Identity(user=known, method="token")
        elif authorization is not None or session_cookie:
            identity = await run_in_threadpool(_resolve, db, settings, authorization, session_cookie)

        state: dict[str, Any] = scope.setdefault("state", {})
        state["user"] = identity.user
        state["auth_method"] = identity.method
        state["auth_error"] = identity.error
        state["session_key"] = identity.session_key
        state["csrf"] = (csrf_for(settings.secret_key, identity.session_key)
                         if identity.session_key else None)
        anon = request.cookies.get(ANON_COOKIE)
        if anon:
            try:
                state["anon_nonce"] = unsign(settings.secret_key, ANON_SALT, anon, ANON_MAX_AGE_S)
            except CookieInvalid:
                state["anon_nonce"] = None

        if identity.token_rejected:
            await self._deny(scope, receive, send, 401, "unauthorized", identity.error or "invalid token",
                             extra_headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return

        if (scope["method"] in UNSAFE_METHODS and identity.method == "session"
                and scope["path"] not in LOGIN_PATHS):
            try:
                receive, reason = await self._check_csrf(scope, receive, state["csrf"])
            except ClientDisconnect:
                return
            if reason:
                await self._deny(scope, receive, send, 403, "csrf_failed", reason)
                return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if identity.clear_cookie:
                    headers.append(delete_cookie_header(settings, SESSION_COOKIE))
                if state.get("anon_nonce_new") and state.get("anon_nonce"):
                    headers.append(cookie_header(
                        settings, ANON_COOKIE, sign(settings.secret_key, ANON_SALT, state["anon_nonce"]),
                        max_age=None))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    async def _check_csrf(self, scope: Scope, receive: Receive, expected: str) -> tuple[Receive, str | None]:
        """Returns the receive channel to pass on (the body replayed if it was read) and the reason
        the request is refused, or None when the token matches."""
        headers = Headers(scope=scope)
        given = headers.get(CSRF_HEADER)
        if given is None and headers.get("content-type", "").startswith(FORM_TYPES):
            original = receive
            body = await _read_body(original)
            receive = _replay(body, original)  # the route reads the body again
            form = await Request(scope, _replay(body, original)).form()
            try:
                value = form.get(CSRF_FIELD)
                given = value if isinstance(value, str) else None
            finally:
                await form.close()
        if not given:
            return receive, CSRF_MISSING
        if not tokens_match(expected, given):
            return receive, CSRF_MISMATCH
        return receive, None

    async def _deny(self, scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str,
                    extra_headers: dict[str, str] | None = None) -> None:
        if wants_json(scope):
            response: Response = JSONResponse({"error": code, "message": message}, status_code=status)
        else:
            from cityops.core.templating import render_error

            response = render_error(Request(scope, receive), status, message)
        for name, value in (extra_headers or {}).items():
            response.headers[name] = value
        await response(scope, receive, send)
