"""The command board's data: one read of everything the operations centre watches on the map.

Monitoring stations with the level their readings reach, the areas of the warnings in force (the
platform's and imported ones), the response tasks of those warnings (and of warnings lifted in the last
hours, so a lift's cancellations stay in view) by status at their village or grid, the cameras within a
distance of the warning areas, the drones with their latest position and track, their patrol routes,
and the newest satellite scenes with their change areas. Tasks, cameras and drones are those in the
viewer's scope; stations, warnings and scenes are the city's reference picture."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import shapely
from pydantic import BaseModel
from shapely.geometry import MultiPolygon, Point, shape
from sqlalchemy.orm import Session

from cityops.cases import service as case_service
from cityops.core.auth.models import User
from cityops.core.auth.scope import in_scope, sees_everything
from cityops.core.db import utcnow
from cityops.core.errors import ValidationFailed
from cityops.core.i18n import N_
from cityops.perception import profiles
from cityops.perception import service as perception_service
from cityops.places import service as places_service
from cityops.warning import drones, response, satellite, service, stations
from cityops.warning import repository as repo
from cityops.warning.drones import DroneRead, RouteRead
from cityops.warning.schemas import ResponseTask, WarningRead

LEVEL_COLOURS = {"blue": "#1f6feb", "yellow": "#d4a72c", "orange": "#e16f24", "red": "#cf222e"}
NO_LEVEL_COLOUR = "#57606a"
TASK_BUCKETS = ("open", "acknowledged", "done", "cancelled")
BUCKET_LABELS = {"open": N_("Awaiting acknowledgement"), "acknowledged": N_("Acknowledged"),
                 "done": N_("Done"), "cancelled": N_("Cancelled")}
# Case states (cases/workflow.py) as the board groups a response task; a task closed by `cancel` is
# cancelled, not done (told apart by its timeline's last move).
BUCKET_OF_STATE = {
    "reported": "open", "returned": "open", "escalated": "open", "delegated": "open", "reopened": "open",
    "dispatched": "open", "accepted": "acknowledged", "in_progress": "acknowledged", "resolved": "done",
    "verified": "done", "closed": "done", "rejected": "cancelled", "merged": "cancelled",
}
RECENT_HOURS = 6  # lifted or expired warnings whose tasks still show
DEFAULT_CAMERA_M = 2_000
MAX_CAMERA_M = 20_000
MAX_CAMERAS = 2_000
MAX_WARNINGS = 200
SCENES_ON_BOARD = 20
METRES_PER_DEGREE = 111_320.0
TOWNSHIP_MARGIN_DEG = 5e-3


class BoardMetric(BaseModel):
    label: str
    value: float | None
    unit: str
    level: str | None


class BoardStation(BaseModel):
    code: str
    name: str
    kind_label: str
    lon: float
    lat: float
    level: str | None
    level_label: str | None
    colour: str
    reading_at: datetime | None
    metrics: list[BoardMetric]
    warning_id: int | None
    problem: str | None


class BoardWarning(BaseModel):
    id: int
    headline: str
    hazard_label: str
    level: str
    level_label: str
    colour: str
    status: str
    source: str
    sender_name: str
    expires: datetime
    area: dict[str, Any] | None
    url: str


class BoardTask(BaseModel):
    case_id: int
    number: str
    title: str
    item_name: str
    status: str  # the case's state
    bucket: str  # open, acknowledged, done, cancelled
    warning_id: int
    lon: float
    lat: float
    deadline_at: datetime | None
    overdue: bool


class BoardCamera(BaseModel):
    id: int
    name: str
    lon: float
    lat: float
    status: str
    distance_m: float  # to the nearest warning area (0 inside one)
    warning_ids: list[int]


class Board(BaseModel):
    generated_at: datetime
    stations: list[BoardStation]
    warnings: list[BoardWarning]
    tasks_by_status: dict[str, int]
    tasks: list[BoardTask]
    camera_within_m: int
    cameras: list[BoardCamera]
    drones: list[DroneRead]
    routes: list[RouteRead]
    scenes: list[satellite.SceneRead]


def colour_of(level: str | None) -> str:
    return LEVEL_COLOURS.get(level or "", NO_LEVEL_COLOUR)


def _stations(session: Session, locale: str) -> list[BoardStation]:
    return [
        BoardStation(
            code=s.code, name=s.name, kind_label=s.kind_label, lon=s.lon, lat=s.lat, level=s.level,
            level_label=s.level_label, colour=colour_of(s.level), reading_at=s.reading_at,
            metrics=[BoardMetric(label=m.label, value=m.value, unit=m.unit, level=m.level)
                     for m in s.metrics],
            warning_id=s.warning_id, problem=s.problem,
        )
        for s in stations.list_stations(session, locale=locale).items
    ]


def _board_warning(w: WarningRead) -> BoardWarning:
    return BoardWarning(id=w.id, headline=w.headline, hazard_label=w.hazard_label, level=w.level,
                        level_label=w.level_label, colour=colour_of(w.level), status=w.status,
                        source=w.source, sender_name=w.sender_name, expires=w.expires, area=w.area,
                        url=f"/warnings/{w.id}")


def _recently_ended(session: Session, now: datetime, locale: str) -> list[WarningRead]:
    since = now - timedelta(hours=RECENT_HOURS)
    ended = []
    for status in ("cancelled", "expired"):
        page = service.list_warnings(session, status=status, limit=MAX_WARNINGS, locale=locale)
        ended += [w for w in page.items if w.ended_at is not None and w.ended_at >= since]
    return ended


def _bucket(status: str, cancelled: bool) -> str:
    return "cancelled" if cancelled else BUCKET_OF_STATE.get(status, "open")


def _cancelled(session: Session, tasks: Sequence[ResponseTask], *, viewer: User) -> set[int]:
    """The case ids of the closed tasks whose last move was `cancel`."""
    closed = [t.case_id for t in tasks if t.status == "closed"]
    lines = case_service.timelines(session, viewer=viewer, case_ids=closed) if closed else {}
    return {case_id for case_id, events in lines.items() if events and events[-1].action == "cancel"}


def bucket_counts(session: Session, tasks: Sequence[ResponseTask], *, viewer: User) -> dict[str, int]:
    """How many of these response tasks are in each bucket (TASK_BUCKETS order)."""
    cancelled = _cancelled(session, tasks, viewer=viewer)
    counts = Counter(_bucket(t.status, t.case_id in cancelled) for t in tasks)
    return {bucket: counts.get(bucket, 0) for bucket in TASK_BUCKETS}


def tasks_of(session: Session, warning_ids: list[int], *, viewer: User) -> list[BoardTask]:
    """The response tasks of these warnings in the viewer's scope, each at its target (the grid or
    village it was placed at; a department's task at its case's point)."""
    found: list[BoardTask] = []
    for warning_id in warning_ids:
        tasks = response.response_of(session, warning_id=warning_id, viewer=viewer).tasks
        if not tasks:
            continue
        places = {t.code: (t.lon, t.lat) for t in repo.targets_of(session, warning_id)}
        cancelled = _cancelled(session, tasks, viewer=viewer)
        for task in tasks:
            place = places.get(task.target_code)
            if place is None:
                case = case_service.get_case(session, viewer=viewer, case_id=task.case_id)
                place = (case.lon, case.lat)
            found.append(BoardTask(
                case_id=task.case_id, number=task.number, title=task.title, item_name=task.item_name,
                status=task.status, bucket=_bucket(task.status, task.case_id in cancelled),
                warning_id=warning_id, lon=place[0], lat=place[1], deadline_at=task.deadline_at,
                overdue=task.overdue,
            ))
    return found


def _local_metres(lon0: float, lat0: float) -> Any:
    """An equirectangular projection in metres around a point: good to a few metres over the tens of
    kilometres a warning area and its cameras span."""
    scale_x = METRES_PER_DEGREE * math.cos(math.radians(lat0))

    def project(coords: Any) -> Any:
        out = coords.copy()
        out[:, 0] = (coords[:, 0] - lon0) * scale_x
        out[:, 1] = (coords[:, 1] - lat0) * METRES_PER_DEGREE
        return out

    return lambda geometry: shapely.transform(geometry, project)


def _townships_near(session: Session, area: Any) -> list[str]:
    """The townships an area (already widened by the distance) touches: every camera near the area lies
    in one of them. Their outlines are simplified, hence the margin."""
    wide = area.buffer(TOWNSHIP_MARGIN_DEG)
    layer = json.loads(places_service.geojson_layer(session, level="township", bbox=wide.bounds))
    return sorted(str(f["properties"]["code"]) for f in layer["features"]
                  if shape(f["geometry"]).intersects(wide))


def _reader(viewer: User, township: str) -> User | None:
    """The viewer as far as one township goes: a transient user (never stored) whose scope is the
    narrower of the two, so perception's scoped device list reads that township alone; None when the
    viewer's scope and the township do not meet."""
    scope = viewer.scope_code or ""
    if sees_everything(viewer) or in_scope(scope, township):
        narrower = township
    elif in_scope(township, scope):
        narrower = scope
    else:
        return None
    return User(id=viewer.id, username=viewer.username, display_name=viewer.display_name, role=viewer.role,
                scope_code=narrower, org_unit_id=viewer.org_unit_id, is_active=viewer.is_active)


