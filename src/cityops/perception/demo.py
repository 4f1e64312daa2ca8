"""Synthetic devices for the demo, registered and read through the perception service: at full scale
the seed's 20,000 sensors (smoke detectors, parking bays, street lights ...) and 25,000 camera
analytics boxes at random points inside grids, each with a current reading (most online, some
offline, a few that never reported), and a day of history for a few devices of every profile so
their pages have charts. "small" makes a few dozen. Every device is labelled synthetic."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.core.seeding import Generator, SeedContext
from cityops.perception import profiles, service
from cityops.perception.ingest import Point
from cityops.perception.models import Device
from cityops.perception.schemas import DeviceCreate
from cityops.places import service as places_service

# Devices per profile; the full counts are the seed's 20,000 sensors and 25,000 cameras.
COUNTS = {
    "full": {"smoke_detector": 8_000, "temperature": 2_000, "water_level": 500, "rain_gauge": 300,
             "traffic_detector": 1_500, "parking_bay": 4_000, "street_light": 2_500, "manhole_cover": 1_000,
             "air_quality": 200, "camera_box": 25_000, "gateway": 300, "soil_moisture": 60,
             "slope_displacement": 40},
    "small": {"smoke_detector": 8, "temperature": 4, "water_level": 3, "rain_gauge": 2, "traffic_detector": 3,
              "parking_bay": 4, "street_light": 4, "manhole_cover": 3, "air_quality": 2, "camera_box": 8,
              "gateway": 2, "soil_moisture": 2, "slope_displacement": 2},
}
HISTORY_DEVICES = 3  # per sensor profile, with a day of readings
BATCH = 2_000
EVENTS = ("none", "none", "none", "crowd", "illegal_parking")


def reading(rng: random.Random, profile: str, ts: int) -> dict[str, float | str | bool]:
    """Plausible, healthy values of a profile's keys at a moment (a daily cycle where there is one),
    below every alarm limit."""
    hour = (ts // 3_600_000 + 8) % 24  # Beijing time
    day = math.sin((hour - 9) / 24 * 2 * math.pi)
    values: dict[str, dict[str, float | str | bool]] = {
        "smoke_detector": {"smoke": round(rng.uniform(0.01, 0.05), 3), "alarm": False,
                           "battery": rng.randint(40, 100)},
        "temperature": {"temperature": round(18 + 8 * day + rng.gauss(0, 1), 1),
                        "humidity": round(55 - 15 * day + rng.gauss(0, 3), 1)},
        # Slow as a river is: a random level at each reading would trip the rate-of-change rule.
        "water_level": {"level": round(1.8 + 0.3 * day + rng.uniform(-0.005, 0.005), 2)},
        "rain_gauge": {"rain_mm": round(max(0.0, rng.gauss(0.2, 0.5)), 1)},
        "traffic_detector": {"vehicles": max(0, round(30 + 25 * day + rng.gauss(0, 5))),
                             "speed_kmh": round(45 - 10 * day + rng.gauss(0, 4), 1)},
        "parking_bay": {"occupied": rng.random() < 0.4 + 0.3 * max(day, 0)},
        "street_light": {"on": not 6 <= hour < 18, "power_w": 120 if not 6 <= hour < 18 else 0},
        "manhole_cover": {"tilt_deg": round(rng.uniform(0, 2), 1), "open": False},
        "air_quality": {"pm25": round(rng.uniform(20, 90)), "pm10": round(rng.uniform(40, 140)),
                        "aqi": round(rng.uniform(35, 140))},
        "camera_box": {"event": rng.choice(EVENTS), "confidence": round(rng.uniform(0.6, 0.99), 2)},
        "gateway": {"rssi": rng.randint(-95, -60), "cpu": round(rng.uniform(5, 40), 1)},
        "soil_moisture": {"moisture": round(20 + rng.uniform(-1.0, 1.0), 1)},
        # Cumulative movement since installation: a stable slope creeps by a few hundredths of a mm.
        "slope_displacement": {"displacement_mm": round(12.0 + rng.uniform(-0.05, 0.05), 2)},
    }
    return values[profile]


def points_of(values: dict[str, float | str | bool], ts: int) -> list[Point]:
    """A reading's values as stored points (text stays text, booleans become 1/0)."""
    out: list[Point] = []
    for key, value in values.items():
        if isinstance(value, str):
            out.append((key, ts, None, value))
        else:
            out.append((key, ts, float(value), None))
    return out


def run(ctx: SeedContext) -> None:
    rng = ctx.rng("perception")
    now_ms = int(ctx.now.timestamp() * 1000)
    plan = [(code, i) for code, n in COUNTS[ctx.scale].items() for i in range(n)]
    advance = ctx.task("perception: devices and their readings", total=len(plan))
    with ctx.db.sessions() as session:
        index = places_service.build_index(session)
    for start in range(0, len(plan), BATCH):
        with ctx.db.session() as session:
            items = []
            for code, i in plan[start:start + BATCH]:
                lon, lat = places_service.random_point(rng, index)
                name = f"{profiles.registry().get(code).name_zh}-{i + 1:05d}"
                items.append(DeviceCreate(name=name, profile=code, lon=lon, lat=lat))
            made = service.register_devices(session, items=items, index=index, actor=None, synthetic=True,
                                            now=ctx.now)
            uploads = []
            for device in made:
                assert isinstance(device, Device), device
                fate = rng.random()
                if fate < 0.03:
                    continue  # never reported
                interval = profiles.registry().get(device.profile_code).report_interval_s * 1000
                # Most reported within their interval; some fell silent hours ago (offline).
                late = fate <= 0.08
                ts = now_ms - (rng.randrange(4, 48) * 3_600_000 if late else rng.randrange(interval))
                assert device.access_token is not None
                points = points_of(reading(rng, device.profile_code, ts), ts)
                charted = int(device.name.rsplit("-", 1)[1]) <= HISTORY_DEVICES
                if device.profile_code != "camera_box" and charted:
                    step = max(interval, 300_000)
                    for moment in range(ts - step, ts - 86_400_000, -step):
                        points += points_of(reading(rng, device.profile_code, moment), moment)
                uploads.append(service.Upload(device.access_token, "http", points=points,
                                              received_at=datetime.fromtimestamp(ts / 1000, UTC)))
            service.store_uploads(session, uploads, now=ctx.now)
        advance(min(BATCH, len(plan) - start))


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return (session.scalar(select(func.count()).select_from(Device).where(Device.synthetic.is_(True)))
                or 0) > 0


GENERATOR = Generator(name="perception", run=run, is_seeded=is_seeded)
