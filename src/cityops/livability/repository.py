"""Queries of the livability package: networks, and their nodes and edges as arrays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import shapely
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from cityops.core.db import table_of
from cityops.livability.engine import StreetGraph
from cityops.livability.models import NetworkEdge, NetworkNode, StreetNetwork

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
