"""The device side of the live demo: every synthetic device that reported at seeding reports again at
its profile's interval (each at its own phase, so the load is even), through the perception
service's ingestion path, or over MQTT as the devices themselves (device_mqtt.py; what `./run demo`
does), with injected incidents — a fire (a smoke detector and the camera boxes
around it), a faulty temperature sensor reading 85 °C, a smoke detector going silent for a while (an
offline alarm once its no-data rule's intervals pass) — so alarms and their cases appear while the
demo runs. Readings come from the seed's generator, healthy and below every limit."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from cityops.core.db import Database
from cityops.core.geo import distance_km
from cityops.demo.device_mqtt import MqttDevices
from cityops.perception import demo as perception_demo
from cityops.perception import profiles, service
from cityops.perception.models import Device
from cityops.warning import demo as warning_demo
from cityops.warning import episode
from cityops.warning import stations as warning_stations

log = logging.getLogger(__name__)
FIRE_RADIUS_M = 150.0


@dataclass(frozen=True)
class SimulatedDevice:
    token: str
    profile: str
    lon: float
    lat: float


@dataclass
class DeviceReport:
    readings: int = 0
    fires: int = 0
    faults: int = 0
    outages: int = 0


class DeviceSimulator:
    """`tick(t)` sends the readings due in second t; `run()` ticks once a second until stopped, with a
    fire every `fire_every_s`, a faulty sensor every `fault_every_s` and a detector going silent every
    `outage_every_s` seconds."""

    def __init__(self, db: Database, *, seed: int | None = None, fire_every_s: int = 600,
                 fault_every_s: int = 900, outage_every_s: int = 1200, rain_every_s: int = 0,
                 rain_speed: float = episode.DEFAULT_SPEED, over_mqtt: MqttDevices | None = None) -> None:
        self.db = db
        # The devices report through the broker, each with its own token, when given; else straight
        # into the ingestion service (what the HTTP API and the ingest workers call).
        self.over_mqtt = over_mqtt
        self.rng = random.Random(seed)
        self.fire_every_s = fire_every_s
        self.fault_every_s = fault_every_s
        self.outage_every_s = outage_every_s
        self.silent_until: dict[str, int] = {}  # token -> the second it reports again
        self.report = DeviceReport()
        self._stop = threading.Event()
        self.devices: list[SimulatedDevice] = []
        # Interval -> phase -> devices reporting when (second + phase) % interval == 0.
        self.schedule: dict[int, dict[int, list[SimulatedDevice]]] = {}
        self.faulty: dict[str, int] = {}  # token -> readings left reading 85 °C
        self.start_ms = int(time.time() * 1000)
        # The monitoring stations report what a station reads (and, every rain_every_s seconds, a
        # heavy-rain episode at rain_speed), not the profile's generic values.
        self.stations = episode.StationFeed(db, seed=seed, rain_every_s=rain_every_s, speed=rain_speed)
        self.drones = warning_demo.DroneFeed(db)  # the drones fly their patrol routes

    def load(self) -> int:
        """The synthetic devices that report (the seed's silent ones stay silent), the stations'
        among them fed by the stations' feed; how many."""
        with self.db.sessions() as session:
            fed = warning_stations.device_ids(session) | warning_demo.drone_device_ids(session)
            rows = session.execute(select(Device.id, Device.access_token, Device.profile_code, Device.lon,
                                          Device.lat)
                                   .where(Device.synthetic.is_(True), Device.access_token.is_not(None),
                                          Device.last_activity_at.is_not(None)).order_by(Device.id))
            self.devices = [SimulatedDevice(token, code, lon, lat)
                            for device_id, token, code, lon, lat in rows if token and device_id not in fed]
        schedule: dict[int, dict[int, list[SimulatedDevice]]] = defaultdict(lambda: defaultdict(list))
        for device in self.devices:
            interval = profiles.registry().get(device.profile).report_interval_s
            schedule[interval][self.rng.randrange(interval)].append(device)
        self.schedule = {i: dict(phases) for i, phases in schedule.items()}
        return len(self.devices) + self.stations.load() + self.drones.load()

    def _values(self, device: SimulatedDevice, ts: int) -> dict[str, float | str | bool]:
        values = perception_demo.reading(self.rng, device.profile, ts)
        left = self.faulty.get(device.token)
        if left:
            values["temperature"] = 85.0
            self.faulty[device.token] = left - 1
        return values

    def _send(self, batch: list[tuple[SimulatedDevice, dict[str, float | str | bool]]], ts: int) -> None:
        if self.over_mqtt is not None:
            self.report.readings += self.over_mqtt.send([(d.token, ts, values) for d, values in batch])
            return
        at = datetime.fromtimestamp(ts / 1000, UTC)  # the run's clock, which tests may run ahead
        uploads = [service.Upload(d.token, "http", points=perception_demo.points_of(values, ts),
                                  received_at=at) for d, values in batch]
        with self.db.session() as session:
            service.store_uploads(session, uploads)
        self.report.readings += len(uploads)

    def tick(self, second: int) -> None:
        ts = self.start_ms + second * 1000  # second t of the run, on the device's clock
        due = [d for interval, phases in self.schedule.items()
               for d in phases.get(-second % interval, ()) if self.silent_until.get(d.token, 0) <= second]
        if due:
            self._send([(d, self._values(d, ts)) for d in due], ts)
        self.report.readings += self.stations.tick(second, ts)
        self.report.readings += self.drones.tick(second, ts)
        if self.fire_every_s and second and second % self.fire_every_s == 0:
            self.inject_fire(second)
        if self.fault_every_s and second and second % self.fault_every_s == 0:
            self.inject_fault()
        if self.outage_every_s and second and second % self.outage_every_s == 0:
            self.inject_outage(second)

    def inject_fire(self, second: int = 0) -> bool:
        """Smoke at a random detector, and a fire seen by the camera boxes within 150 m of it."""
        detectors = [d for d in self.devices if d.profile == "smoke_detector"]
        if not detectors:
            return False
        detector = self.rng.choice(detectors)
        cameras = [c for c in self.devices if c.profile == "camera_box"
                   and abs(c.lat - detector.lat) < 0.002 and abs(c.lon - detector.lon) < 0.002
                   and distance_km(c.lon, c.lat, detector.lon, detector.lat) * 1000 <= FIRE_RADIUS_M]
        ts = self.start_ms + second * 1000
        batch: list[tuple[SimulatedDevice, dict[str, float | str | bool]]] = [
            (detector, {"smoke": round(self.rng.uniform(0.3, 0.6), 2), "alarm": True})]
        batch += [(c, {"event": "fire", "confidence": round(self.rng.uniform(0.85, 0.99), 2),
                       "snapshot": f"snapshots/{ts}-{i}.jpg"}) for i, c in enumerate(cameras)]
        self._send(batch, ts)
        self.report.fires += 1
        log.info("simulated fire at a smoke detector with %d camera(s) nearby", len(cameras))
        return True

    def inject_fault(self) -> bool:
        """A temperature sensor that reads 85 °C for its next three readings."""
        sensors = [d for d in self.devices if d.profile == "temperature"]
        if not sensors:
            return False
        self.faulty[self.rng.choice(sensors).token] = 3
        self.report.faults += 1
        return True

    def inject_outage(self, second: int = 0) -> bool:
        """A smoke detector that stops reporting for five of its intervals (a flat battery, a cut
        cable), then comes back."""
        detectors = [d for d in self.devices if d.profile == "smoke_detector"
                     and self.silent_until.get(d.token, 0) <= second]
        if not detectors:
            return False
        detector = self.rng.choice(detectors)
        interval = profiles.registry().get("smoke_detector").report_interval_s
        self.silent_until[detector.token] = second + 5 * interval
        self.report.outages += 1
        return True

    def stop(self) -> None:
        self._stop.set()

    def run(self, *, duration: float | None = None) -> DeviceReport:
        """Tick once a second (from the moment it started) until stopped or `duration` passes."""
        self.load()
        self.start_ms = int(time.time() * 1000)
        start = time.monotonic()
        second = 0
        while not self._stop.is_set() and (duration is None or second < duration):
            try:
                self.tick(second)
            except Exception:  # a database hiccup must not end the demo; the next second tries again
                log.exception("device simulator tick %d failed", second)
            second += 1
            if self._stop.wait(max(0.0, start + second - time.monotonic())):
                break
        return self.report


