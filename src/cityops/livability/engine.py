"""The accessibility engine: walking distances on a street network, in memory.

The network is a graph of nodes and edges (u, v, length in metres). Points (communities, facilities, a
clicked spot) are snapped to the nearest EDGE, not the nearest node: the foot of the perpendicular on
the edge becomes a virtual node that splits the edge in two (u - p - v, lengths s and L - s), so a
community in the middle of a long street is not sent to the far end of it first. Several points on one
edge split it into a chain, in order along the edge. The straight leg from the point to the street
(its access distance) is an edge of its own when `access_legs` is on (the default): distances are door
to door.

Shortest paths run on a scipy CSR matrix with scipy.sparse.csgraph.dijkstra: one multi-source run per
facility category (min_only=True, all the category's facilities as sources) gives every origin its
nearest facility; counts within the walking circles come from bounded single-source runs (limit=) from
whichever side is smaller, the origins or all the facilities (every category at once). No walk is
shorter than the straight line, so a group of nearby sources runs on the subgraph within the limit of
them (a few thousand vertices, not the city's): the same distances, much less work. Both are exact.

Walking circles (GB 50180-2018 城市居住区规划设计标准, table 3.0.4, the walking distance of each level
of residential area): five minutes 300 m, ten minutes 500 m, fifteen minutes 800-1000 m; the circles
here take the outer 1000 m. The standard gives distances, not a speed; times are distance / speed with
a configurable speed, by default 1.1 m/s (about 4 km/h: 1000 m in 15 minutes, so the 15-minute time
and circle agree; 1.2 m/s, a common adult planning value, would put 1080 m inside 15 minutes).

Isochrones: the street reachable within the time (whole edges, and the reachable part of the edges at
the frontier), buffered by `ISOCHRONE_BUFFER_M` on each side: the strip along a street from which its
doors are reached. A concave hull of the reached nodes was not used: it covers what lies between
reachable streets (a river, a walled compound, a railway) that cannot be crossed on foot."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer
from scipy.sparse import coo_array, csr_array
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Minutes -> walking distance in metres (GB 50180-2018, table 3.0.4; the 15-minute level's outer value).
LIVING_CIRCLES_M: Mapping[int, float] = {5: 300.0, 10: 500.0, 15: 1000.0}
DEFAULT_SPEED_MPS = 1.1
# Points farther than this from every street are not on the network (a facility outside its area).
MAX_SNAP_M = 1000.0
ISOCHRONE_BUFFER_M = 50.0
# Snapped points closer than this (along an edge) share a virtual node; as close to an end, they are
# that end's node.
SNAP_TOLERANCE_M = 1e-3
# Dense rows of distances per dijkstra chunk (8 bytes each): bounds the memory of the counting runs.
CHUNK_CELLS = 4_000_000
# Rounding allowance of the straight-line bound on walking distances (see Engine._runs).
BOUND_SLACK_M = 1.0
# Sources per bounded run on a local subgraph, and the extent of their group in limits (see _clusters).
CHUNK_SOURCES = 256
CLUSTER_SPAN = 4.0


def local_crs(lon: float, lat: float) -> str:
    """A metric CRS for a network around (lon, lat): transverse Mercator centred there (scale 1 on its
    meridian; within 100 km of it lengths are off by less than 0.013 %, against up to 0.04 % in a UTM
    zone, whose scale on the central meridian is 0.9996)."""
    return (f"+proj=tmerc +lat_0={lat:.4f} +lon_0={lon:.4f} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 "
            "+units=m +no_defs")


def to_metres(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def to_degrees(crs: str) -> Transformer:
    return Transformer.from_crs(crs, "EPSG:4326", always_xy=True)


def edge_coordinates(u: IntArray, v: IntArray, shape_edge: IntArray, x: FloatArray, y: FloatArray,
                     sx: FloatArray, sy: FloatArray) -> tuple[FloatArray, IntArray]:
    """Every edge's vertices, u first and v last, as one (k, 2) array with the edge of each row; `x, y`
    are the nodes' and `sx, sy` the interior vertices' coordinates (degrees or metres) and
    `shape_edge` the edge of each interior vertex (non-decreasing)."""
    interior = np.bincount(shape_edge, minlength=len(u))
    counts = interior + 2
    ends = np.cumsum(counts)
    starts = ends - counts
    coords = np.empty((int(ends[-1]) if len(ends) else 0, 2))
    coords[starts, 0], coords[starts, 1] = x[u], y[u]
    coords[ends - 1, 0], coords[ends - 1, 1] = x[v], y[v]
    if len(shape_edge):
        # Vertex k of edge e sits at starts[e] + 1 + (its rank within the edge).
        first = np.cumsum(interior) - interior
        rank = np.arange(len(shape_edge)) - first[shape_edge]
        rows = starts[shape_edge] + 1 + rank
        coords[rows, 0], coords[rows, 1] = sx, sy
    return coords, np.repeat(np.arange(len(u)), counts)


@dataclass(frozen=True, eq=False)
class StreetGraph:
    """Nodes (WGS84), edges (u, v, length in metres) and the interior vertices of the edges that bend:
    `shape_edge[k]` is the edge of vertex k, non-decreasing, in order along the edge from u to v."""

    crs: str
    lon: FloatArray
    lat: FloatArray
    u: IntArray
    v: IntArray
    length: FloatArray
    shape_edge: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    shape_lon: FloatArray = field(default_factory=lambda: np.zeros(0))
    shape_lat: FloatArray = field(default_factory=lambda: np.zeros(0))
    osm_id: IntArray | None = None

    @property
    def node_count(self) -> int:
        return len(self.lon)

    @property
    def edge_count(self) -> int:
        return len(self.u)

    def edge_coordinates(self, x: FloatArray, y: FloatArray, sx: FloatArray, sy: FloatArray
                         ) -> tuple[FloatArray, IntArray]:
        return edge_coordinates(self.u, self.v, self.shape_edge, x, y, sx, sy)

    def bounds(self) -> tuple[float, float, float, float]:
        lon = np.concatenate([self.lon, self.shape_lon])
        lat = np.concatenate([self.lat, self.shape_lat])
        return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())


def largest_component(network: StreetGraph) -> tuple[StreetGraph, int]:
    """The network's largest connected part (as OSMnx keeps by default), renumbered, and how many edges
    were left out: a point snapped to a fragment cut off by the edge of an extract would reach
    nothing and look unserved."""
    from scipy.sparse.csgraph import connected_components

    graph = symmetric_csr(network.node_count, network.u, network.v, network.length)
    _count, label = connected_components(graph, directed=False)
    main = np.argmax(np.bincount(label))
    keep_node = label == main
    keep_edge = keep_node[network.u]
    if keep_node.all():
        return network, 0
    new_id = np.cumsum(keep_node) - 1
    edge_id = np.cumsum(keep_edge) - 1
    keep_shape = keep_edge[network.shape_edge]
    kept = StreetGraph(
        crs=network.crs, lon=network.lon[keep_node], lat=network.lat[keep_node],
        u=new_id[network.u[keep_edge]], v=new_id[network.v[keep_edge]], length=network.length[keep_edge],
        shape_edge=edge_id[network.shape_edge[keep_shape]], shape_lon=network.shape_lon[keep_shape],
        shape_lat=network.shape_lat[keep_shape],
        osm_id=network.osm_id[keep_node] if network.osm_id is not None else None)
    return kept, int((~keep_edge).sum())


@dataclass(frozen=True)
class Points:
    """Where things are: WGS84 coordinates (snapped to the nearest edge) or graph nodes (used as they
    are: points known to lie on nodes, e.g. every node as an origin)."""

    lon: FloatArray | None = None
    lat: FloatArray | None = None
    nodes: IntArray | None = None

    @classmethod
    def at(cls, lon: npt.ArrayLike, lat: npt.ArrayLike) -> Points:
        x, y = np.atleast_1d(np.asarray(lon, np.float64)), np.atleast_1d(np.asarray(lat, np.float64))
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError("lon and lat must be 1-d and of the same length")
        return cls(lon=x, lat=y)

    @classmethod
    def on_nodes(cls, nodes: npt.ArrayLike) -> Points:
        return cls(nodes=np.atleast_1d(np.asarray(nodes, np.int64)))

    def __len__(self) -> int:
        return len(self.nodes) if self.nodes is not None else len(self.lon if self.lon is not None else ())


@dataclass(frozen=True)
class Snapped:
    """Where points meet the network: the edge (-1: none within the snapping distance), the distance
    along it from its u node, the straight distance from the point to it, the foot (metres) and the
    point itself (metres)."""

    edge: IntArray
    offset_m: FloatArray
    access_m: FloatArray
    x: FloatArray
    y: FloatArray
    px: FloatArray
    py: FloatArray


@dataclass(eq=False)
class Attachment:
    """The graph with the virtual nodes of a set of points: `vertex[g][i]` is the vertex of point i of
    group g (-1: not on the network). The graph's edges are also described as stretches of the base
    edges (`piece_*`, for drawing what is reached); access legs are not among them. `x, y`: where each
    vertex is (metres)."""

    graph: csr_array
    vertex: list[IntArray]
    piece_edge: IntArray
    piece_start: FloatArray
    piece_end: FloatArray
    piece_a: IntArray
    piece_b: IntArray
    # Each point's foot on its street (metres), to draw its access leg.
    snapped: list[Snapped | None]
    x: FloatArray
    y: FloatArray

    @cached_property
    def kdtree(self) -> cKDTree:
        return cKDTree(np.column_stack([self.x, self.y]))


@dataclass(frozen=True)
class CategoryAccess:
    """For every origin: the walking distance to the category's nearest facility (inf when none is
    within the limit or the origin is off the network), which facility that is (-1: none), and how many
    of the category's facilities lie within each walking circle."""

    distance_m: FloatArray
    nearest: IntArray
    counts: dict[int, IntArray]
    speed_mps: float

    @property
    def minutes(self) -> FloatArray:
        return self.distance_m / self.speed_mps / 60.0


