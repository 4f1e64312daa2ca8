"""A Mosquitto of the test's own on a free port, configured by cityops (plugin, credentials file,
persistence) so no test depends on the machine's broker; the ingest worker in a thread; paho devices.

With CI=true a missing mosquitto or an unbuilt plugin fails the test, never skips it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cityops.config import Settings
from cityops.core.db import Database
from cityops.perception import mqtt
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / ".build" / "mosquitto" / "cityops_auth.so"
DEVICES = ROOT / "tests" / "perception" / "devices"  # device programs on ThingsBoard's SDK


def tb_sdk_python() -> Path:
    """The python of ThingsBoard's SDK venv (made by ./run test); fails the test in CI without it."""
    python = ROOT / ".venv-tb" / "bin" / "python"
    if not python.exists():
        message = f"ThingsBoard's SDK venv {python} is missing (./run test makes it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until the condition holds (a deadline for something that must happen, not a timing)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Broker:
    settings: Settings
    command: list[str]
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise AssertionError(f"mosquitto did not start: {err}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # saves its persistent queue on the way out
            self.process.wait(10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()


def broker_settings(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={"mqtt_port": port, "mqtt_plugin": PLUGIN})


@pytest.fixture
def broker(settings: Settings, db: Database) -> Iterator[Broker]:
    port = free_port()
    configured = broker_settings(settings, port)
    try:
        command = mqtt.prepare_broker(configured, db, port=port, bind="127.0.0.1")
    except mqtt.BrokerUnavailable as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    running = Broker(configured, command, port)
    running.start()
    yield running
    running.stop()


@dataclass
class WorkerThread:
    """The ingest worker on its own event loop in a thread, as `cityops mqtt ingest` runs it."""

    worker: mqtt.IngestWorker
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    thread: threading.Thread | None = None
    stop_event: asyncio.Event | None = None

    def start(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            await self.worker.run(self.stop_event)

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),), daemon=True)
        self.thread.start()
        wait_until(self.worker.connected.is_set, what="the ingest worker to connect")

    def stop(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        if self.thread is not None:
            self.thread.join(15)
        self.loop.close()


@pytest.fixture
def worker(broker: Broker, db: Database) -> Iterator[WorkerThread]:
    running = WorkerThread(mqtt.IngestWorker(db, broker.settings, client_id="cityops-ingest-test"))
    running.start()
    yield running
    running.stop()


class Device:
    """A device on paho-mqtt speaking ThingsBoard's MQTT API with its access token."""

    def __init__(self, port: int, token: str, *, connect: bool = True) -> None:
        client_id = f"dev-{token[:8]}-{time.monotonic_ns()}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.username_pw_set(token)
        self.received: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.refused: Any = None
        self.client.on_message = lambda _c, _u, msg: self.received.append((msg.topic, msg.payload))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        if connect:
            self.client.connect("127.0.0.1", port, keepalive=30)
            self.client.loop_start()
            wait_until(lambda: self.connected.is_set() or self.refused is not None, timeout=10,
                       what="the device's CONNACK")

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.refused = reason
        else:
            self.connected.set()

    def _on_disconnect(self, *_args: Any) -> None:
        # Cleared, so that wait_connected after a broker restart waits for paho's reconnection.
        self.connected.clear()
        self.disconnected.set()

    def wait_connected(self) -> Device:
        """A device made a moment ago is known to the broker once the worker has rewritten the
        credentials (about a second); paho retries the connection until then."""
        self.client.reconnect_delay_set(0.2, 0.5)
        wait_until(self.connected.is_set, what="the device to be let in")
        self.refused = None  # what happened before it was let in
        self.disconnected.clear()
        return self

    def publish(self, topic: str, payload: str | bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
