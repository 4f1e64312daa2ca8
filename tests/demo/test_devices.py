"""The live device simulator: the seed's reporting devices report again at their intervals through
the ingestion path, and an injected fire or faulty sensor raises alarms that open cases."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.demo.devices import DeviceSimulator
from cityops.perception.models import Alarm, Device, TelemetryPoint


def test_every_reporting_device_reports_within_its_interval(db: Database) -> None:
    sim = DeviceSimulator(db, seed=3, fire_every_s=0, fault_every_s=0, outage_every_s=0)
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
    sim = DeviceSimulator(db, seed=5, fire_every_s=0, fault_every_s=0, outage_every_s=0)
    sim.load()
    assert sim.inject_fire()
    assert sim.inject_fault()
    for second in range(121):  # the faulty sensor's readings a minute apart: the rule's 60 s
        sim.tick(second)
    with db.sessions() as session:
        alarms = session.scalars(select(Alarm)).all()
    assert {"smoke", "high_temperature"} <= {a.type for a in alarms}
    assert all(a.case_id is not None for a in alarms if a.type in ("smoke", "high_temperature"))


def test_a_detector_that_goes_silent_gets_an_offline_alarm_and_clears_when_back(app: FastAPI,
                                                                                 db: Database) -> None:
    from datetime import UTC, datetime

    from cityops.perception import profiles
    from cityops.perception import service as perception_service

    sim = DeviceSimulator(db, seed=9, fire_every_s=0, fault_every_s=0, outage_every_s=0)
    sim.load()
    interval = profiles.registry().get("smoke_detector").report_interval_s
    for second in range(interval):  # everyone reports once
        sim.tick(second)
    assert sim.inject_outage(interval)
    [(token, back)] = sim.silent_until.items()
    for second in range(interval, back):  # its silence, while the others keep reporting
        sim.tick(second)
    # The no-data job as the server runs it, at that moment of the run.
    perception_service.offline_alarms(db, now=datetime.fromtimestamp(sim.start_ms / 1000 + back, UTC))
    with db.sessions() as session:
        device_id = session.scalar(select(Device.id).where(Device.access_token == token))
        [offline] = session.scalars(select(Alarm).where(Alarm.type == "offline")).all()  # that one only
    assert offline.device_id == device_id and offline.status == "ACTIVE_UNACK"
    for second in range(back, back + interval):
        sim.tick(second)
    with db.sessions() as session:
        assert session.get(Alarm, offline.id).status == "CLEARED_UNACK"  # type: ignore[union-attr]