@dataclass(frozen=True)
class Accessibility:
    circles_m: dict[int, float]
    speed_mps: float
    categories: dict[str, CategoryAccess]
    # Per origin: whether it reached the network, and the straight distance from it to the street.
    origin_on_network: BoolArray
    origin_access_m: FloatArray


@dataclass(frozen=True)
class Pairs:
    """Pairs (source i, target j) within a walking distance of each other, with that distance."""

    source: IntArray
    target: IntArray
    distance_m: FloatArray


def symmetric_csr(n: int, a: IntArray, b: IntArray, w: FloatArray) -> csr_array:
    """An undirected graph as a symmetric CSR matrix (scipy's dijkstra, directed=True, runs on it
    without re-symmetrising at every call): parallel edges keep their shortest, self-loops go. Zero
    weights stay as explicit entries, which csgraph treats as edges."""
    keep = a != b
    a, b, w = a[keep], b[keep], w[keep]
    rows = np.concatenate([a, b])
    cols = np.concatenate([b, a])
    weights = np.concatenate([w, w])
    order = np.lexsort((weights, cols, rows))
    rows, cols, weights = rows[order], cols[order], weights[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, weights = rows[first], cols[first], weights[first]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return csr_array((weights, cols.astype(np.int32), indptr), shape=(n, n))


def _clusters(x: FloatArray, y: FloatArray, *, span: float, most: int) -> list[IntArray]:
    """The points in groups of neighbours: in Z-order (Morton) along a grid of `span` cells, a group
    closes when it reaches `most` points or its bounding box would grow wider than `span` * 2."""
    if not len(x):
        return []
    ix = np.floor((x - x.min()) / span).astype(np.uint64)
    iy = np.floor((y - y.min()) / span).astype(np.uint64)
    order = np.argsort(_spread(ix) | (_spread(iy) << np.uint64(1)), kind="stable")
    groups: list[IntArray] = []
    start = 0
    x0 = x1 = float(x[order[0]])
    y0 = y1 = float(y[order[0]])
    for k, (px, py) in enumerate(zip(x[order].tolist(), y[order].tolist(), strict=True)):
        nx0, nx1, ny0, ny1 = min(x0, px), max(x1, px), min(y0, py), max(y1, py)
        if k - start >= most or nx1 - nx0 > 2 * span or ny1 - ny0 > 2 * span:
            groups.append(order[start:k])
            start, nx0, nx1, ny0, ny1 = k, px, px, py, py
        x0, x1, y0, y1 = nx0, nx1, ny0, ny1
    groups.append(order[start:])
    return groups


def _spread(v: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The bits of 32-bit integers moved to the even positions (for Z-order)."""
    v = v & np.uint64(0xFFFFFFFF)
    for shift, mask in ((16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF), (4, 0x0F0F0F0F0F0F0F0F),
                        (2, 0x3333333333333333), (1, 0x5555555555555555)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def _expand(index: IntArray, back: IntArray, size: int) -> tuple[IntArray, IntArray]:
    """Items refer to distinct values by `index`; `back` maps each original to its distinct value. For
    every item, one row per original with that value: (the item's position, the original's)."""
    order = np.argsort(back, kind="stable")
    per_value = np.bincount(back, minlength=size)
    first = np.cumsum(per_value) - per_value
    times = per_value[index]
    rep = np.repeat(np.arange(len(index)), times)
    rank = np.arange(len(rep)) - np.repeat(np.cumsum(times) - times, times)
    return rep, order[first[index][rep] + rank]


class Engine:
    """Walking accessibility on one network. Build once per network (projection and graph), then ask
    many questions; the snapping index is built on first use."""

    def __init__(self, network: StreetGraph, *, speed_mps: float = DEFAULT_SPEED_MPS,
                 max_snap_m: float = MAX_SNAP_M, access_legs: bool = True) -> None:
        if speed_mps <= 0:
            raise ValueError("the walking speed must be positive")
        self.network = network
        self.speed_mps = speed_mps
        self.max_snap_m = max_snap_m
        self.access_legs = access_legs
        self._forward = to_metres(network.crs)
        self._inverse = to_degrees(network.crs)
        x, y = self._forward.transform(network.lon, network.lat)
        self.x, self.y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        self.graph = symmetric_csr(network.node_count, network.u, network.v, network.length)
        # Whether every edge is at least as long as the straight line between its ends (true of lengths
        # measured on the shapes in this CRS): then no walk leaves the disk of its length.
        chord = np.hypot(self.x[network.u] - self.x[network.v], self.y[network.u] - self.y[network.v])
        self.lengths_bound_distances = bool((network.length >= chord - BOUND_SLACK_M / 2).all())

    # --- geometry ---------------------------------------------------------------------------------

    @cached_property
    def lines(self) -> npt.NDArray[np.object_]:
        """Each edge as a LineString in metres."""
        net = self.network
        sx, sy = self._forward.transform(net.shape_lon, net.shape_lat)
        coords, index = net.edge_coordinates(self.x, self.y, np.asarray(sx), np.asarray(sy))
        lines: npt.NDArray[np.object_] = shapely.linestrings(coords, indices=index)
        return lines

    @cached_property
    def tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.lines)

    def project(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        x, y = self._forward.transform(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
        return np.asarray(x, np.float64), np.asarray(y, np.float64)

    def snap(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> Snapped:
        """The nearest edge of each point (within `max_snap_m`), and where on it the point meets it."""
        px, py = self.project(lon, lat)
        n = len(px)
        edge = np.full(n, -1, dtype=np.int64)
        offset = np.zeros(n)
        access = np.full(n, np.inf)
        fx, fy = np.full(n, np.nan), np.full(n, np.nan)
        if n == 0 or self.network.edge_count == 0:
            return Snapped(edge, offset, access, fx, fy, px, py)
        points = shapely.points(px, py)
        finite = np.isfinite(px) & np.isfinite(py)
        (which, hit), dist = self.tree.query_nearest(points[finite], max_distance=self.max_snap_m,
                                                     return_distance=True, all_matches=False)
        which = np.flatnonzero(finite)[which]
        lines = self.lines[hit]
        fraction = shapely.line_locate_point(lines, points[which], normalized=True)
        foot = shapely.line_interpolate_point(lines, fraction, normalized=True)
        edge[which] = hit
        offset[which] = fraction * self.network.length[hit]
        access[which] = dist
        fx[which], fy[which] = shapely.get_x(foot), shapely.get_y(foot)
        return Snapped(edge, offset, access, fx, fy, px, py)

    # --- the graph with virtual nodes -------------------------------------------------------------

    def attach(self, groups: Sequence[Points]) -> Attachment:
        """One graph holding the virtual nodes of every group of points (snapped together, so points of
        different groups on one edge split it in their order along it)."""
        net = self.network
        n = net.node_count
        vertex: list[IntArray] = [np.full(len(g), -1, dtype=np.int64) for g in groups]
        snapped: list[Snapped | None] = []
        located = [i for i, g in enumerate(groups) if g.nodes is None]
        for i, g in enumerate(groups):
            if g.nodes is not None:
                bad = (g.nodes < 0) | (g.nodes >= n)
                vertex[i] = np.where(bad, -1, g.nodes)
        if located:
            lon = np.concatenate([groups[i].lon for i in located])
            lat = np.concatenate([groups[i].lat for i in located])
            snap = self.snap(lon, lat)
        else:
            snap = self.snap(np.zeros(0), np.zeros(0))
        on = np.flatnonzero(snap.edge >= 0)
        e, s = snap.edge[on], snap.offset_m[on]
        length = net.length[e]
        at_u, at_v = s <= SNAP_TOLERANCE_M, s >= length - SNAP_TOLERANCE_M
        foot = np.where(at_u, net.u[e], np.where(at_v, net.v[e], -1))
        # The virtual nodes: one per distinct place (edge, offset), in order along each edge.
        inner = np.flatnonzero(foot < 0)
        order = inner[np.lexsort((s[inner], e[inner]))]
        e_sorted, s_sorted = e[order], s[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (e_sorted[1:] != e_sorted[:-1]) | (s_sorted[1:] - s_sorted[:-1] > SNAP_TOLERANCE_M)
        ids = n + np.cumsum(new) - 1
        foot[order] = ids
        vn_edge, vn_offset, vn_id = e_sorted[new], s_sorted[new], ids[new]
        total = n + len(vn_id)
        # Split edges become chains u - p1 - ... - pk - v.
        split = np.zeros(net.edge_count, dtype=bool)
        split[vn_edge] = True
        first = np.ones(len(vn_id), dtype=bool)
        first[1:] = vn_edge[1:] != vn_edge[:-1]
        last = np.ones(len(vn_id), dtype=bool)
        last[:-1] = vn_edge[1:] != vn_edge[:-1]
        prev_id = np.where(first, net.u[vn_edge], np.roll(vn_id, 1))
        prev_offset = np.where(first, 0.0, np.roll(vn_offset, 1))
        whole = np.flatnonzero(~split)
        piece_edge = np.concatenate([whole, vn_edge, vn_edge[last]])
        piece_start = np.concatenate([np.zeros(len(whole)), prev_offset, vn_offset[last]])
        piece_end = np.concatenate([net.length[whole], vn_offset, net.length[vn_edge[last]]])
        piece_a = np.concatenate([net.u[whole], prev_id, vn_id[last]])
        piece_b = np.concatenate([net.v[whole], vn_id, net.v[vn_edge[last]]])
        a, b, w = [piece_a], [piece_b], [piece_end - piece_start]
        # Access legs: the point is a vertex of its own, one straight edge away from its foot.
        point_vertex = foot.copy()
        if self.access_legs:
            legs = np.flatnonzero(snap.access_m[on] > SNAP_TOLERANCE_M)
            leg_ids = total + np.arange(len(legs))
            total += len(legs)
            a.append(foot[legs])
            b.append(leg_ids)
            w.append(snap.access_m[on][legs])
            point_vertex[legs] = leg_ids
        # Where each vertex is: nodes, then feet (of the first point at each), then the points.
        feet = order[new]
        vx = [self.x, snap.x[on][feet]]
        vy = [self.y, snap.y[on][feet]]
        if self.access_legs:
            vx.append(snap.px[on][legs])
            vy.append(snap.py[on][legs])
        if total == n:  # no virtual vertex: the base graph as it is
            graph = self.graph
        else:
            graph = symmetric_csr(total, np.concatenate(a), np.concatenate(b), np.concatenate(w))
        located_vertex = np.full(len(snap.edge), -1, dtype=np.int64)
        located_vertex[on] = point_vertex
        start = 0
        for i, g in enumerate(groups):
            if g.nodes is None:
                vertex[i] = located_vertex[start:start + len(g)]
                snapped.append(Snapped(*(getattr(snap, f)[start:start + len(g)]
                                         for f in ("edge", "offset_m", "access_m", "x", "y", "px", "py"))))
                start += len(g)
            else:
                snapped.append(None)
        return Attachment(graph, vertex, piece_edge, piece_start, piece_end, piece_a, piece_b, snapped,
                          np.concatenate(vx), np.concatenate(vy))

    # --- shortest paths ---------------------------------------------------------------------------

    def nearest(self, attachment: Attachment, sources: IntArray, *, limit_m: float = np.inf
                ) -> tuple[FloatArray, IntArray]:
        """For every vertex: the distance to the nearest of `sources` (vertices; -1 entries ignored)
        and the index into `sources` of that source (-1: none within the limit)."""
        size = attachment.graph.shape[0]
        valid = np.flatnonzero(sources >= 0)
        if not len(valid):
            return np.full(size, np.inf), np.full(size, -1, dtype=np.int64)
        unique, first = np.unique(sources[valid], return_index=True)
        dist, _pred, origin = dijkstra(attachment.graph, directed=True, indices=unique, min_only=True,
                                       limit=limit_m, return_predecessors=True)
        # `origin` holds the source vertex; map it back to the index of the (first) source there.
        index_of = np.full(size, -1, dtype=np.int64)
        index_of[unique] = valid[first]
        which = np.where(origin >= 0, index_of[np.maximum(origin, 0)], -1)
        return np.asarray(dist, np.float64), which

    def _runs(self, att: Attachment, sources: IntArray, limit_m: float
              ) -> Iterator[tuple[IntArray, IntArray, FloatArray]]:
        """Bounded single-source runs from each of `sources`: (which sources, which vertices, their
        distances), a chunk at a time. A walk of at most `limit_m` never leaves the disk of that radius
        around its start (no edge is shorter than the straight line between its ends), so each chunk of
        sources close together runs on the subgraph of the vertices within the limit of their bounding
        box: the same distances, on a few thousand vertices instead of the city's."""
        graph = att.graph
        if not self.lengths_bound_distances or not np.isfinite(limit_m):
            size = max(1, CHUNK_CELLS // max(graph.shape[0], 1))
            everything = np.arange(graph.shape[0])
            for start in range(0, len(sources), size):
                rows = np.arange(start, min(start + size, len(sources)))
                yield rows, everything, np.atleast_2d(dijkstra(graph, directed=True, indices=sources[rows],
                                                               limit=limit_m))
            return
        margin = limit_m + BOUND_SLACK_M
        span = CLUSTER_SPAN * limit_m
        for chunk in _clusters(att.x[sources], att.y[sources], span=span, most=CHUNK_SOURCES):
            cx, cy = att.x[sources[chunk]], att.y[sources[chunk]]
            x0, x1, y0, y1 = cx.min() - margin, cx.max() + margin, cy.min() - margin, cy.max() + margin
            near = np.sort(np.asarray(att.kdtree.query_ball_point(
                [(x0 + x1) / 2, (y0 + y1) / 2], max(x1 - x0, y1 - y0) / 2, p=np.inf), dtype=np.int64))
            sub = graph[near][:, near]
            local = np.searchsorted(near, sources[chunk])
            size = max(1, CHUNK_CELLS // max(len(near), 1))
            for start in range(0, len(chunk), size):
                rows = chunk[start:start + size]
                dist = dijkstra(sub, directed=True, indices=local[start:start + size], limit=limit_m)
                yield rows, near, np.atleast_2d(dist)

    def _reach(self, att: Attachment, sources: IntArray, targets: IntArray, limit_m: float
               ) -> tuple[IntArray, IntArray, FloatArray]:
        """(i, j, distance) for every source `sources[i]` and target `targets[j]` (distinct vertices)
        within `limit_m` of each other."""
        slot = np.full(att.graph.shape[0], -1, dtype=np.int64)
        slot[targets] = np.arange(len(targets))
        found: list[tuple[IntArray, IntArray, FloatArray]] = [
            (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))]
        for rows, columns, dist in self._runs(att, sources, limit_m):
            r, c = np.nonzero(dist <= limit_m)
            j = slot[columns[c]]
            keep = j >= 0
            r, c = r[keep], c[keep]
            found.append((rows[r], j[keep], dist[r, c]))
        i, j, d = (np.concatenate(parts) for parts in zip(*found, strict=True))
        return i, j, d

    def count_within(self, attachment: Attachment, origins: IntArray, targets: IntArray | Sequence[IntArray],
                     radii_m: Sequence[float]) -> IntArray:
        """How many of `targets` lie within each radius of each of `origins` (vertices; -1 entries
        are off the network: counted nothing, and count for no one): (origins, radii); or, given a
        list of target groups (categories), (origins, groups, radii) from one run for all of them.
        Exact; runs from the smaller side (the origins, or all the targets)."""
        groups = [targets] if isinstance(targets, np.ndarray) else list(targets)
        counts = np.zeros((len(origins), len(groups), len(radii_m)), dtype=np.int64)
        o_ok = np.flatnonzero(origins >= 0)
        t_all = np.concatenate([np.asarray(g, np.int64) for g in groups]) if groups else np.zeros(0, np.int64)
        group_of = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
        t_ok = np.flatnonzero(t_all >= 0)
        if len(o_ok) and len(t_ok) and len(radii_m):
            o_vertex, o_back = np.unique(origins[o_ok], return_inverse=True)
            t_vertex, t_back = np.unique(t_all[t_ok], return_inverse=True)
            # How many targets of each group stand at each target vertex.
            weight = coo_array((np.ones(len(t_ok)), (t_back, group_of[t_ok])),
                               shape=(len(t_vertex), len(groups))).tocsr()
            from_targets = len(t_vertex) <= len(o_vertex)
            i, j, dist = self._reach(attachment, t_vertex if from_targets else o_vertex,
                                     o_vertex if from_targets else t_vertex, float(max(radii_m)))
            o, t = (j, i) if from_targets else (i, j)
            for k, radius in enumerate(radii_m):
                hit = dist <= radius
                reached = coo_array((np.ones(int(hit.sum())), (o[hit], t[hit])),
                                    shape=(len(o_vertex), len(t_vertex))).tocsr()
                counts[o_ok, :, k] = np.rint((reached @ weight).toarray()[o_back]).astype(np.int64)
        return counts[:, 0, :] if isinstance(targets, np.ndarray) else counts

    def pairs_within(self, sources: Points, targets: Points, limit_m: float) -> Pairs:
        """Every (source, target) pair within `limit_m` of each other on foot, with the distance: what
        a coverage or site-selection step builds on (which candidate site reaches which community)."""
        att = self.attach([sources, targets])
        return self.pairs_on(att, att.vertex[0], att.vertex[1], limit_m)

    def pairs_on(self, att: Attachment, s_all: IntArray, t_all: IntArray, limit_m: float) -> Pairs:
        """`pairs_within` for vertices of an attachment already built (-1 entries: off the network):
        pairs (i, j, distance) of `s_all[i]` and `t_all[j]` within `limit_m`."""
        s_ok, t_ok = np.flatnonzero(s_all >= 0), np.flatnonzero(t_all >= 0)
        if not len(s_ok) or not len(t_ok):
            empty = np.zeros(0, dtype=np.int64)
            return Pairs(empty, empty.copy(), np.zeros(0))
        s_vertex, s_back = np.unique(s_all[s_ok], return_inverse=True)
        t_vertex, t_back = np.unique(t_all[t_ok], return_inverse=True)
        i, j, dist = self._reach(att, s_vertex, t_vertex, limit_m)
        # A pair for every source and every target at the vertices (usually one each).
        rep, s_pos = _expand(i, s_back, len(s_vertex))
        j, dist = j[rep], dist[rep]
        rep, t_pos = _expand(j, t_back, len(t_vertex))
        return Pairs(s_ok[s_pos[rep]], t_ok[t_pos], dist[rep])

    def analyse(self, origins: Points, facilities: Mapping[str, Points], *,
                circles_m: Mapping[int, float] = LIVING_CIRCLES_M, limit_m: float = np.inf) -> Accessibility:
        """For every origin and every category: the nearest facility (distance, time, which) and the
        number of facilities within each walking circle (minutes -> metres)."""
        names = list(facilities)
        att = self.attach([origins, *(facilities[c] for c in names)])
        o_vertex = att.vertex[0]
        on = o_vertex >= 0
        radii = [circles_m[m] for m in circles_m]
        counts = self.count_within(att, o_vertex, att.vertex[1:], radii)
        result: dict[str, CategoryAccess] = {}
        for c, (name, f_vertex) in enumerate(zip(names, att.vertex[1:], strict=True)):
            dist, which = self.nearest(att, f_vertex, limit_m=limit_m)
            d = np.where(on, dist[np.maximum(o_vertex, 0)], np.inf)
            w = np.where(on, which[np.maximum(o_vertex, 0)], -1)
            result[name] = CategoryAccess(distance_m=d, nearest=w, speed_mps=self.speed_mps,
                                          counts={m: counts[:, c, k] for k, m in enumerate(circles_m)})
        snapped = att.snapped[0]
        access = snapped.access_m if snapped is not None else np.zeros(len(origins))
        return Accessibility(circles_m=dict(circles_m), speed_mps=self.speed_mps, categories=result,
                             origin_on_network=on, origin_access_m=access)

    # --- isochrones -------------------------------------------------------------------------------

    def isochrone(self, lon: float, lat: float, *, minutes: float | None = None,
                  distance_m: float | None = None, buffer_m: float = ISOCHRONE_BUFFER_M) -> Any:
        """The area reachable on foot from a point within `minutes` (at the engine's speed) or
        `distance_m`: a WGS84 (Multi)Polygon, empty when the point is off the network."""
        if (minutes is None) == (distance_m is None):
            raise ValueError("give minutes or distance_m")
        budget = float(distance_m) if distance_m is not None else float(minutes or 0) * 60.0 * self.speed_mps
        att = self.attach([Points.at([lon], [lat])])
        start = int(att.vertex[0][0])
        if start < 0:
            return shapely.Polygon()
        dist = dijkstra(att.graph, directed=True, indices=start, limit=budget)
        parts = self.reached_lines(att, np.asarray(dist, np.float64), budget)
        snapped = att.snapped[0]
        assert snapped is not None
        px, py = self.project([lon], [lat])
        if snapped.access_m[0] <= budget:
            parts.append(shapely.LineString([(px[0], py[0]), (snapped.x[0], snapped.y[0])]))
        if not parts:
            return shapely.Polygon()
        # Buffered one by one and merged (a cascaded union): buffering the MultiLineString whole is
        # 30 to 100 times slower on a dense network, where the reached streets overlap a lot.
        area = shapely.union_all(shapely.buffer(np.array(parts, dtype=object), buffer_m, quad_segs=4))
        return shapely.transform(area,
                                 lambda xy: np.column_stack(self._inverse.transform(xy[:, 0], xy[:, 1])))

    def reached_lines(self, att: Attachment, dist: FloatArray, budget: float) -> list[Any]:
        """The stretches of street within `budget` of the run that gave `dist` (metres, as lines)."""
        span = att.piece_end - att.piece_start
        reached_a, reached_b = dist[att.piece_a] <= budget, dist[att.piece_b] <= budget
        from_a = np.where(reached_a, budget - np.where(reached_a, dist[att.piece_a], 0.0), 0.0)
        from_b = np.where(reached_b, budget - np.where(reached_b, dist[att.piece_b], 0.0), 0.0)
        full = (reached_a | reached_b) & (from_a + from_b >= span)
        whole_edge = full & (att.piece_start == 0) & (att.piece_end == self.network.length[att.piece_edge])
        parts: list[Any] = list(self.lines[att.piece_edge[whole_edge]])
        stretches: list[tuple[int, float, float]] = []
        for k in np.flatnonzero(full & ~whole_edge):
            stretches.append((int(att.piece_edge[k]), float(att.piece_start[k]), float(att.piece_end[k])))
        for k in np.flatnonzero(~full & reached_a & (from_a > 0)):
            start = float(att.piece_start[k])
            stretches.append((int(att.piece_edge[k]), start, start + float(from_a[k])))
        for k in np.flatnonzero(~full & reached_b & (from_b > 0)):
            end = float(att.piece_end[k])
            stretches.append((int(att.piece_edge[k]), end - float(from_b[k]), end))
        for e, s0, s1 in stretches:
            parts.append(self.stretch(e, s0, s1))
        return parts

    def stretch(self, edge: int, start_m: float, end_m: float) -> Any:
        """The part of an edge between two distances from its u node (metres along it)."""
        from shapely.ops import substring

        length = float(self.network.length[edge])
        if length <= 0:
            return self.lines[edge]
        return substring(self.lines[edge], start_m / length, end_m / length, normalized=True)
