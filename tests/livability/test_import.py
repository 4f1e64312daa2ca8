"""Importing a walking network from an OpenStreetMap PBF: which ways, the stored graph, broken files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import osmium
import pytest
from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.core.errors import Conflict
from cityops.livability import osm, repository, service
from cityops.livability.engine import largest_component
from cityops.livability.models import NetworkEdge, NetworkNode, StreetNetwork
from tests.accounts.test_cli import env_for, run

# A small street: nodes along 114.30 E, 35.75 N (in Hebi), about 90 m apart.
STEP = 0.001


def write_pbf(path: Path, ways: list[tuple[int, list[int], dict[str, str]]], *, nodes: bool = True) -> Path:
    used = sorted({n for _, refs, _ in ways for n in refs})
    with osmium.SimpleWriter(str(path)) as writer:
        if nodes:
            for n in used:
                location = (114.30 + STEP * (n % 100), 35.75 + STEP * (n // 100))
                writer.add_node(osmium.osm.mutable.Node(id=n, location=location, version=1))
        for way_id, refs, tags in ways:
            writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags, version=1))
    return path


def counts(db: Database) -> tuple[int, int, int]:
    with db.sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(m)) or 0  # type: ignore[return-value]
                     for m in (StreetNetwork, NetworkNode, NetworkEdge))


def test_only_walkable_ways_become_edges(tmp_path: Path) -> None:
    ways = [
        (1, [1, 2, 3], {"highway": "footway"}),
        (2, [3, 4], {"highway": "residential"}),
        (3, [4, 5], {"highway": "cycleway", "foot": "designated"}),  # a shared path: walked
        (4, [5, 6], {"highway": "cycleway"}),
        (5, [4, 104], {"highway": "motorway"}),
        (6, [3, 103], {"highway": "residential", "foot": "no"}),
        (7, [2, 102], {"highway": "service", "service": "private"}),
        (8, [1, 101], {"highway": "primary", "sidewalk": "separate"}),
        (9, [5, 105], {"highway": "pedestrian", "area": "yes"}),
        (10, [5, 205], {"highway": "steps"}),
        (11, [205, 206], {"highway": "track", "access": "private", "foot": "yes"}),
        (12, [206, 207], {"highway": "path", "access": "no"}),
        (13, [207, 208], {"building": "yes"}),
    ]
    found = osm.read_pbf(write_pbf(tmp_path / "t.osm.pbf", ways))
    graph = found.graph
    edges = {tuple(sorted((int(graph.osm_id[u]), int(graph.osm_id[v]))))  # type: ignore[index]
             for u, v in zip(graph.u, graph.v, strict=True)}
    # Way 1 is one edge (node 2 is no junction: way 7 is not walkable), the rest one edge each.
    assert edges == {(1, 3), (3, 4), (4, 5), (5, 205), (205, 206)}
    assert found.ways == 5 and found.missing_nodes == 0
    # Lengths in metres from the shape: way 1 bends through node 2.
    e = next(i for i, (u, v) in enumerate(zip(graph.u, graph.v, strict=True))
             if {int(graph.osm_id[u]), int(graph.osm_id[v])} == {1, 3})  # type: ignore[index]
    assert graph.length[e] == pytest.approx(2 * 0.001 * 111_320 * np.cos(np.radians(35.75)), rel=2e-3)
    assert len(graph.shape_edge) == 1 and graph.shape_edge[0] == e


def test_helsinki_is_stored_as_nodes_and_edges_and_read_back(empty_db: Database, helsinki_pbf: Path) -> None:
    with empty_db.session() as session:
        result = service.import_network(session, path=helsinki_pbf, name="helsinki")
    net = result.network
    assert 3000 < net.node_count < 4000 and 4000 < net.edge_count < 5000
    assert 80 < net.length_km < 100
    assert 24.9 < net.min_lon < net.max_lon < 25.0 and 60.1 < net.min_lat < net.max_lat < 60.2
    assert result.missing_nodes > 0  # ways run off the extract's edge
    assert counts(empty_db) == (1, net.node_count, net.edge_count)
    parsed, _ = largest_component(osm.read_pbf(helsinki_pbf).graph)
    with empty_db.sessions() as session:
        stored = service.load_graph(session, name="helsinki")
    np.testing.assert_array_equal(stored.u, parsed.u)
    np.testing.assert_allclose(stored.length, parsed.length)
    np.testing.assert_allclose(stored.shape_lon, parsed.shape_lon)
    np.testing.assert_array_equal(stored.shape_edge, parsed.shape_edge)
    assert stored.osm_id is not None and (stored.osm_id == parsed.osm_id).all()
    with empty_db.session() as session, pytest.raises(Conflict, match="exists"):
        service.import_network(session, path=helsinki_pbf, name="helsinki")


@pytest.mark.parametrize(("damage", "expected"), [
    ("truncate", r"PBF error: unexpected EOF \(after node \d+, element [\d,]+ of the file\)"),
    ("corrupt", r"failed to uncompress data.*\(after node \d+, element [\d,]+ of the file\)"),
    ("text", r"not a readable OSM PBF file: PBF error: invalid BlobHeader size"),
])
def test_a_broken_pbf_is_a_precise_error_and_stores_nothing(
        empty_db: Database, helsinki_pbf: Path, tmp_path: Path, damage: str, expected: str) -> None:
    with empty_db.session() as session:
        service.import_network(session, path=helsinki_pbf, name="helsinki")
    before = counts(empty_db)
    data = bytearray(helsinki_pbf.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "corrupt":
        data[200_000:200_400] = bytes(b ^ 0x5A for b in data[200_000:200_400])
    else:
        data = bytearray(b"<osm>not a pbf</osm>")
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(bytes(data))
    with empty_db.session() as session, pytest.raises(osm.BrokenNetworkFile, match=expected) as caught:
        service.import_network(session, path=broken, name="helsinki", replace=True)
    assert caught.value.message.startswith("broken.osm.pbf ")
    assert counts(empty_db) == before  # the network it was to replace is untouched


def test_files_without_a_walkable_way_or_its_nodes_are_refused(empty_db: Database, tmp_path: Path) -> None:
    only_cars = write_pbf(tmp_path / "cars.osm.pbf", [(1, [1, 2, 3], {"highway": "motorway"})])
    with empty_db.session() as session, pytest.raises(osm.BrokenNetworkFile, match=r"holds no walkable way "
                                                        r"\(4 elements, 1 ways with a highway tag\)"):
        service.import_network(session, path=only_cars, name="cars")
    no_nodes = write_pbf(tmp_path / "ways.osm.pbf", [(1, [1, 2, 3], {"highway": "footway"})], nodes=False)
    with empty_db.session() as session, pytest.raises(osm.BrokenNetworkFile, match="not in the file"):
        service.import_network(session, path=no_nodes, name="ways")
    assert counts(empty_db) == (0, 0, 0)


def test_a_failure_while_storing_leaves_nothing_half_imported(
        empty_db: Database, helsinki_pbf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = repository.add_graph

    def fail_after_inserting(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("disk full")

    monkeypatch.setattr(repository, "add_graph", fail_after_inserting)
    with pytest.raises(RuntimeError), empty_db.session() as session:
        service.import_network(session, path=helsinki_pbf, name="helsinki")
    assert counts(empty_db) == (0, 0, 0)


def test_cli_imports_lists_and_draws_an_isochrone(
        tmp_path: Path, template_db: Path, helsinki_pbf: Path) -> None:
    env = env_for(tmp_path, template_db)
    imported = run(env, "livability", "import-network", str(helsinki_pbf), "--name", "helsinki")
    assert imported.returncode == 0, imported.stderr
    assert "imported network 'helsinki' from Helsinki.osm.pbf:" in imported.stdout
    assert "way-node references to nodes not in the file" in imported.stdout
    listed = run(env, "livability", "networks", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {n["name"]: n for n in json.loads(listed.stdout)}
    assert by_name["helsinki"]["synthetic"] is False and by_name["hebi-synthetic"]["synthetic"] is True
    drawn = run(env, "livability", "isochrone", "--network", "helsinki", "--lon", "24.944",
                "--lat", "60.1716", "--minutes", "5")
    assert drawn.returncode == 0, drawn.stderr
    feature = json.loads(drawn.stdout)
    assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert feature["properties"]["distance_m"] == pytest.approx(330.0)
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(helsinki_pbf.read_bytes()[:100_000])
    refused = run(env, "livability", "import-network", str(broken), "--name", "helsinki", "--replace")
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith(
        "error: broken.osm.pbf is not a readable OSM PBF file: PBF error")
    assert "Traceback" not in refused.stderr
