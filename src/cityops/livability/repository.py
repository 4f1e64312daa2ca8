"""Queries of the livability package: networks, and their nodes and edges as arrays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import shapely
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from cityops.core.db import table_of
from cityops.livability.engine import StreetGraph
from cityops.livability.models import Facility, FacilityEntrance, NetworkEdge, NetworkNode, StreetNetwork

BATCH = 20_000


def by_name(session: Session, name: str) -> StreetNetwork | None:
    return session.scalar(select(StreetNetwork).where(StreetNetwork.name == name))


def all_networks(session: Session) -> list[StreetNetwork]:
    return list(session.scalars(select(StreetNetwork).order_by(StreetNetwork.name)))


def delete_network(session: Session, network: StreetNetwork) -> None:
    """The network with its nodes and edges (explicitly: SQLite enforces no cascade without its pragma)."""
    session.execute(delete(NetworkEdge).where(NetworkEdge.network_id == network.id))
    session.execute(delete(NetworkNode).where(NetworkNode.network_id == network.id))
    session.delete(network)
    session.flush()


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start:start + BATCH]


def add_graph(session: Session, network_id: int, graph: StreetGraph) -> None:
    """The graph's nodes and edges, by Core multi-row inserts (a city has 10^5 of each)."""
    lon, lat = graph.lon.tolist(), graph.lat.tolist()
    osm = graph.osm_id.tolist() if graph.osm_id is not None else [None] * len(lon)
    nodes = [{"network_id": network_id, "id": i, "lon": x, "lat": y, "osm_id": o}
             for i, (x, y, o) in enumerate(zip(lon, lat, osm, strict=True))]
    shapes: list[bytes | None] = [None] * graph.edge_count
    if len(graph.shape_edge):
        coords, index = graph.edge_coordinates(graph.lon, graph.lat, graph.shape_lon, graph.shape_lat)
        bent = np.unique(graph.shape_edge)
        keep = np.isin(index, bent)
        lines = shapely.linestrings(coords[keep], indices=np.unique(index[keep], return_inverse=True)[1])
        for e, wkb in zip(bent.tolist(), shapely.to_wkb(lines).tolist(), strict=True):
            shapes[e] = wkb
    edges = [{"network_id": network_id, "id": i, "u": a, "v": b, "length_m": w, "geometry": g}
             for i, (a, b, w, g) in enumerate(zip(graph.u.tolist(), graph.v.tolist(), graph.length.tolist(),
                                                  shapes, strict=True))]
    connection = session.connection()
    for rows in _batches(nodes):
        connection.execute(insert(table_of(NetworkNode)), rows)
    for rows in _batches(edges):
        connection.execute(insert(table_of(NetworkEdge)), rows)


def load_graph(session: Session, network: StreetNetwork) -> StreetGraph:
    nodes = session.execute(select(NetworkNode.lon, NetworkNode.lat, NetworkNode.osm_id)
                            .where(NetworkNode.network_id == network.id).order_by(NetworkNode.id)).all()
    edges = session.execute(select(NetworkEdge.u, NetworkEdge.v, NetworkEdge.length_m, NetworkEdge.geometry)
                            .where(NetworkEdge.network_id == network.id).order_by(NetworkEdge.id)).all()
    lon = np.fromiter((r[0] for r in nodes), np.float64, len(nodes))
    lat = np.fromiter((r[1] for r in nodes), np.float64, len(nodes))
    osm = [r[2] for r in nodes]
    osm_id = np.array(osm, dtype=np.int64) if osm and all(o is not None for o in osm) else None
    u = np.fromiter((r[0] for r in edges), np.int64, len(edges))
    v = np.fromiter((r[1] for r in edges), np.int64, len(edges))
    length = np.fromiter((r[2] for r in edges), np.float64, len(edges))
    bent = np.array([i for i, r in enumerate(edges) if r[3] is not None], dtype=np.int64)
    shape_edge, shape_lon, shape_lat = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    if len(bent):
        lines = shapely.from_wkb([edges[i][3] for i in bent])
        coords, index = shapely.get_coordinates(lines, return_index=True)
        # Interior vertices only: the ends are the edge's nodes.
        first = np.ones(len(index), dtype=bool)
        first[1:] = index[1:] != index[:-1]
        last = np.ones(len(index), dtype=bool)
        last[:-1] = index[1:] != index[:-1]
        inner = ~(first | last)
        shape_edge, shape_lon, shape_lat = bent[index[inner]], coords[inner, 0], coords[inner, 1]
    return StreetGraph(crs=network.crs, lon=lon, lat=lat, u=u, v=v, length=length, shape_edge=shape_edge,
                 shape_lon=shape_lon, shape_lat=shape_lat, osm_id=osm_id)


# --- facilities ------------------------------------------------------------------------------------


def facility_keys(session: Session) -> tuple[dict[str, int], list[tuple[str, int, float, float]]]:
    """Source ids -> facility id, and (category, id, lon, lat) of every stored facility."""
    rows = session.execute(select(Facility.id, Facility.category, Facility.source_id, Facility.lon,
                                  Facility.lat)).all()
    ids = {r.source_id: r.id for r in rows if r.source_id is not None}
    return ids, [(r.category, r.id, r.lon, r.lat) for r in rows]


def delete_facilities(session: Session) -> int:
    session.execute(delete(FacilityEntrance))
    result = session.execute(delete(Facility))
    return int(getattr(result, "rowcount", 0) or 0)


def add_facilities(session: Session, rows: list[dict[str, Any]], entrances: list[list[tuple[float, float]]]
                   ) -> list[int]:
    """Facilities (column dicts) with their entrances; returns their ids, in order."""
    objects = [Facility(**r) for r in rows]
    session.add_all(objects)
    session.flush()
    points = [{"facility_id": f.id, "lon": lon, "lat": lat}
              for f, pairs in zip(objects, entrances, strict=True) for lon, lat in pairs]
    if points:
        session.execute(insert(table_of(FacilityEntrance)), points)
    return [f.id for f in objects]


def facility_table(session: Session) -> tuple[list[Any], list[Any]]:
    """Every facility (id, category, name, lon, lat, area_m2, area_class, synthetic) in id order, and
    every entrance (facility_id, lon, lat)."""
    f, e = Facility, FacilityEntrance
    facilities = session.execute(select(f.id, f.category, f.name, f.lon, f.lat, f.area_m2, f.area_class,
                                        f.synthetic).order_by(f.id)).all()
    entrances = session.execute(select(e.facility_id, e.lon, e.lat).order_by(e.facility_id, e.id)).all()
    return list(facilities), list(entrances)


def facility_revision(session: Session) -> tuple[int, int, int]:
    """Changes whenever facilities are added or removed (count, highest id, entrances)."""
    count, top = session.execute(select(func.count(Facility.id), func.max(Facility.id))).one()
    entrances = session.scalar(select(func.count(FacilityEntrance.id))) or 0
    return int(count or 0), int(top or 0), int(entrances)


def facility_counts(session: Session, *, synthetic: bool | None = None) -> dict[str, int]:
    query = select(Facility.category, func.count(Facility.id)).group_by(Facility.category)
    if synthetic is not None:
        query = query.where(Facility.synthetic.is_(synthetic))
    return {c: int(n) for c, n in session.execute(query)}
