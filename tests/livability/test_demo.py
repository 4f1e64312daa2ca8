"""The demo's synthetic walking network of Hebi: inside the city, connected, denser where people live."""

from __future__ import annotations

import numpy as np
import shapely
from scipy.sparse.csgraph import connected_components

from cityops.core.db import Database
from cityops.livability import demo, service
from cityops.livability.engine import Engine, StreetGraph, symmetric_csr
from cityops.places import service as places_service


def inside_city(db: Database, graph: StreetGraph) -> bool:
    with db.sessions() as session:
        code = places_service.root_code(session)
        found = places_service.points_in_zone(session, lon=graph.lon.tolist(), lat=graph.lat.tolist(),
                                              code=code)
    return found is not None and all(found)


def test_the_seeded_network_is_labelled_synthetic_connected_and_inside_hebi(db: Database) -> None:
    with db.sessions() as session:
        [network] = [n for n in service.list_networks(session) if n.name == demo.DEMO_NETWORK]
        graph = service.load_graph(session, name=demo.DEMO_NETWORK)
    assert network.synthetic and network.source == "synthetic"
    assert 2_000 <= network.edge_count <= 10_000  # "small" in the test template
    assert inside_city(db, graph)
    count, _labels = connected_components(symmetric_csr(graph.node_count, graph.u, graph.v, graph.length),
                                          directed=False)
    assert count == 1
    # Lengths are those of the shapes in the network's CRS.
    engine = Engine(graph)
    np.testing.assert_allclose(shapely.length(engine.lines), graph.length, rtol=1e-9, atol=1e-6)
    assert len(graph.shape_edge) > 0 and graph.length.min() > 1.0


def test_full_scale_is_city_sized_and_denser_where_the_communities_are(db: Database) -> None:
    with db.sessions() as session:
        layout = demo.read_layout(session)
    graph = demo.generate(layout, scale="full", seed=11)
    assert 70_000 <= graph.edge_count <= 150_000
    assert inside_city(db, graph)
    engine = Engine(graph)
    nodes = shapely.STRtree(shapely.points(engine.x, engine.y))
    urban = [s for s in layout.settlements if s.urban]
    rural = [s for s in layout.settlements if not s.urban]
    assert {s.code[:6] for s in urban} >= {"410602", "410603", "410611", "410621", "410622"}

    def per_km2(places: list[demo.Settlement], radius: float) -> float:
        x, y = engine.project([s.lon for s in places], [s.lat for s in places])
        found = nodes.query(shapely.buffer(shapely.points(x, y), radius), predicate="contains")
        return len(found[0]) / (len(places) * np.pi * (radius / 1000) ** 2)

    town, village = per_km2(urban, 400.0), per_km2(rural, 400.0)
    assert town > 90 and village > 20  # streets 90 m apart in towns; lanes in the villages
    city_wide = graph.node_count / layout.city.area / (111.0 * 91.0)  # nodes per km² over the whole city
    assert town > 4 * city_wide
