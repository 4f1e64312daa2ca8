"""The live device simulator: the seed's reporting devices report again at their intervals through
the ingestion path, and an injected fire or faulty sensor raises alarms that open cases."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.demo.devices import DeviceSimulator
from cityops.perception.models import Alarm, Device, TelemetryPoint


def test_every_reporting_device_reports_within_its_interval(db: Database) -> None:
    sim = DeviceSimulator(db, seed=3, fire_every_s=0, fault_every_s=0)
    reporting = sim.load()
    with db.sessions() as session:
        before = session.scalar(select(func.count()).select_from(TelemetryPoint)) or 0
        silent = session.scalar(select(func.count()).select_from(Device).where(
            Device.last_activity_at.is_(None))) or 0
    assert reporting > 0
    for second in range(900):  # the longest interval of the demo's profiles (manhole covers)
        sim.tick(second)
    assert sim.report.readings >= reporting  # each at least once, the 60-second ones 15 times
    with db.sessions() as session:
        assert (session.scalar(select(func.count()).select_from(TelemetryPoint)) or 0) > before
        # The seed's never-reporting devices stay silent.
        assert session.scalar(select(func.count()).select_from(Device).where(
            Device.last_activity_at.is_(None))) == silent


def test_an_injected_fire_and_a_faulty_sensor_raise_alarms_with_cases(app: FastAPI, db: Database) -> None:
    """With the app's subscribers on the bus (the server's, in the demo), as a server drains them."""
    sim = DeviceSimulator(db, seed=5, fire_every_s=0, fault_every_s=0)
    sim.load()
    assert sim.inject_fire()
    assert sim.inject_fault()
    for second in range(121):  # the faulty sensor's readings a minute apart: the rule's 60 s
        sim.tick(second)
    with db.sessions() as session:
        alarms = session.scalars(select(Alarm)).all()
    assert {"smoke", "high_temperature"} <= {a.type for a in alarms}
    assert all(a.case_id is not None for a in alarms if a.type in ("smoke", "high_temperature"))
