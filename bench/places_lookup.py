"""Point -> grid lookup for 1,000,000 random points inside Hebi, on one core.

PlaceIndex (raster of cells + exact shapely test in boundary cells) against two per-point shapely
loops measured in the same run: the naive loop (every polygon's `contains` until one holds the point)
and a per-point STRtree loop (candidates by bounding box, then `contains`). Target (issue 2):
>= 1,000,000 points/s. Run: .venv/bin/python bench/places_lookup.py
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import shapely
from _common import save

from cityops.places import synthetic
from cityops.places.index import NO_MATCH, Leaf, PlaceIndex

POINTS = 1_000_000
NAIVE_POINTS = 20_000
TREE_POINTS = 20_000
TARGET_PPS = 1_000_000


def naive(polygons: list[Any], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    out = np.full(len(xs), NO_MATCH)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        point = shapely.Point(x, y)
        for j, polygon in enumerate(polygons):
            if polygon.contains(point):
                out[i] = j
                break
    return out


def per_point_tree(polygons: list[Any], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    tree = shapely.STRtree(polygons)
    out = np.full(len(xs), NO_MATCH)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        point = shapely.Point(x, y)
        for j in sorted(int(k) for k in tree.query(point)):
            if polygons[j].contains(point):
                out[i] = j
                break
    return out


def main() -> None:
    started = time.perf_counter()
    places = synthetic.generate(2024)
    generate_s = time.perf_counter() - started
    grids = places.grids
    polygons = [g.geometry for g in grids]
    leaves = [Leaf(g.code, g.village_code, None, None) for g in grids]
    city = next(d.geometry for d in places.divisions if d.level == "city")
    points = synthetic.sample_points(city, POINTS, np.random.default_rng(1))
    xs, ys = points[:, 0].copy(), points[:, 1].copy()

    started = time.perf_counter()
    index = PlaceIndex(polygons, leaves)
    build_s = time.perf_counter() - started

    runs = []
    for _ in range(5):
        started = time.perf_counter()
        hits = index.locate(xs, ys)
        runs.append(time.perf_counter() - started)
    best, median = min(runs), float(np.median(runs))

    # Baselines on fresh (unprepared) copies of the same polygons.
    plain = list(shapely.from_wkb(shapely.to_wkb(polygons)))
    started = time.perf_counter()
    naive_hits = naive(plain, xs[:NAIVE_POINTS], ys[:NAIVE_POINTS])
    naive_s = time.perf_counter() - started
    started = time.perf_counter()
    tree_hits = per_point_tree(plain, xs[:TREE_POINTS], ys[:TREE_POINTS])
    tree_s = time.perf_counter() - started

    pps = POINTS / median
    naive_pps = NAIVE_POINTS / naive_s
    tree_pps = TREE_POINTS / tree_s
    save(
        "places_lookup",
        {
            "command": ".venv/bin/python bench/places_lookup.py",
            "points": POINTS,
            "grids": len(polygons),
            "index": {
                "build_s": round(build_s, 3),
                "cells": int(index.raster.size),
                "cell_deg": index.cell,
                "raster_mb": round(index.nbytes / 1e6, 1),
                "boundary_cell_share": round(index.boundary_fraction, 4),
            },
            "place_index": {
                "seconds_median": round(median, 4),
                "seconds_best": round(best, 4),
                "points_per_s": int(pps),
                "points_per_s_best": int(POINTS / best),
            },
            "naive_contains_loop": {
                "points": NAIVE_POINTS,
                "seconds": round(naive_s, 3),
                "points_per_s": int(naive_pps),
            },
            "per_point_strtree_contains_loop": {
                "points": TREE_POINTS,
                "seconds": round(tree_s, 3),
                "points_per_s": int(tree_pps),
            },
            "speedup_vs_naive": round(pps / naive_pps, 1),
            "speedup_vs_per_point_strtree": round(pps / tree_pps, 1),
            "same_answers": bool(
                np.array_equal(hits[:NAIVE_POINTS], naive_hits)
                and np.array_equal(hits[:TREE_POINTS], tree_hits)
            ),
            "unmatched_points": int(np.count_nonzero(hits == NO_MATCH)),
            "target_points_per_s": TARGET_PPS,
            "meets_target": pps >= TARGET_PPS,
            "geometry_generation_s": round(generate_s, 2),
            "versions": {"numpy": np.__version__, "shapely": shapely.__version__},
        },
    )


if __name__ == "__main__":
    main()
