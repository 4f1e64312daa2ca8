"""Walking networks: import, storage, and the accessibility engine over a stored network."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy.orm import Session

from cityops.core.errors import Conflict, NotFound, ValidationFailed
from cityops.livability import osm
from cityops.livability import repository as repo
from cityops.livability.engine import DEFAULT_SPEED_MPS, Engine, StreetGraph, largest_component
from cityops.livability.models import StreetNetwork
from cityops.livability.schemas import NetworkImported, NetworkRead

MAX_NAME = 80
SOURCE_SYNTHETIC = "synthetic"
MAX_ISOCHRONE_MINUTES = 30.0


def _name(name: str) -> str:
    text = name.strip()
    if not text or len(text) > MAX_NAME:
        raise ValidationFailed(f"a network's name has 1 to {MAX_NAME} characters", field="name")
    return text


def save_network(session: Session, *, name: str, source: str, graph: StreetGraph, synthetic: bool = False,
                 replace: bool = False) -> tuple[StreetNetwork, bool]:
    """Store a graph under a name (flushes; the caller's unit of work commits, so a failure stores
    nothing). An existing network of that name is a Conflict unless `replace`. Returns the row and
    whether it replaced one."""
    name = _name(name)
    if graph.edge_count == 0:
        raise ValidationFailed("the network has no edges", field="file")
    old = repo.by_name(session, name)
    if old is not None:
        if not replace:
            raise Conflict(f"a network named {name!r} exists; import with --replace to replace it",
                           field="name")
        repo.delete_network(session, old)
    min_lon, min_lat, max_lon, max_lat = graph.bounds()
    row = StreetNetwork(name=name, source=source[:300], synthetic=synthetic, crs=graph.crs,
                        node_count=graph.node_count, edge_count=graph.edge_count,
                        length_km=round(float(graph.length.sum()) / 1000, 3), min_lon=min_lon,
                        min_lat=min_lat, max_lon=max_lon, max_lat=max_lat)
    session.add(row)
    session.flush()
    repo.add_graph(session, row.id, graph)
    return row, old is not None


def import_network(session: Session, *, path: Path, name: str, replace: bool = False) -> NetworkImported:
    """A walking network from an OpenStreetMap PBF file, stored under `name` (its largest connected
    part). The file is read whole before anything is written."""
    name = _name(name)
    if not replace and repo.by_name(session, name) is not None:
        raise Conflict(f"a network named {name!r} exists; import with --replace to replace it", field="name")
    parsed = osm.read_pbf(path)
    graph, dropped = largest_component(parsed.graph)
    row, replaced = save_network(session, name=name, source=path.name, graph=graph, replace=replace)
    return NetworkImported(network=NetworkRead.model_validate(row), ways=parsed.ways,
                           missing_nodes=parsed.missing_nodes, dropped_edges=dropped, replaced=replaced)


def list_networks(session: Session) -> list[NetworkRead]:
    return [NetworkRead.model_validate(n) for n in repo.all_networks(session)]


def _network(session: Session, name: str) -> StreetNetwork:
    row = repo.by_name(session, name)
    if row is None:
        raise NotFound(f"no network named {name!r}", field="network")
    return row


def get_network(session: Session, *, name: str) -> NetworkRead:
    return NetworkRead.model_validate(_network(session, name))


def load_graph(session: Session, *, name: str) -> StreetGraph:
    return repo.load_graph(session, _network(session, name))


# Engines of recently used networks, per process: building one (projection, graph, snapping index)
# takes a good part of a second on a city's network. A re-imported network is a new row (its id may be
# the old one's again on SQLite, its creation time is not).
_ENGINES: OrderedDict[tuple[int, float, float], Engine] = OrderedDict()
_ENGINES_LOCK = threading.Lock()
MAX_ENGINES = 4


def engine_for(session: Session, *, name: str, speed_mps: float = DEFAULT_SPEED_MPS) -> Engine:
    row = _network(session, name)
    key = (row.id, row.created_at.timestamp(), speed_mps)
    with _ENGINES_LOCK:
        if key in _ENGINES:
            _ENGINES.move_to_end(key)
            return _ENGINES[key]
    built = Engine(repo.load_graph(session, row), speed_mps=speed_mps)
    with _ENGINES_LOCK:
        _ENGINES[key] = built
        while len(_ENGINES) > MAX_ENGINES:
            _ENGINES.popitem(last=False)
    return built


def isochrone(session: Session, *, name: str, lon: float, lat: float, minutes: float,
              speed_mps: float = DEFAULT_SPEED_MPS) -> dict[str, Any]:
    """The area reachable on foot from a point within `minutes`, as a GeoJSON Feature (WGS84)."""
    if not 0 < minutes <= MAX_ISOCHRONE_MINUTES:
        raise ValidationFailed(f"minutes must be above 0 and at most {MAX_ISOCHRONE_MINUTES:g}",
                               field="minutes")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValidationFailed("lon, lat must be WGS84 degrees", field="lon")
    engine = engine_for(session, name=name, speed_mps=speed_mps)
    area = engine.isochrone(lon, lat, minutes=minutes)
    if area.is_empty:
        raise ValidationFailed(f"({lon:.6f}, {lat:.6f}) is more than {engine.max_snap_m:g} m from every "
                               f"street of network {name!r}", field="lon")
    area = shapely.set_precision(area, 1e-7)
    return {"type": "Feature", "geometry": shapely.geometry.mapping(area),
            "properties": {"network": name, "lon": lon, "lat": lat, "minutes": minutes,
                           "speed_mps": speed_mps, "distance_m": round(minutes * 60 * speed_mps, 1)}}
