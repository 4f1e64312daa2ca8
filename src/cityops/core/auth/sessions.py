"""Server-side web sessions and API tokens: issue, resolve to a user, end."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, event, select
from sqlalchemy.orm import Session

from cityops.core.auth.models import ApiToken, User, WebSession
from cityops.core.auth.security import new_api_token, new_session_key, sha256_hex, token_prefix
from cityops.core.db import utcnow

# last_seen/last_used are refreshed at most this often, so reads do not turn into writes.
TOUCH_INTERVAL = timedelta(seconds=60)
TOKEN_CACHE_S = 5.0


class CredentialsRejected(Exception):
    """A session key or token that does not (or no longer) identify an active user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def start_session(session: Session, *, user: User, max_age_s: int, ip: str | None = None,
                  user_agent: str | None = None) -> str:
    """Create a session row for a signed-in user; returns the key for the cookie (not stored)."""
    now = utcnow()
    # Sweep this user's stale rows here rather than in a background job.
    session.execute(delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at <= now))
    key = new_session_key()
    session.add(WebSession(key_hash=sha256_hex(key), user_id=user.id, created_at=now, last_seen_at=now,
                           expires_at=now + timedelta(seconds=max_age_s), ip=ip,
                           user_agent=(user_agent or "")[:200] or None))
    return key


def end_session(session: Session, key: str) -> None:
    session.execute(delete(WebSession).where(WebSession.key_hash == sha256_hex(key)))


def end_user_sessions(session: Session, user_id: int, *, keep_key: str | None = None) -> None:
    """Sign a user out everywhere (e.g. after a password change), optionally keeping one session."""
    stmt = delete(WebSession).where(WebSession.user_id == user_id)
    if keep_key is not None:
        stmt = stmt.where(WebSession.key_hash != sha256_hex(keep_key))
    session.execute(stmt)


# Built once: every request runs one of them, and composing a statement costs more than running it.
_SESSION_QUERY = (select(WebSession, User).join(User, User.id == WebSession.user_id)
                  .where(WebSession.key_hash == bindparam("key_hash")))


def user_for_session(session: Session, key: str) -> User:
    row = session.execute(_SESSION_QUERY, {"key_hash": sha256_hex(key)}).first()
    if row is None:
        raise CredentialsRejected("session has ended; sign in again")
    web_session, user = row
    now = utcnow()
    if web_session.expires_at <= now:
        session.delete(web_session)
        raise CredentialsRejected("session expired; sign in again")
    if not user.is_active:
        raise CredentialsRejected("account is disabled")
    if now - web_session.last_seen_at >= TOUCH_INTERVAL:
        web_session.last_seen_at = now
    return user


def issue_token(session: Session, *, user: User, name: str, days: int | None) -> tuple[ApiToken, str]:
    """Create an API token; returns the row and the token itself, which is shown once and not stored."""
    token = new_api_token()
    now = utcnow()
    row = ApiToken(token_hash=sha256_hex(token), prefix=token_prefix(token), name=name, user_id=user.id,
                   created_at=now, expires_at=None if days is None else now + timedelta(days=days))
    session.add(row)
    session.flush()
    return row, token


_TOKEN_QUERY = (select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == bindparam("token_hash")))


class VerifiedTokens:
    """API tokens verified in the last few seconds, by hash, with their user: a system sending
    hundreds of requests a second is looked up in the database once every few seconds rather than on
    every request, and with no worker-thread hop. The token's own expiry is checked on every request.

    Revoking a token or changing an account forgets them all in the process that made the change;
    other server processes see the change within TOKEN_CACHE_S. An entry is refreshed a second before
    it runs out by the one request that finds it due, so its other requests never all go to the
    database at once."""

    def __init__(self, ttl_s: float = TOKEN_CACHE_S, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_entries = max_entries
        # hash -> [user, token expiry, refresh due (monotonic), valid until (monotonic)]
        self._entries: dict[str, list[Any]] = {}

    def get(self, token: str) -> User | None:
        """The token's user, or None when the database must be asked (unknown, stale, or due)."""
        entry = self._entries.get(sha256_hex(token))
        if entry is None:
            return None
        user, expires_at, refresh_at, until = entry
        now = self.clock()
        if now >= until or (expires_at is not None and expires_at <= utcnow()):
            return None
        if now >= refresh_at:
            entry[2] = until  # this caller refreshes it; the others go on with the entry meanwhile
            return None
        return user  # type: ignore[no-any-return]

    def put(self, token: str, user: User, expires_at: datetime | None) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        now = self.clock()
        self._entries[sha256_hex(token)] = [user, expires_at, now + self.ttl_s - 1.0, now + self.ttl_s]

    def drop(self, token: str) -> None:
        self._entries.pop(sha256_hex(token), None)

    def forget(self) -> None:
        self._entries.clear()


verified_tokens = VerifiedTokens()


def forget_tokens_on_commit(session: Session) -> None:
    """After a change to a token or an account: this process asks the database again, from the
    moment the change is committed (forgotten earlier, a request could cache the old state again)."""
    verified_tokens.forget()
    event.listen(session, "after_commit", lambda _session: verified_tokens.forget(), once=True)


def _rejected(token: str, reason: str) -> CredentialsRejected:
    verified_tokens.drop(token)
    return CredentialsRejected(reason)


def user_for_token(session: Session, token: str) -> User:
    row = session.execute(_TOKEN_QUERY, {"token_hash": sha256_hex(token)}).first()
    if row is None:
        raise _rejected(token, "invalid token")
    api_token, user = row
    now = utcnow()
    if api_token.revoked_at is not None:
        raise _rejected(token, "token revoked")
    if api_token.expires_at is not None and api_token.expires_at <= now:
        raise _rejected(token, "token expired")
    if not user.is_active:
        raise _rejected(token, "account is disabled")
    if api_token.last_used_at is None or now - api_token.last_used_at >= TOUCH_INTERVAL:
        api_token.last_used_at = now
    verified_tokens.put(token, user, api_token.expires_at)
    return user
