"""Rollups and retention: minute and hour rollups computed from the raw points (late points too), the
raw points older than the retention really deleted, the rollups kept and served as series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.perception import service
from cityops.perception.models import TelemetryPoint, TelemetryRollup
from tests.accounts.helpers import login
from tests.perception.test_api import make_device

NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_rollups_survive_the_raw_points_they_summarise(client: TestClient, db: Database) -> None:
    device = make_device(client, db, profile="temperature")
    token, mine = device["access_token"], TelemetryRollup.device_id == device["id"]
    service.roll_up_and_expire(db, keep_days=30, now=NOW)  # the demo seed's own readings first
    old = NOW - timedelta(days=20)
    # Three points in one minute 20 days ago, one in the next minute, and one today.
    points = [{"ts": ms(old) + 1000 * i, "values": {"temperature": t}} for i, t in enumerate((10, 20, 30))]
    points += [{"ts": ms(old) + 61_000, "values": {"temperature": 50}},
               {"ts": ms(NOW) - 1000, "values": {"temperature": 22, "note": "text is not rolled up"}}]
    assert client.post(f"/api/v1/{token}/telemetry", json=points).status_code == 200
    first = service.roll_up_and_expire(db, keep_days=30, now=NOW)
    assert first.hours_rolled_up == 2 and first.raw_deleted == 0
    with db.sessions() as session:
        minutes = session.execute(select(TelemetryRollup.min, TelemetryRollup.max, TelemetryRollup.sum,
                                         TelemetryRollup.count).where(mine, TelemetryRollup.period_s == 60)
                                  .order_by(TelemetryRollup.bucket)).all()
        hours = session.execute(select(TelemetryRollup.count).where(mine, TelemetryRollup.period_s == 3600)
                                .order_by(TelemetryRollup.bucket)).scalars().all()
    assert [tuple(r) for r in minutes] == [(10, 30, 60, 3), (50, 50, 50, 1), (22, 22, 22, 1)]
    assert hours == [4, 1]

    # A late point for the old hour is rolled up again on the next pass, exactly once.
    late = {"ts": ms(old) + 2000 + 500, "values": {"temperature": 60}}
    assert client.post(f"/api/v1/{token}/telemetry", json=late).status_code == 200
    again = service.roll_up_and_expire(db, keep_days=30, now=NOW)
    assert again.hours_rolled_up == 1
    # With a retention of 10 days the old raw points go; their rollups stay.
    expired = service.roll_up_and_expire(db, keep_days=10, now=NOW)
    assert expired.raw_deleted == 5
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TelemetryPoint).where(
            TelemetryPoint.device_id == device["id"])) == 2  # today's two
        assert session.scalar(select(TelemetryRollup.count).where(
            mine, TelemetryRollup.period_s == 60, TelemetryRollup.bucket == ms(old))) == 4

    login(client, "admin")
    device_id = device["id"]
    series = client.get(f"/api/perception/devices/{device_id}/series", params={
        "key": "temperature", "every": "1m", "start": (old - timedelta(hours=1)).isoformat(),
        "end": NOW.isoformat()}).json()
    assert [v for _t, v in series["points"]] == [30.0, 50.0, 22.0]  # (10+20+30+60)/4, 50, 22
    raw = client.get(f"/api/perception/devices/{device_id}/series", params={
        "key": "temperature", "start": (old - timedelta(hours=1)).isoformat(), "end": NOW.isoformat()}).json()
    assert [v for _t, v in raw["points"]] == [22.0]
    bad = client.get(f"/api/perception/devices/{device_id}/series",
                     params={"key": "temperature", "every": "2h"})
    assert bad.status_code == 422
