"""The live demo's devices over MQTT: each reports through the broker with its own access token, as
a real device does, and the ingest worker stores it; an injected fire still becomes alarms with cases."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.demo.device_mqtt import MqttDevices
from cityops.demo.devices import DeviceSimulator
from cityops.perception.models import Alarm, Device, TelemetryPoint
from tests.perception.mqtt_helpers import Broker, WorkerThread, broker, wait_until, worker

__all__ = ["broker", "worker"]


def points(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(TelemetryPoint)) or 0


def test_the_simulated_devices_report_through_the_broker(app: FastAPI, db: Database, broker: Broker,
                                                         worker: WorkerThread) -> None:
    over_mqtt = MqttDevices("127.0.0.1", broker.port, concurrency=20)
    try:
        sim = DeviceSimulator(db, seed=5, fire_every_s=0, fault_every_s=0, outage_every_s=0,
                              over_mqtt=over_mqtt)
        assert sim.load() > 0
        before = points(db)
        for second in range(60):  # the one-minute profiles all report once
            sim.tick(second)
        assert sim.report.readings > 0 and over_mqtt.failed == 0
        wait_until(lambda: points(db) > before, what="the readings stored by the ingest worker")
        assert sim.inject_fire()
        wait_until(lambda: _fire_alarm_with_case(db), what="the fire's alarm with its case")
        # A device whose token was revoked is refused by the broker: counted, never stored.
        with db.session() as session:
            device = session.scalar(select(Device).where(Device.access_token == sim.devices[0].token))
            assert device is not None
            device.access_token = None
        wait_until(lambda: over_mqtt.send([(sim.devices[0].token, sim.start_ms, {"x": 1.0})]) == 0,
                   what="the broker to refuse the revoked token")
        assert over_mqtt.failed >= 1
    finally:
        over_mqtt.close()


def _fire_alarm_with_case(db: Database) -> bool:
    with db.sessions() as session:
        return any(a.case_id is not None for a in session.scalars(select(Alarm).where(Alarm.type == "smoke")))
