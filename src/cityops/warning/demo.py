"""The demo's monitoring stations (data/stations.yaml): SYNTHETIC stations on Hebi's real rivers,
reservoir and hills, warning for real villages. Their devices are registered through perception at the
places the file gives (labelled synthetic), the file is loaded, and each station gets a day of
dry-weather readings, so the board has charts and the live demo's feed (episode.StationFeed) and its
heavy-rain episodes start from where the stations stand."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cityops.core.db import Database
from cityops.core.errors import CityopsError
from cityops.core.seeding import Generator, SeedContext
from cityops.perception import service as perception_service
from cityops.perception.schemas import DeviceCreate
from cityops.places import service as places_service
from cityops.warning import episode, stations
from cityops.warning import repository as repo

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


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return bool(repo.all_stations(session))


GENERATOR = Generator(name="warning", run=run, is_seeded=is_seeded)