def _cameras_in(session: Session, reader: User) -> list[dict[str, Any]]:
    """The devices of the camera profiles a reader sees: the map points (quick), or the whole list when a
    township holds more than a map shows."""
    found: list[dict[str, Any]] = []
    for profile in (p for p in profiles.registry().profiles if p.kind == "camera"):
        points = perception_service.map_points(session, viewer=reader, profile=profile.code)
        if len(points) >= perception_service.MAP_POINTS:
            page = perception_service.list_devices(session, viewer=reader, profile=profile.code,
                                                   limit=perception_service.MAX_EXPORT)
            points = [{"id": d.id, "name": d.name, "lon": d.lon, "lat": d.lat, "status": d.status}
                      for d in page.items]
        found += points
    return found


def cameras_near(session: Session, areas: dict[int, MultiPolygon], *, viewer: User,
                 within_m: int) -> list[BoardCamera]:
    """The devices of the camera profiles in the viewer's scope within `within_m` of a warning area,
    nearest first, with the warnings whose areas they watch. Read township by township (those the
    widened areas touch), so a warning over one township reads its cameras, not the city's."""
    if not areas:
        return []
    union = shapely.union_all(list(areas.values()))
    centre = union.centroid
    project = _local_metres(centre.x, centre.y)
    local = {warning_id: project(area) for warning_id, area in areas.items()}
    reach = within_m / METRES_PER_DEGREE / max(math.cos(math.radians(centre.y)), 0.1)
    candidates: dict[int, dict[str, Any]] = {}
    for township in _townships_near(session, union.buffer(reach)):
        reader = _reader(viewer, township)
        if reader is not None:
            candidates.update((p["id"], p) for p in _cameras_in(session, reader))
    found = []
    for device in candidates.values():
        point = project(Point(device["lon"], device["lat"]))
        distances = {warning_id: float(area.distance(point)) for warning_id, area in local.items()}
        near = sorted(w for w, d in distances.items() if d <= within_m)
        if near:
            found.append(BoardCamera(id=device["id"], name=device["name"], lon=device["lon"],
                                     lat=device["lat"], status=device["status"],
                                     distance_m=round(min(distances.values()), 1), warning_ids=near))
    found.sort(key=lambda c: (c.distance_m, c.id))
    return found[:MAX_CAMERAS]


