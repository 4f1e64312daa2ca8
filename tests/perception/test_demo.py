"""The demo seed's devices: registered and read through the service, every profile, labelled
synthetic, owned by their departments, most reporting, a few with a day of history for charts."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.perception import demo, profiles, service
from cityops.perception.models import Device, TelemetryPoint
from cityops.warning import demo as warning_demo
from cityops.warning import stations as warning_stations


def test_the_small_seed_has_devices_of_every_profile(db: Database) -> None:
    with db.sessions() as session:
        # The warning package's demo stations and drones are devices too, registered at their own places.
        stations = warning_stations.device_ids(session) | warning_demo.drone_device_ids(session)
        devices = [d for d in session.scalars(select(Device)) if d.id not in stations]
        per_device = Counter(session.scalars(select(TelemetryPoint.device_id)).all())
        page = service.list_devices(session, viewer=None, limit=500)
    assert Counter(d.profile_code for d in devices) == demo.COUNTS["small"]
    assert {p.code for p in profiles.registry().profiles} == set(demo.COUNTS["small"]) | {"drone"}
    assert all(d.synthetic and d.org_unit_id is not None and d.access_token for d in devices)
    assert sum(d.status == "online" for d in page.items) > len(devices) / 2
    # A day of readings for the first devices of the sensor profiles: their pages have charts.
    charted = {d.profile_code for d in devices if per_device[d.id] > 100}
    assert charted == set(demo.COUNTS["small"]) - {"camera_box"}
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Device).where(Device.grid_code.is_(None))) == 0
