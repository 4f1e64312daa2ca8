"""Police transfers and webhooks on PostgreSQL: concurrent duplicates make one case, deliveries once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from cityops import all_models
from cityops.cases.models import Case
from cityops.core import webhooks
from cityops.core.auth.models import User
from cityops.core.db import Base, Database
from cityops.core.seeding import seed
from cityops.governance import service
from cityops.governance.models import PoliceTransfer
from cityops.governance.schemas import PoliceTransferCreate
from cityops.places import service as places_service
from cityops.places.models import Grid
from tests.core.webhook_receiver import WebhookReceiver


@pytest.mark.postgres
def test_concurrent_transfers_and_a_delivery_on_postgres(pg_url: str, tmp_path: Path) -> None:
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        seed(db, scale="small", seed=7, quiet=True, files_root=tmp_path / "files")
        with db.session() as session:
            sender = session.scalar(select(User).where(User.username == "police.handler"))
            grid = session.scalars(select(Grid).order_by(Grid.code)).first()
            assert sender is not None and grid is not None
            index = places_service.cache_for(SimpleNamespace(db=db)).index(session)
        data = PoliceTransferCreate.model_validate({
            "incident_no": "J-PG-1", "category": "street_light", "lon": grid.centroid_lon,
            "lat": grid.centroid_lat, "callback_url": "http://127.0.0.1:9/x"})
        barrier = threading.Barrier(4)
        outcomes: list[tuple[int | None, bool]] = []

        def send() -> None:
            with db.session() as session:
                barrier.wait()
                transfer, created = service.receive_transfer(session, data=data, index=index, sender=sender)
                outcomes.append((transfer.case_id, created))

        threads = [threading.Thread(target=send) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(created for _, created in outcomes) == [False, False, False, True]
        assert len({case_id for case_id, _ in outcomes}) == 1
        with db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(PoliceTransfer)) == 1
            assert session.scalar(select(func.count()).select_from(Case).where(Case.source == "police")
                                  .where(Case.title.contains("J-PG-1"))) == 1

        with WebhookReceiver() as receiver, webhooks.new_client(timeout_s=5) as http:
            now = datetime(2026, 3, 2, tzinfo=UTC)
            for _ in range(2):  # the same event queued twice is one delivery
                with db.session() as session:
                    webhooks.enqueue(session, url=receiver.url, payload={"a": 1}, event_id="e-pg", now=now)
            assert webhooks.deliver_due(db, secret="s", client=http, now=now).delivered == 1
            assert webhooks.deliver_due(db, secret="s", client=http, now=now).attempted == 0
        assert len(receiver.received) == 1
    finally:
        db.dispose()
