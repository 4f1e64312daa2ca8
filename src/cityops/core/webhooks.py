"""Signed outbound webhooks with retries and a dead-letter list.

A service calls `enqueue(session, url=..., payload=..., event_id=...)` in its own transaction, so a
webhook is queued exactly when the change it reports commits. `deliver_due` (run by
`cityops webhooks deliver`, e.g. every minute from a timer) POSTs what is due:

- the body is the payload as compact UTF-8 JSON; `X-Cityops-Signature: sha256=<hex>` is the
  HMAC-SHA256 of `"<timestamp>." + body` under the webhook secret, with the timestamp in
  `X-Cityops-Timestamp`, so a receiver can refuse replays of old messages (`verify` does both);
- a failure (no answer, or not 2xx) is retried after 1 min, 5 min, 30 min, 2 h and 12 h; after the
  last one the delivery is 'dead' and waits on the dead-letter list for `retry`;
- one delivery per (url, event id): enqueuing the same event twice is a no-op, and a delivered one is
  never sent again. A delivery is claimed before it is sent, so two runners never send the same one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import JSON, CheckConstraint, String, UniqueConstraint, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from cityops.config import Settings
from cityops.core.db import Base, Database, utcnow
from cityops.core.errors import Conflict, NotFound, ValidationFailed

log = logging.getLogger(__name__)

STATUSES = ("pending", "delivered", "dead")
# Waits before the 2nd, 3rd, ... attempt; one attempt more than waits, then the delivery is dead.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
           timedelta(hours=12))
MAX_ATTEMPTS = len(BACKOFF) + 1
# A claimed delivery is hidden from other runners this long; a runner that dies mid-send leaves it to
# be retried after the lease (at-least-once: receivers dedupe on X-Cityops-Event-Id).
CLAIM_LEASE = timedelta(minutes=5)
# Receivers should refuse signatures older (or newer) than this.
REPLAY_WINDOW_S = 300
SIGNATURE_HEADER = "X-Cityops-Signature"
TIMESTAMP_HEADER = "X-Cityops-Timestamp"
EVENT_HEADER = "X-Cityops-Event-Id"


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("url", "event_id"),
        CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    event_id: Mapped[str] = mapped_column(String(80), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


# --- signing ------------------------------------------------------------------------------------


def secret_from(settings: Settings) -> str:
    """The configured webhook secret, else one derived from the secret key (stable per installation,
    and not the secret key itself, which signs cookies)."""
    if settings.webhook_secret:
        return settings.webhook_secret
    return settings.derived_secret("cityops-webhooks")


def body_of(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str, body: bytes, *, event_id: str, now: datetime) -> dict[str, str]:
    timestamp = int(now.timestamp())
    return {"Content-Type": "application/json; charset=utf-8", "User-Agent": "cityops-webhooks",
            TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body),
            EVENT_HEADER: event_id}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: datetime,
           window_s: int = REPLAY_WINDOW_S) -> bool:
    """What a receiver does: the signature matches the raw body and the timestamp is recent."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered.get(TIMESTAMP_HEADER.lower(), ""))
    except ValueError:
        return False
    if abs(now.timestamp() - timestamp) > window_s:
        return False
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    return hmac.compare_digest(given, signature(secret, timestamp, body))


# --- queueing -----------------------------------------------------------------------------------


def enqueue(session: Session, *, url: str, payload: Mapping[str, Any], event_id: str,
            now: datetime | None = None) -> WebhookDelivery:
    """Queue a webhook in the caller's transaction; the same (url, event id) again returns the first."""
    if not url.startswith(("http://", "https://")) or len(url) > 500:
        raise ValidationFailed("webhook url must be an http(s) URL of at most 500 characters", field="url")
    existing = _find(session, url, event_id)
    if existing is not None:
        return existing
    now = now or utcnow()
    delivery = WebhookDelivery(url=url, event_id=event_id, payload=dict(payload), status="pending",
                               attempts=0, next_attempt_at=now, created_at=now)
    try:
        with session.begin_nested():
            session.add(delivery)
    except IntegrityError:  # queued concurrently by another worker
        found = _find(session, url, event_id)
        assert found is not None
        return found
    return delivery


