"""Drones as mobile devices, and their patrol routes.

A drone is a perception device of the `drone` profile: it reports its position as telemetry (lat, lon,
alt, battery) through the ordinary ingestion path, so its latest position and recent track are read
back from perception's telemetry. A patrol route is a named line inside the city assigned to a drone,
with a schedule and a status; it is kept here (warning_patrol_routes)."""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from shapely.geometry import LineString, Point
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.core.auth.models import User
from cityops.core.db import utcnow
from cityops.core.errors import Conflict, NotFound, ValidationFailed
from cityops.core.geo import distance_km
from cityops.perception import service as perception_service
from cityops.warning import service
from cityops.warning.models import PatrolRoute

DRONE_PROFILE = "drone"
RouteStatus = Literal["planned", "active", "suspended", "retired"]
MAX_ROUTE_POINTS = 2_000
# The city outline is simplified (about 100 m); a route along its edge may stray that far outside it.
EDGE_TOLERANCE_DEG = 2e-3
TRACK_MINUTES = 30
MAX_TRACK_POINTS = 500
MAX_DRONES = 500
POSITION_KEYS = ("lat", "lon", "alt", "battery")


class RouteCreate(BaseModel):
    """A patrol route: a GeoJSON LineString (WGS84 lon/lat) inside the city, assigned to a drone."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    drone_id: int = Field(ge=1, le=2**31 - 1, description="The drone: a device of the drone profile")
    line: dict[str, Any] = Field(description="A GeoJSON LineString of at least 2 points")
    schedule: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    status: RouteStatus = "planned"


class RouteRead(BaseModel):
    id: int
    name: str
    drone_id: int
    drone_name: str
    line: dict[str, Any]
    length_km: float
    schedule: str
    status: str
    synthetic: bool
    created_at: datetime


class TrackPoint(BaseModel):
    at: datetime
    lon: float
    lat: float


class DroneRead(BaseModel):
    """A drone with its latest reported position (None before any) and its track of the last minutes."""

    id: int
    name: str
    status: str  # online, offline, inactive: the device's
    base_lon: float
    base_lat: float
    lon: float | None
    lat: float | None
    alt: float | None
    battery: float | None
    at: datetime | None
    track: list[TrackPoint]
    routes: list[int]


# --- routes ---------------------------------------------------------------------------------------


def _coordinates(geojson: dict[str, Any]) -> list[tuple[float, float]]:
    if geojson.get("type") != "LineString":
        raise ValidationFailed(
            f"the route must be a GeoJSON LineString, not {geojson.get('type')!r}", field="line"
        )
    raw = geojson.get("coordinates")
    if not isinstance(raw, list) or len(raw) < 2:
        raise ValidationFailed("the route needs at least 2 points", field="line")
    if len(raw) > MAX_ROUTE_POINTS:
        raise ValidationFailed(f"the route has more than {MAX_ROUTE_POINTS} points", field="line")
    points: list[tuple[float, float]] = []
    for i, position in enumerate(raw):
        if (not isinstance(position, list) or len(position) not in (2, 3)
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in position)):
            raise ValidationFailed(f"point {i} of the route is not [lon, lat]", field="line")
        lon, lat = float(position[0]), float(position[1])
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValidationFailed(f"point {i} of the route ({lon}, {lat}) is not WGS84 [lon, lat]",
                                   field="line")
        points.append((lon, lat))
    if len(set(points)) < 2:
        raise ValidationFailed("the route needs at least 2 distinct points", field="line")
    return points


def check_line(session: Session, geojson: dict[str, Any]) -> LineString:
    """The route's line, checked: WGS84 points, at least 2 distinct, inside the city (named point)."""
    line = LineString(_coordinates(geojson))
    city = service._city(session)
    if city is None:
        return line
    name, outline = city
    inside = outline.buffer(EDGE_TOLERANCE_DEG)
    for i, (lon, lat) in enumerate(line.coords):
        if not inside.covers(Point(lon, lat)):
            raise ValidationFailed(f"point {i} of the route ({lon:.6f}, {lat:.6f}) lies outside {name}",
                                   field="line")
    if not inside.covers(line):
        raise ValidationFailed(f"the route leaves {name} between two of its points", field="line")
    return line


def length_km(line: LineString) -> float:
    coords = list(line.coords)
    return sum(distance_km(a[0], a[1], b[0], b[1]) for a, b in itertools.pairwise(coords))


def _drone(session: Session, viewer: User | None, drone_id: int) -> Any:
    try:
        device = perception_service.get_device(session, viewer=viewer, device_id=drone_id)
    except NotFound:
        raise ValidationFailed(f"no drone with id {drone_id}", field="drone_id") from None
    if device.profile != DRONE_PROFILE:
        raise ValidationFailed(f"device {drone_id} ({device.name}) is a {device.profile}, not a drone",
                               field="drone_id")
    return device


