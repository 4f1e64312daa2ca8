"""The in-app inbox: short notices to users ("case HB-2024-000123 was escalated"), read on the
notifications page and counted in the top bar.

Any package calls `notify(session, user_ids=..., title=..., params=...)` in its own transaction
(typically from an outbox subscriber, so a notice goes out once, after the change committed). Title
and body are English msgids with %(name)s placeholders filled from `params` when shown, so each
reader sees them in their own language; a param whose key ends in "_label" is a msgid itself and is
translated too (e.g. a state's name).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, ForeignKey, Index, String, Text, func, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from cityops.core.db import Base, utcnow
from cityops.core.errors import NotFound
from cityops.core.i18n import gettext_for


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(300), default=None)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(default=None)


class NotificationRead(BaseModel):
    id: int
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationRead]
    total: int
    unread: int
    limit: int
    offset: int


def notify(
    session: Session,
    *,
    user_ids: Iterable[int | None],
    title: str,
    body: str = "",
    link: str | None = None,
    params: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> list[int]:
    """One notice per distinct user (None ids are skipped); returns the users notified."""
    now = now or utcnow()
    users = sorted({u for u in user_ids if u is not None})
    if users:  # one INSERT for all (added objects would be inserted one by one on SQLite)
        session.execute(insert(Notification), [
            {"user_id": user_id, "title": title[:200], "body": body, "link": link,
             "params": dict(params or {}), "created_at": now} for user_id in users])
    return users


def _text(msgid: str, params: dict[str, Any], locale: str) -> str:
    if not msgid:
        return ""
    translations = gettext_for(locale)
    values = {
        k: translations.gettext(v) if k.endswith("_label") and isinstance(v, str) else v
        for k, v in params.items()
    }
    try:
        return translations.gettext(msgid) % values
    except (KeyError, ValueError, TypeError):  # a catalogue and a notice that no longer agree
        return msgid


def to_read(row: Notification, *, locale: str) -> NotificationRead:
    return NotificationRead(
        id=row.id,
        title=_text(row.title, row.params, locale),
        body=_text(row.body, row.params, locale),
        link=row.link,
        created_at=row.created_at,
        read_at=row.read_at,
    )


def unread_count(session: Session, *, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count(Notification.id)).where(
                Notification.user_id == user_id, Notification.read_at.is_(None)
            )
        )
        or 0
    )


def list_for(
    session: Session,
    *,
    user_id: int,
    locale: str,
    unread_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> NotificationPage:
    """The user's own notices, newest first."""
    condition = [Notification.user_id == user_id]
    if unread_only:
        condition.append(Notification.read_at.is_(None))
    total = session.scalar(select(func.count(Notification.id)).where(*condition)) or 0
    rows = session.scalars(
        select(Notification)
        .where(*condition)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return NotificationPage(
        items=[to_read(r, locale=locale) for r in rows],
        total=total,
        unread=unread_count(session, user_id=user_id),
        limit=limit,
        offset=offset,
    )


def mark_read(
    session: Session, *, user_id: int, notification_id: int, now: datetime | None = None
) -> Notification:
    """Mark one of the user's own notices read; another user's answers 404 like a missing one."""
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"notification {notification_id} not found")
    if row.read_at is None:
        row.read_at = now or utcnow()
        session.flush()
    return row


def mark_all_read(session: Session, *, user_id: int, now: datetime | None = None) -> int:
    """Mark every unread notice of the user read; returns how many."""
    result = session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=now or utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