def _find(session: Session, url: str, event_id: str) -> WebhookDelivery | None:
    return session.scalar(select(WebhookDelivery).where(WebhookDelivery.url == url,
                                                        WebhookDelivery.event_id == event_id))


# --- delivering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    retrying: int
    dead: int

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.dead


def _claim(db: Database, delivery_id: int, seen_next: datetime, now: datetime) -> bool:
    """Take a due delivery for this runner: only one runner's conditional UPDATE matches."""
    with db.sessions() as session:
        claimed = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                   WebhookDelivery.next_attempt_at == seen_next)
            .values(next_attempt_at=now + CLAIM_LEASE)
            .returning(WebhookDelivery.id)
        ).scalar()
        session.commit()
    return claimed is not None


def _send(client: httpx.Client, delivery: WebhookDelivery, secret: str, now: datetime) -> str | None:
    """POST once; None on a 2xx answer, else what went wrong."""
    body = body_of(delivery.payload)
    headers = signed_headers(secret, body, event_id=delivery.event_id, now=now)
    try:
        response = client.post(delivery.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"[:500]


def deliver_due(db: Database, *, secret: str, client: httpx.Client, now: datetime | None = None,
                limit: int = 100) -> DeliveryReport:
    """One pass: send every pending delivery whose time has come (oldest first, at most `limit`)."""
    now = now or utcnow()
    with db.sessions() as session:
        due = [(d.id, d.next_attempt_at) for d in session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))]
    delivered = retrying = dead = 0
    for delivery_id, seen_next in due:
        if not _claim(db, delivery_id, seen_next, now):
            continue
        with db.sessions() as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            assert delivery is not None
            error = _send(client, delivery, secret, now)
            delivery.attempts += 1
            if error is None:
                delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
                delivered += 1
            elif delivery.attempts >= MAX_ATTEMPTS:
                delivery.status, delivery.last_error = "dead", error
                dead += 1
                log.warning("webhook %s to %s is dead after %d attempts: %s", delivery.id, delivery.url,
                            delivery.attempts, error)
            else:
                delivery.next_attempt_at = now + BACKOFF[delivery.attempts - 1]
                delivery.last_error = error
                retrying += 1
            session.commit()
    return DeliveryReport(delivered=delivered, retrying=retrying, dead=dead)


def new_client(timeout_s: float = 10.0) -> httpx.Client:
    """The HTTP client deliveries use: a short timeout, no redirects (a signed POST is not re-sent
    elsewhere)."""
    return httpx.Client(timeout=timeout_s, follow_redirects=False)


# --- the dead-letter list -----------------------------------------------------------------------


def dead_letters(session: Session, *, limit: int = 1000) -> list[WebhookDelivery]:
    return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.status == "dead")
                                .order_by(WebhookDelivery.id.desc()).limit(limit)))


def retry(session: Session, *, delivery_id: int, now: datetime | None = None) -> WebhookDelivery:
    """Put a dead delivery back in the queue with a fresh ladder of attempts."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    if delivery.status != "dead":
        raise Conflict(f"webhook delivery {delivery_id} is {delivery.status}; only dead ones are retried")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, now or utcnow()
    session.flush()
    return delivery


def as_dict(delivery: WebhookDelivery) -> dict[str, Any]:
    return {"id": delivery.id, "url": delivery.url, "event_id": delivery.event_id,
            "status": delivery.status, "attempts": delivery.attempts,
            "next_attempt_at": delivery.next_attempt_at.isoformat(),
            "last_error": delivery.last_error, "created_at": delivery.created_at.isoformat(),
            "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
            "payload": delivery.payload}
