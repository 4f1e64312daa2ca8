"""The accessibility engine on the real Helsinki extract, checked against networkx."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from cityops.core.db import Database
from cityops.livability import service
from cityops.livability.engine import (
    LIVING_CIRCLES_M,
    SNAP_TOLERANCE_M,
    Engine,
    Points,
    StreetGraph,
    symmetric_csr,
)


def random_points(graph: StreetGraph, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    min_lon, min_lat, max_lon, max_lat = graph.bounds()
    return rng.uniform(min_lon, max_lon, n), rng.uniform(min_lat, max_lat, n)


class Independent:
    """The same question answered another way: every edge's line built one by one, each point snapped
    by measuring its distance to every edge, and the split graph built in networkx."""

    def __init__(self, graph: StreetGraph) -> None:
        self.graph = graph
        self.forward = Transformer.from_crs("EPSG:4326", graph.crs, always_xy=True)
        x, y = self.forward.transform(graph.lon, graph.lat)
        sx, sy = self.forward.transform(graph.shape_lon, graph.shape_lat)
        interior: dict[int, list[tuple[float, float]]] = {}
        for e, px, py in zip(graph.shape_edge.tolist(), sx, sy, strict=True):
            interior.setdefault(e, []).append((px, py))
        self.lines = np.array([
            shapely.LineString([(x[u], y[u]), *interior.get(e, []), (x[v], y[v])])
            for e, (u, v) in enumerate(zip(graph.u.tolist(), graph.v.tolist(), strict=True))
        ])
        self.g = nx.MultiGraph()
        self.points: list[tuple[str, int]] = []
        self.on_edge: dict[int, list[tuple[float, object]]] = {}

    def add_points(self, kind: str, lon: np.ndarray, lat: np.ndarray) -> list[object]:
        x, y = self.forward.transform(lon, lat)
        names: list[object] = []
        for i, (px, py) in enumerate(zip(x, y, strict=True)):
            point = shapely.Point(px, py)
            distance = shapely.distance(self.lines, point)
            e = int(np.argmin(distance))
            s = float(self.lines[e].project(point, normalized=True)) * float(self.graph.length[e])
            name = (kind, i)
            self.on_edge.setdefault(e, []).append((s, name))
            self.g.add_edge(name, ("foot", kind, i), weight=float(distance[e]))
            names.append(name)
        return names

    def build(self) -> None:
        graph = self.graph
        edges = zip(graph.u.tolist(), graph.v.tolist(), graph.length.tolist(), strict=True)
        for e, (u, v, w) in enumerate(edges):
            if e not in self.on_edge:
                self.g.add_edge(u, v, weight=w)
                continue
            previous, at = u, 0.0
            for s, name in sorted(self.on_edge[e], key=lambda item: item[0]):
                foot = ("foot", *name)  # type: ignore[misc]
                self.g.add_edge(previous, foot, weight=s - at)
                previous, at = foot, s
            self.g.add_edge(previous, v, weight=w - at)


@pytest.fixture
def stored_helsinki(empty_db: Database, helsinki_pbf: Path) -> StreetGraph:
    """The Helsinki network as imported, stored and read back."""
    with empty_db.session() as session:
        service.import_network(session, path=helsinki_pbf, name="helsinki")
    with empty_db.sessions() as session:
        return service.load_graph(session, name="helsinki")


def test_distances_and_counts_match_networkx_on_helsinki(stored_helsinki: StreetGraph) -> None:
    graph = stored_helsinki
    olon, olat = random_points(graph, 40, seed=1)
    categories = {"few": random_points(graph, 4, seed=2), "some": random_points(graph, 12, seed=3),
                  # more facilities than origins: the counts run from the origins' side
                  "many": random_points(graph, 60, seed=4)}
    engine = Engine(graph)
    assert engine.lengths_bound_distances  # the counts run on local subgraphs: checked here too
    result = engine.analyse(Points.at(olon, olat), {k: Points.at(*v) for k, v in categories.items()})

    check = Independent(graph)
    origins = check.add_points("origin", olon, olat)
    facilities = {k: check.add_points(k, *v) for k, v in categories.items()}
    check.build()
    reach = {o: nx.single_source_dijkstra_path_length(check.g, o, cutoff=max(LIVING_CIRCLES_M.values()))
             for o in origins}
    compared = 0
    for name, names in facilities.items():
        nearest = nx.multi_source_dijkstra_path_length(check.g, set(names))
        got = result.categories[name]
        for i, o in enumerate(origins):
            expected = nearest.get(o, np.inf)
            assert got.distance_m[i] == pytest.approx(expected, abs=1.0), (name, i)
            if np.isfinite(expected):
                compared += 1
                assert names[got.nearest[i]] in names
                assert nearest[names[got.nearest[i]]] == 0
            for minutes, radius in LIVING_CIRCLES_M.items():
                within = sum(1 for f in names if reach[o].get(f, np.inf) <= radius)
                assert got.counts[minutes][i] == within, (name, i, minutes)
    assert compared >= 100  # most origins reach every category: the check is not vacuous
    assert all((c.counts[15] > 0).any() for c in result.categories.values())


def test_snapping_to_the_middle_of_a_long_edge_beats_its_nearest_end(helsinki: StreetGraph) -> None:
    engine = Engine(helsinki)
    e = int(np.argmax(helsinki.length))
    length = float(helsinki.length[e])
    assert length > 150
    # A point on the edge, 40 % of the way from u: its nearest node is u.
    foot = shapely.line_interpolate_point(engine.lines[e], 0.4, normalized=True)
    lon, lat = Transformer.from_crs(helsinki.crs, "EPSG:4326", always_xy=True).transform(foot.x, foot.y)
    u, v = int(helsinki.u[e]), int(helsinki.v[e])
    facility = Points.at([helsinki.lon[v]], [helsinki.lat[v]])
    virtual = engine.analyse(Points.at([lon], [lat]), {"f": facility}).categories["f"].distance_m[0]
    assert virtual == pytest.approx(0.6 * length, abs=0.5)
    # Snapped to its nearest node instead: walk to u first, then on to v.
    from_u = engine.analyse(Points.on_nodes([u]), {"f": facility}).categories["f"].distance_m[0]
    assert np.hypot(engine.x[u] - foot.x, engine.y[u] - foot.y) + from_u > virtual + 0.3 * length


def test_points_on_nodes_and_coordinates_of_nodes_agree(helsinki: StreetGraph) -> None:
    engine = Engine(helsinki)
    nodes = np.arange(0, helsinki.node_count, 97)
    facilities = {"f": Points.at(*random_points(helsinki, 8, seed=5))}
    by_node = engine.analyse(Points.on_nodes(nodes), facilities).categories["f"]
    by_place = engine.analyse(Points.at(helsinki.lon[nodes], helsinki.lat[nodes]), facilities).categories["f"]
    np.testing.assert_allclose(by_node.distance_m, by_place.distance_m, atol=1e-3)
    for minutes in LIVING_CIRCLES_M:
        np.testing.assert_array_equal(by_node.counts[minutes], by_place.counts[minutes])


def test_pairs_within_agree_with_the_counts(helsinki: StreetGraph) -> None:
    engine = Engine(helsinki)
    sites = Points.at(*random_points(helsinki, 7, seed=6))
    homes = Points.at(*random_points(helsinki, 30, seed=7))
    pairs = engine.pairs_within(sites, homes, 500.0)
    att = engine.attach([homes, sites])
    counts = engine.count_within(att, att.vertex[0], att.vertex[1], [500.0])[:, 0]
    np.testing.assert_array_equal(np.bincount(pairs.target, minlength=30), counts)
    assert (pairs.distance_m <= 500.0).all()
    assert len(pairs.source) > 0


def test_two_points_on_one_edge_walk_along_it(helsinki: StreetGraph) -> None:
    engine = Engine(helsinki)
    e = int(np.argmax(helsinki.length))
    back = Transformer.from_crs(helsinki.crs, "EPSG:4326", always_xy=True)
    places = [shapely.line_interpolate_point(engine.lines[e], f, normalized=True) for f in (0.3, 0.5)]
    (lon1, lon2), (lat1, lat2) = back.transform([p.x for p in places], [p.y for p in places])
    got = engine.analyse(Points.at([lon1], [lat1]), {"f": Points.at([lon2], [lat2])}).categories["f"]
    assert got.distance_m[0] == pytest.approx(0.2 * float(helsinki.length[e]), abs=0.5)


def test_a_point_far_from_every_street_is_off_the_network(helsinki: StreetGraph) -> None:
    engine = Engine(helsinki)
    result = engine.analyse(Points.at([25.5], [60.5]), {"f": Points.at(*random_points(helsinki, 3, seed=8))})
    assert not result.origin_on_network[0]
    assert np.isinf(result.categories["f"].distance_m[0])
    assert result.categories["f"].nearest[0] == -1
    assert engine.isochrone(25.5, 60.5, minutes=10).is_empty


def test_isochrone_holds_what_is_near_on_foot_and_not_what_is_far(helsinki: StreetGraph) -> None:
    engine = Engine(helsinki)
    lon, lat = float(np.median(helsinki.lon)), float(np.median(helsinki.lat))
    budget = 5 * 60 * engine.speed_mps
    area = engine.isochrone(lon, lat, minutes=5)
    assert area.geom_type in ("Polygon", "MultiPolygon") and not area.is_empty
    distance = engine.analyse(Points.on_nodes(np.arange(helsinki.node_count)),
                              {"here": Points.at([lon], [lat])}).categories["here"].distance_m
    near = np.flatnonzero(distance < budget - 10)
    far = np.flatnonzero(distance > budget + 300)
    assert len(near) >= 10 and len(far) >= 10
    assert shapely.contains_xy(area, helsinki.lon[near], helsinki.lat[near]).all()
    # Far on foot and farther than the walk plus the buffer in a straight line: outside.
    px, py = engine.project([lon], [lat])
    straight = np.hypot(engine.x[far] - px[0], engine.y[far] - py[0])
    beyond = far[straight > budget + 60]
    assert len(beyond) >= 10
    assert not shapely.contains_xy(area, helsinki.lon[beyond], helsinki.lat[beyond]).any()
    # A longer walk reaches more.
    assert engine.isochrone(lon, lat, minutes=10).area > area.area


def test_the_graph_keeps_the_shortest_of_parallel_edges_and_drops_loops() -> None:
    a, b = np.array([0, 0, 1, 2]), np.array([1, 1, 1, 0])
    graph = symmetric_csr(3, a, b, np.array([5.0, 3.0, 1.0, 0.0]))
    assert graph[0, 1] == 3.0 and graph[1, 0] == 3.0
    assert graph[1, 1] == 0 and graph.nnz == 4  # the zero-length edge 2-0 stays an edge
    assert SNAP_TOLERANCE_M < 0.01
