"""Nothing acknowledged is lost: the ingest worker killed with SIGKILL mid-stream and started again
stores every message the broker acknowledged to a device exactly once; a broker restarted under
load is reconnected to, and what it had queued is stored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.perception import mqtt
from cityops.perception.models import Device as DeviceRow
from cityops.perception.models import IngestRejection, TelemetryKeyName, TelemetryPoint
from tests.perception.mqtt_helpers import Broker, Device, WorkerThread, wait_until
from tests.perception.test_api import now_ms

MESSAGES = 400  # per device


def tokens(db: Database, count: int) -> list[str]:
    with db.sessions() as session:
        return list(session.scalars(select(DeviceRow.access_token).where(DeviceRow.access_token.is_not(None))
                                    .order_by(DeviceRow.id).limit(count)))  # type: ignore[arg-type]


START = now_ms() - 2 * 86_400_000  # days before the seed's readings, well inside the retention


KEYS = ("recovery_seq", "recovery_a", "recovery_b")  # keys of these tests only


def stored(db: Database, first: int = 0) -> int:
    """Points of the messages numbered `first` and on."""
    with db.sessions() as session:
        key_ids = select(TelemetryKeyName.id).where(TelemetryKeyName.key.in_(KEYS))
        return session.scalar(select(func.count()).select_from(TelemetryPoint).where(
            TelemetryPoint.key_id.in_(key_ids), TelemetryPoint.ts >= START + first)) or 0


def publish_all(device: Device, first: int, count: int) -> None:
    """Telemetry at QoS 1, each message acknowledged by the broker before the next (3 values each)."""
    for i in range(first, first + count):
        device.publish("v1/devices/me/telemetry", json.dumps(
            {"ts": START + i, "values": {"recovery_seq": i, "recovery_a": 20 + i % 7, "recovery_b": 90.5}}))


def run_publishers(devices: list[Device], first: int, count: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=publish_all, args=(d, first, count)) for d in devices]
    for thread in threads:
        thread.start()
    return threads


def worker_process(broker: Broker) -> subprocess.Popen[bytes]:
    settings = broker.settings
    env = {**os.environ, "CITYOPS_DATABASE_URL": settings.database_url,
           "CITYOPS_SECRET_KEY": settings.secret_key, "CITYOPS_ENVIRONMENT": "test",
           "CITYOPS_RUN_SCHEDULER": "false",
           "CITYOPS_MQTT_PORT": str(broker.port), "CITYOPS_MQTT_BROKER_DIR": str(settings.mqtt_broker_dir),
           "CITYOPS_MQTT_CREDENTIALS_FILE": str(settings.mqtt_credentials_file)}
    command = [str(Path(sys.executable).parent / "cityops"), "mqtt", "ingest", "--worker", "crash"]
    with open(settings.mqtt_broker_dir / "worker.log", "ab") as log:  # read by wait_stored on failure
        return subprocess.Popen(command, env=env, stdout=log, stderr=log)


def test_a_worker_killed_mid_stream_loses_nothing_and_stores_each_message_once(
        db: Database, broker: Broker) -> None:
    devices = [Device(broker.port, token).wait_connected() for token in tokens(db, 6)]
    total = len(devices) * MESSAGES * 3
    process = worker_process(broker)
    try:
        # A first start subscribes (until then the broker has no one to keep messages for): a
        # probe until it is stored, the same point each time, then the stream.
        wait_until(lambda: publish_all(devices[0], -1, 1) or stored(db, -1) == 3, what="the worker")
        publishers = run_publishers(devices, 0, MESSAGES)
        wait_until(lambda: stored(db) >= total // 4, what="a quarter stored")
        process.send_signal(signal.SIGKILL)  # mid-stream: batches in flight, PUBACKs unsent
        process.wait(10)
        assert stored(db) < total
        for thread in publishers:  # the broker keeps taking (and acknowledging) messages meanwhile
            thread.join()
        process = worker_process(broker)
        wait_until(lambda: stored(db) >= total, timeout=60, what="everything stored")
        assert stored(db) == total
        with db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(IngestRejection)) == 0
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
        for device in devices:
            device.close()


def test_the_worker_reconnects_after_a_broker_restart_and_nothing_queued_is_lost(
        db: Database, broker: Broker, worker: WorkerThread) -> None:
    devices = [Device(broker.port, token).wait_connected() for token in tokens(db, 3)]
    for thread in run_publishers(devices, 0, 100):
        thread.join()
    broker.stop()  # Mosquitto saves its queue on the way out
    worker.worker.connected.clear()
    broker.start()
    wait_until(worker.worker.connected.is_set, what="the worker to reconnect")
    for device in devices:
        device.wait_connected()
    for thread in run_publishers(devices, 100, 100):
        thread.join()
    wait_until(lambda: stored(db) >= len(devices) * 200 * 3, what="everything stored")
    assert stored(db) == len(devices) * 200 * 3
    for device in devices:
        device.close()


def test_several_workers_share_the_load_and_store_each_message_once(db: Database, broker: Broker) -> None:
    workers = [WorkerThread(mqtt.IngestWorker(db, broker.settings, client_id=f"cityops-ingest-{n}", batch=50))
               for n in (1, 2)]
    for running in workers:
        running.start()
    try:
        devices = [Device(broker.port, token).wait_connected() for token in tokens(db, 4)]
        for thread in run_publishers(devices, 0, 150):
            thread.join()
        total = len(devices) * 150 * 3
        wait_until(lambda: stored(db) >= total, what="everything stored")
        assert stored(db) == total
        # The broker's shared subscription handed each worker its part.
        assert all(running.worker.stored > 0 for running in workers)
        assert sum(running.worker.stored for running in workers) == len(devices) * 150
        for device in devices:
            device.close()
    finally:
        for running in workers:
            running.stop()
