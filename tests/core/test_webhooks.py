"""Signed outbound webhooks against a real local HTTP receiver: signature, retries, dead letters, once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cityops.config import Settings
from cityops.core import webhooks
from cityops.core.db import Database
from cityops.core.errors import Conflict, ValidationFailed
from cityops.core.webhooks import BACKOFF, MAX_ATTEMPTS, WebhookDelivery
from tests.core.webhook_receiver import WebhookReceiver

SECRET = "test-webhook-secret"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with webhooks.new_client(timeout_s=5) as http:
        yield http


def queue(db: Database, url: str, event_id: str = "evt-1", payload: dict[str, object] | None = None) -> int:
    with db.session() as session:
        delivery = webhooks.enqueue(session, url=url, payload=payload or {"incident_no": "J1", "名": "结案"},
                                    event_id=event_id, now=T0)
        session.flush()
        return delivery.id


def row(db: Database, delivery_id: int) -> WebhookDelivery:
    with db.sessions() as session:
        found = session.get(WebhookDelivery, delivery_id)
        assert found is not None
        return found


def test_a_delivery_is_signed_over_timestamp_and_raw_body(empty_db: Database, client: httpx.Client) -> None:
    with WebhookReceiver() as receiver:
        delivery_id = queue(empty_db, receiver.url)
        report = webhooks.deliver_due(empty_db, secret=SECRET, client=client, now=T0)
    assert report.delivered == 1 and len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert json.loads(body) == {"incident_no": "J1", "名": "结案"}
    assert headers["X-Cityops-Event-Id"] == "evt-1"
    assert headers["X-Cityops-Signature"].startswith("sha256=")
    assert webhooks.verify(SECRET, headers, body, now=T0 + timedelta(seconds=30))
    # A wrong secret, a changed body or a replay long after the timestamp are all refused.
    assert not webhooks.verify("other", headers, body, now=T0)
    assert not webhooks.verify(SECRET, headers, body.replace(b"J1", b"J2"), now=T0)
    assert not webhooks.verify(SECRET, headers, body, now=T0 + timedelta(hours=1))
    done = row(empty_db, delivery_id)
    assert done.status == "delivered" and done.attempts == 1 and done.delivered_at == T0


def test_a_500_is_retried_after_the_backoff(empty_db: Database, client: httpx.Client) -> None:
    with WebhookReceiver(answers=[500, 200]) as receiver:
        delivery_id = queue(empty_db, receiver.url)
        first = webhooks.deliver_due(empty_db, secret=SECRET, client=client, now=T0)
        assert first.retrying == 1
        failed = row(empty_db, delivery_id)
        assert failed.status == "pending" and failed.next_attempt_at == T0 + BACKOFF[0]
        assert failed.last_error is not None and "500" in failed.last_error
        # Not due yet: nothing is sent.
        early = webhooks.deliver_due(empty_db, secret=SECRET, client=client, now=T0 + timedelta(seconds=30))
        assert early.attempted == 0 and len(receiver.received) == 1
        later = webhooks.deliver_due(empty_db, secret=SECRET, client=client, now=T0 + BACKOFF[0])
    assert later.delivered == 1 and len(receiver.received) == 2
    assert receiver.received[0][1] == receiver.received[1][1]  # the same body, signed afresh
    assert row(empty_db, delivery_id).attempts == 2


def test_dead_after_the_last_attempt_then_retried_by_hand(empty_db: Database, client: httpx.Client) -> None:
    with WebhookReceiver(answers=[503]) as receiver:
        delivery_id = queue(empty_db, receiver.url)
        now = T0
        for wait in (*BACKOFF, None):
            webhooks.deliver_due(empty_db, secret=SECRET, client=client, now=now)
            if wait is not None:
                now += wait
        assert len(receiver.received) == MAX_ATTEMPTS
        dead = row(empty_db, delivery_id)
        assert dead.status == "dead" and dead.attempts == MAX_ATTEMPTS
        # Dead stays dead: later passes send nothing.
        after = webhooks.deliver_due(empty_db, secret=SECRET, client=client, now=now + timedelta(days=2))
        assert after.attempted == 0
        with empty_db.session() as session:
            assert [d.id for d in webhooks.dead_letters(session)] == [delivery_id]
            webhooks.retry(session, delivery_id=delivery_id, now=now)
        receiver.answers = [200]
        assert webhooks.deliver_due(empty_db, secret=SECRET, client=client, now=now).delivered == 1
    with empty_db.session() as session:
        assert webhooks.dead_letters(session) == []
        with pytest.raises(Conflict):
            webhooks.retry(session, delivery_id=delivery_id)


def test_an_unreachable_receiver_is_retried_with_the_reason(empty_db: Database, client: httpx.Client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    delivery_id = queue(empty_db, f"http://127.0.0.1:{port}/nobody")
    assert webhooks.deliver_due(empty_db, secret=SECRET, client=client, now=T0).retrying == 1
    assert "Connect" in (row(empty_db, delivery_id).last_error or "")


def test_never_sent_twice_once_delivered(empty_db: Database, client: httpx.Client) -> None:
    with WebhookReceiver() as receiver:
        first = queue(empty_db, receiver.url, "evt-9")
        webhooks.deliver_due(empty_db, secret=SECRET, client=client, now=T0)
        # The same event queued again (a redelivered event) is the same delivery, already done.
        assert queue(empty_db, receiver.url, "evt-9") == first
        for hours in (1, 24, 24 * 30):
            webhooks.deliver_due(empty_db, secret=SECRET, client=client, now=T0 + timedelta(hours=hours))
    assert len(receiver.received) == 1


def test_enqueue_refuses_a_url_that_is_not_http(empty_db: Database) -> None:
    with empty_db.session() as session, pytest.raises(ValidationFailed) as caught:
        webhooks.enqueue(session, url="file:///etc/passwd", payload={}, event_id="e")
    assert caught.value.field == "url"


def test_the_secret_defaults_to_one_derived_from_the_secret_key(settings: Settings) -> None:
    derived = webhooks.secret_from(settings)
    assert derived and derived != settings.secret_key
    assert webhooks.secret_from(settings.model_copy(update={"webhook_secret": "s3"})) == "s3"


def test_cli_lists_dead_letters_and_retries_one(empty_db: Database, settings: Settings,
                                                tmp_path: Path) -> None:
    with empty_db.session() as session:
        delivery = webhooks.enqueue(session, url="http://127.0.0.1:9/x", payload={"a": 1}, event_id="e1",
                                    now=T0)
        session.flush()
        delivery.status, delivery.attempts, delivery.last_error = "dead", MAX_ATTEMPTS, "HTTP 500: boom"
        delivery_id = delivery.id
    env = {**os.environ, "CITYOPS_DATABASE_URL": settings.database_url, "CITYOPS_ENVIRONMENT": "test"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cityops.cli", "webhooks", *args], env=env,
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)

    listed = cli("dead", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)
    assert entry["id"] == delivery_id and entry["last_error"] == "HTTP 500: boom"
    assert cli("retry", str(delivery_id)).returncode == 0
    assert row(empty_db, delivery_id).status == "pending"
    sent = cli("deliver", "--json")  # nothing listens on the discard port: retried later
    assert sent.returncode == 0 and json.loads(sent.stdout) == {"delivered": 0, "retrying": 1, "dead": 0}
    again = cli("retry", str(delivery_id))
    assert again.returncode == 2 and "only dead ones" in again.stderr and "Traceback" not in again.stderr
    assert cli("retry", "999").returncode == 2