def board(session: Session, *, viewer: User, locale: str = "zh", camera_m: int = DEFAULT_CAMERA_M,
          track_minutes: int = drones.TRACK_MINUTES, now: datetime | None = None) -> Board:
    if not 0 < camera_m <= MAX_CAMERA_M:
        raise ValidationFailed(f"camera_m must be above 0 and at most {MAX_CAMERA_M}", field="camera_m")
    if not 1 <= track_minutes <= 24 * 60:
        raise ValidationFailed("track_minutes must be between 1 and 1440", field="track_minutes")
    now = now or utcnow()
    active = service.list_warnings(session, status="active", limit=MAX_WARNINGS, locale=locale).items
    areas: dict[int, MultiPolygon] = {}
    for w in active:
        if w.area:
            geometry = service._multi(shape(w.area))
            if geometry is not None:
                areas[w.id] = geometry
    ended = _recently_ended(session, now, locale)
    tasks = tasks_of(session, [w.id for w in [*active, *ended]], viewer=viewer)
    counts = Counter(t.bucket for t in tasks)
    the_drones = drones.drones(session, viewer=viewer, track_minutes=track_minutes, now=now)
    return Board(
        generated_at=now,
        stations=_stations(session, locale),
        warnings=[_board_warning(w) for w in active],
        tasks_by_status={bucket: counts.get(bucket, 0) for bucket in TASK_BUCKETS},
        tasks=tasks,
        camera_within_m=camera_m,
        cameras=cameras_near(session, areas, viewer=viewer, within_m=camera_m),
        drones=the_drones,
        routes=drones.list_routes(session, drone_names={d.id: d.name for d in the_drones}),
        scenes=satellite.list_scenes(session, viewer=viewer, limit=SCENES_ON_BOARD, locale=locale),
    )