def create_route(session: Session, *, data: RouteCreate, actor: User | None, synthetic: bool = False,
                 now: datetime | None = None) -> RouteRead:
    """Store a patrol route for a drone (the line checked against the city)."""
    now = now or utcnow()
    drone = _drone(session, actor, data.drone_id)
    line = check_line(session, data.line)
    if session.scalar(select(PatrolRoute.id).where(PatrolRoute.name == data.name)) is not None:
        raise Conflict(f"a patrol route named {data.name!r} exists already", field="name")
    route = PatrolRoute(
        name=data.name, device_id=drone.id, line=_geojson(line), length_km=round(length_km(line), 3),
        schedule=data.schedule, status=data.status, synthetic=synthetic,
        created_by_id=actor.id if actor is not None and actor.id else None, created_at=now, updated_at=now,
    )
    session.add(route)
    session.flush()
    return _route_read(route, drone.name)


def _geojson(line: LineString) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [[round(x, 6), round(y, 6)] for x, y in line.coords]}


def _route_read(route: PatrolRoute, drone_name: str) -> RouteRead:
    return RouteRead(id=route.id, name=route.name, drone_id=route.device_id, drone_name=drone_name,
                     line=route.line, length_km=route.length_km, schedule=route.schedule, status=route.status,
                     synthetic=route.synthetic, created_at=route.created_at)


def list_routes(session: Session, *, drone_names: dict[int, str] | None = None) -> list[RouteRead]:
    """Every patrol route, by name (drone names from `drone_names`, the id otherwise)."""
    names = drone_names or {}
    rows = session.scalars(select(PatrolRoute).order_by(PatrolRoute.name)).all()
    return [_route_read(r, names.get(r.device_id, str(r.device_id))) for r in rows]


# --- positions ------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _position(lon: float | None, lat: float | None) -> bool:
    return lon is not None and lat is not None and -180 <= lon <= 180 and -90 <= lat <= 90


def _track(session: Session, viewer: User | None, drone_id: int, *, since: datetime,
           now: datetime) -> list[TrackPoint]:
    """The positions reported since a moment, oldest first (a point needs both lat and lon)."""
    keys = {key: perception_service.series(session, viewer=viewer, device_id=drone_id, key=key, start=since,
                                           end=now, limit=MAX_TRACK_POINTS).points
            for key in ("lon", "lat")}
    lats = {ts: _number(v) for ts, v in keys["lat"]}
    track = []
    for ts, value in keys["lon"]:
        lon, lat = _number(value), lats.get(ts)
        if _position(lon, lat):
            assert lon is not None and lat is not None
            track.append(TrackPoint(at=datetime.fromtimestamp(ts / 1000, tz=now.tzinfo), lon=lon, lat=lat))
    return track


def drones(session: Session, *, viewer: User | None, track_minutes: int = TRACK_MINUTES,
           now: datetime | None = None) -> list[DroneRead]:
    """The drones in the viewer's scope, each with its latest position and recent track."""
    now = now or utcnow()
    page = perception_service.list_devices(session, viewer=viewer, profile=DRONE_PROFILE, limit=MAX_DRONES)
    routes: dict[int, list[int]] = {}
    for route in session.scalars(select(PatrolRoute).order_by(PatrolRoute.id)):
        routes.setdefault(route.device_id, []).append(route.id)
    found = []
    for item in page.items:
        device = perception_service.get_device(session, viewer=viewer, device_id=item.id)
        latest = {k: device.latest[k] for k in POSITION_KEYS if k in device.latest}
        lon = _number(latest["lon"].value) if "lon" in latest else None
        lat = _number(latest["lat"].value) if "lat" in latest else None
        placed = _position(lon, lat)
        found.append(DroneRead(
            id=device.id, name=device.name, status=device.status, base_lon=device.lon, base_lat=device.lat,
            lon=lon if placed else None, lat=lat if placed else None,
            alt=_number(latest["alt"].value) if "alt" in latest else None,
            battery=_number(latest["battery"].value) if "battery" in latest else None,
            at=latest["lat"].at if placed else None,
            track=_track(session, viewer, device.id, since=now - timedelta(minutes=track_minutes), now=now),
            routes=routes.get(device.id, []),
        ))
    return found


def point_along(line: LineString, fraction: float) -> tuple[float, float]:
    """The point a fraction (0..1, wrapping) of the way along a line: where a patrolling drone is."""
    point = line.interpolate(fraction % 1.0, normalized=True)
    return float(point.x), float(point.y)

