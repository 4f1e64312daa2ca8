"""The demo's monitoring stations (data/stations.yaml): SYNTHETIC stations on Hebi's real rivers,
reservoir and hills, warning for real villages. Their devices are registered through perception at the
places the file gives (labelled synthetic), the file is loaded, and each station gets a day of
dry-weather readings, so the board has charts and the live demo's feed (episode.StationFeed) and its
heavy-rain episodes start from where the stations stand.

For the command board it also seeds SYNTHETIC drones (perception devices of the drone profile) with
patrol routes along the 淇河 and the 卫河 and their last minutes of positions, and a few SYNTHETIC
satellite scenes with change areas; the live demo's DroneFeed flies the drones along their routes
through the same ingestion path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shapely.geometry import LineString
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.core.db import Database
from cityops.core.errors import CityopsError
from cityops.core.seeding import Generator, SeedContext
from cityops.perception import service as perception_service
from cityops.perception.schemas import DeviceCreate
from cityops.places import service as places_service
from cityops.warning import drones, episode, satellite, stations
from cityops.warning import repository as repo
from cityops.warning.models import PatrolRoute, SatelliteScene

DAY_MS = 86_400_000


def register_devices(session: Session, config: stations.StationsConfig) -> None:
    """The devices of the stations that give a place and are not registered yet."""
    index = places_service.build_index(session)
    wanted = [DeviceCreate(name=s.device, profile=s.station_kind.profile, lon=s.place[0], lat=s.place[1])
              for s in config.stations if s.place is not None]
    for item, outcome in zip(wanted, perception_service.register_devices(
            session, items=wanted, index=index, actor=None, synthetic=True), strict=True):
        if isinstance(outcome, CityopsError) and outcome.code != "conflict":  # conflict: there already
            raise RuntimeError(f"demo station device {item.name}: {outcome.message}")


def run(ctx: SeedContext) -> None:
    if not _stations_seeded(ctx.db):
        _seed_stations(ctx)
    if not _board_seeded(ctx.db):
        seed_board(ctx.db, now=ctx.now)


def _seed_stations(ctx: SeedContext) -> None:
    config = stations.shipped()
    advance = ctx.task("warning: monitoring stations", total=len(config.stations))
    rng = ctx.rng("warning")
    with ctx.db.session() as session:
        register_devices(session, config)
        stations.load(session, config=config, now=ctx.now)
    now_ms = int(ctx.now.timestamp() * 1000)
    with ctx.db.session() as session:
        uploads = []
        for station in episode.feed_stations(session):
            step = station.interval_s * 1000
            points = [(station.key, ts, episode.healthy(station, rng), None)
                      for ts in range(now_ms - DAY_MS + step, now_ms + 1, step)]
            uploads.append(perception_service.Upload(station.token, "http", points=points,
                                                     received_at=ctx.now))
        perception_service.store_uploads(session, uploads, now=ctx.now)
    advance(len(config.stations))


def _stations_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return bool(repo.all_stations(session))


def _board_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return session.scalar(select(PatrolRoute.id).limit(1)) is not None \
            or session.scalar(select(SatelliteScene.id).limit(1)) is not None


def is_seeded(db: Database) -> bool:
    return _stations_seeded(db) and _board_seeded(db)


# --- the command board: drones, their patrol routes, satellite scenes (all SYNTHETIC) ---------------

# (drone device name, base [lon, lat], route name, route along the river, schedule). The lines follow
# the 淇河 from below the 盘石头 reservoir to 淇门 and the 卫河 through 浚县, by the demo stations' places.
DRONES: tuple[tuple[str, tuple[float, float], str, tuple[tuple[float, float], ...], str], ...] = (
    ("巡查无人机-淇河-01", (114.225, 35.698), "淇河干流巡查（盘石头水库—淇门）",
     ((114.115, 35.835), (114.17, 35.76), (114.225, 35.698), (114.28, 35.68), (114.33, 35.66),
      (114.33, 35.6), (114.33, 35.545)), "汛期每日 08:00、14:00、20:00"),
    ("巡查无人机-卫河-01", (114.43, 35.595), "卫河上段巡查（新镇—小河）",
     ((114.36, 35.505), (114.4, 35.55), (114.43, 35.595), (114.49, 35.63), (114.545, 35.665)),
     "汛期每日 09:00、15:00"),
    ("巡查无人机-卫河-02", (114.545, 35.665), "卫河下段巡查（道口—王庄）",
     ((114.545, 35.665), (114.565, 35.72), (114.585, 35.77)), "汛期每日 10:00、16:00"),
)
SEED_TRACK_S = 600  # minutes of positions seeded, so the board shows tracks before the simulator runs
DRONE_INTERVAL_S = 10
LAP_S = 900  # a patrol out and back along its route


def _square(lon: float, lat: float, half: float) -> dict[str, Any]:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


def synthetic_scenes(now: datetime) -> list[dict[str, Any]]:
    """A few scenes of the catalogue as a provider would deliver them, SYNTHETIC (source and ids say so):
    the 卫河 spreading over its banks at 新镇, a slope slipping at 鹤山, new building by the 淇河."""
    day = timedelta(days=1)

    def seen(days: int) -> datetime:  # late morning, Beijing time, when these satellites pass
        return (now - days * day).replace(hour=3, minute=12, second=0, microsecond=0)

    return [
        {"scene_id": f"SYN-GF1-WFV-{seen(2):%Y%m%d}", "sensor": "GF-1", "source": satellite.SYNTHETIC_SOURCE,
         "acquired_at": seen(2).isoformat(), "cloud_cover": 12.0, "resolution_m": 16.0,
         "footprint": _square(114.4, 35.56, 0.12),
         "changes": [{"kind": "flooding", "confidence": 0.91, "geometry": _square(114.362, 35.512, 0.008)}]},
        {"scene_id": f"SYN-GF2-PMS-{seen(5):%Y%m%d}", "sensor": "GF-2", "source": satellite.SYNTHETIC_SOURCE,
         "acquired_at": seen(5).isoformat(), "cloud_cover": 4.0, "resolution_m": 0.8,
         "footprint": _square(114.14, 35.96, 0.06),
         "changes": [{"kind": "landslide", "confidence": 0.78, "geometry": _square(114.128, 35.972, 0.002)}]},
        {"scene_id": f"SYN-S2-MSI-{seen(9):%Y%m%d}", "sensor": "Sentinel-2",
         "source": satellite.SYNTHETIC_SOURCE, "acquired_at": seen(9).isoformat(), "cloud_cover": 21.0,
         "resolution_m": 10.0,
         "footprint": _square(114.26, 35.72, 0.1),
         "changes": [{"kind": "illegal_building", "confidence": 0.66,
                      "geometry": _square(114.276, 35.742, 0.0015)}]},
    ]


def seed_board(db: Database, *, now: datetime) -> None:
    """The synthetic drones with their routes and last minutes of positions, and the synthetic scenes."""
    with db.session() as session:
        index = places_service.build_index(session)
        wanted = [DeviceCreate(name=name, profile=drones.DRONE_PROFILE, lon=base[0], lat=base[1])
                  for name, base, *_ in DRONES]
        for item, outcome in zip(wanted, perception_service.register_devices(
                session, items=wanted, index=index, actor=None, synthetic=True, now=now), strict=True):
            if isinstance(outcome, CityopsError) and outcome.code != "conflict":
                raise RuntimeError(f"demo drone {item.name}: {outcome.message}")
        ids = {d.name: d.id for d in perception_service.list_devices(
            session, viewer=None, profile=drones.DRONE_PROFILE, limit=drones.MAX_DRONES).items}
        for name, _base, route, line, schedule in DRONES:
            drones.create_route(session, actor=None, synthetic=True, now=now, data=drones.RouteCreate(
                name=route, drone_id=ids[name], schedule=schedule, status="active",
                line={"type": "LineString", "coordinates": [list(p) for p in line]}))
        satellite.import_scenes(session, data=json.dumps(synthetic_scenes(now)), actor=None, synthetic=True,
                                now=now)
    feed = DroneFeed(db)
    feed.load()
    now_ms = int(now.timestamp() * 1000)
    for second in range(-SEED_TRACK_S, 1, DRONE_INTERVAL_S):
        feed.tick(second, now_ms + second * 1000)


def drone_device_ids(session: Session) -> set[int]:
    """Every drone: the live demo flies them along their routes, never with a profile's generic values."""
    return {d.id for d in perception_service.list_devices(session, viewer=None, profile=drones.DRONE_PROFILE,
                                                          limit=drones.MAX_DRONES).items}


