"""Server-side web sessions and API tokens: issue, resolve to a user, end."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cityops.core.auth.models import ApiToken, User, WebSession
from cityops.core.auth.security import new_api_token, new_session_key, sha256_hex, token_prefix
from cityops.core.db import utcnow

# last_seen/last_used are refreshed at most this often, so reads do not turn into writes.
TOUCH_INTERVAL = timedelta(seconds=60)


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


def user_for_session(session: Session, key: str) -> User:
    row = session.execute(
        select(WebSession, User).join(User, User.id == WebSession.user_id)
        .where(WebSession.key_hash == sha256_hex(key))
    ).first()
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


def user_for_token(session: Session, token: str) -> User:
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == sha256_hex(token))
    ).first()
    if row is None:
        raise CredentialsRejected("invalid token")
    api_token, user = row
    now = utcnow()
    if api_token.revoked_at is not None:
        raise CredentialsRejected("token revoked")
    if api_token.expires_at is not None and api_token.expires_at <= now:
        raise CredentialsRejected("token expired")
    if not user.is_active:
        raise CredentialsRejected("account is disabled")
    if api_token.last_used_at is None or now - api_token.last_used_at >= TOUCH_INTERVAL:
        api_token.last_used_at = now
    return user
