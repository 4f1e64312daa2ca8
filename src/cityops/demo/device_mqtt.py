"""The simulated devices over MQTT, as real ones report: each connects to the broker with its own
access token as the user name, publishes `{"ts": ms, "values": {...}}` on ThingsBoard's
`v1/devices/me/telemetry` at QoS 1 and disconnects (as battery-powered NB-IoT detectors do), so the
demo's readings take the whole device path: the broker's token check, the ingest workers, the store.

At the seed's scale that is about 150 connections a second, opened `CONCURRENCY` at a time on an event
loop of this sender's own (the simulator's tick runs on a plain thread)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import Any

import orjson

from cityops.core.mqtt import MqttClient, MqttError

log = logging.getLogger(__name__)

TOPIC = "v1/devices/me/telemetry"
CONCURRENCY = 200
SEND_TIMEOUT_S = 60.0


class MqttDevices:
    """`send(readings)` publishes (access token, ts, values) each as its device; it returns how many
    the broker acknowledged. `close()` when done."""

    def __init__(self, host: str, port: int, *, concurrency: int = CONCURRENCY) -> None:
        self.host, self.port, self.concurrency = host, port, concurrency
        self.failed = 0  # readings the broker never acknowledged (it refused the token, or was away)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mqtt-devices", daemon=True)
        self._thread.start()

    def send(self, readings: Sequence[tuple[str, int, dict[str, Any]]]) -> int:
        if not readings:
            return 0
        done = asyncio.run_coroutine_threadsafe(self._send_all(readings), self._loop)
        return done.result(SEND_TIMEOUT_S)

    async def _send_all(self, readings: Sequence[tuple[str, int, dict[str, Any]]]) -> int:
        gate = asyncio.Semaphore(self.concurrency)
        outcomes = await asyncio.gather(*(self._one(gate, token, ts, values)
                                          for token, ts, values in readings))
        failed = outcomes.count(False)
        if failed:
            self.failed += failed
            log.warning("%d of %d simulated readings were not taken by the broker", failed, len(readings))
        return len(outcomes) - failed

    async def _one(self, gate: asyncio.Semaphore, token: str, ts: int, values: dict[str, Any]) -> bool:
        async with gate:
            try:
                client = await MqttClient.connect(self.host, self.port, client_id=f"sim-{token[:20]}",
                                                  username=token)
            except MqttError as exc:
                log.debug("a simulated device could not connect: %s", exc)
                return False
            try:
                await client.publish(TOPIC, orjson.dumps({"ts": ts, "values": values}), qos=1)
                return True
            except MqttError as exc:
                log.debug("a simulated reading was not acknowledged: %s", exc)
                return False
            finally:
                await client.close()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        with contextlib.suppress(RuntimeError):
            self._loop.close()