@dataclass(frozen=True)
class FlyingDrone:
    device_id: int
    token: str
    line: LineString
    phase_s: int


class DroneFeed:
    """The drones' side of the live demo: every DRONE_INTERVAL_S each drone with an active route reports
    where it is on its patrol (out along the route and back in LAP_S), its altitude and battery, through
    perception's ingestion path as the drone itself would. The clock is the device simulator's."""

    def __init__(self, db: Database, *, interval_s: int = DRONE_INTERVAL_S, lap_s: int = LAP_S) -> None:
        self.db = db
        self.interval_s = interval_s
        self.lap_s = lap_s
        self.flying: list[FlyingDrone] = []

    def load(self) -> int:
        """The drones to fly (the first active route of each drone of the synthetic devices); how many."""
        with self.db.sessions() as session:
            found: dict[int, FlyingDrone] = {}
            for route in session.scalars(select(PatrolRoute).where(PatrolRoute.status == "active")
                                         .order_by(PatrolRoute.id)):
                if route.device_id in found:
                    continue
                device = perception_service.get_device(session, viewer=None, device_id=route.device_id)
                if device.synthetic and device.access_token:
                    found[route.device_id] = FlyingDrone(route.device_id, device.access_token,
                                                         LineString(route.line["coordinates"]),
                                                         (len(found) * self.lap_s) // 3)
        self.flying = list(found.values())
        return len(self.flying)

    def position(self, drone: FlyingDrone, second: int) -> dict[str, float]:
        lap = ((second + drone.phase_s) % self.lap_s) / self.lap_s
        lon, lat = drones.point_along(drone.line, 2 * lap if lap < 0.5 else 2 - 2 * lap)
        # The battery runs down over a lap and is swapped at the base (the route's start).
        return {"lat": round(lat, 6), "lon": round(lon, 6), "alt": round(110 + 15 * abs(0.5 - lap), 1),
                "battery": round(100 - 70 * lap, 1)}

    def tick(self, second: int, ts: int) -> int:
        """Send the positions due in second t; how many readings."""
        if not self.flying or second % self.interval_s:
            return 0
        uploads = [perception_service.Upload(
            d.token, "http", points=[(k, ts, v, None) for k, v in self.position(d, second).items()],
            received_at=datetime.fromtimestamp(ts / 1000, UTC)) for d in self.flying]
        episode.store(self.db, uploads)
        return len(uploads)


GENERATOR = Generator(name="warning", run=run, is_seeded=is_seeded)
