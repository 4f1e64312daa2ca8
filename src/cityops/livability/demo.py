"""The demo's walking network: a SYNTHETIC street network inside Hebi's real boundaries.

No OpenStreetMap extract of Hebi is available here, so the demo generates one, stored as network
`hebi-synthetic` (labelled synthetic); a city replaces it with `cityops livability import-network`.
Built from the places data (through the places service): the city's outline, and the centre, kind and
population of every village and community (村 and 社区; their polygons are synthetic too).

- Towns: every community (社区, 居委会) claims a disk of URBAN_RADIUS_M around its centre; the disks
  merge into towns where the places data puts the communities: the central city (淇滨区, 山城区, 鹤山区
  and the development zone) and the streets (街道) of the county towns of 浚县 and 淇县. Each town is
  a street lattice (one orientation per town, jittered corners, a few links left out), dense: 90 m
  apart at full scale.
- Villages: each village (村) outside the towns is a small lattice of lanes (60 m) in a disk sized by its
  population, kept inside its own Voronoi cell, so neighbouring villages do not overlap.
- Roads: settlements are linked along the Delaunay triangulation of their centres (links up to
  ROAD_MAX_M, and every link of its minimum spanning tree so the network is connected), each road one
  gently curved edge from the edge of one settlement to the edge of the other.
Only what lies inside the city's outline is kept (EDGE_MARGIN_M inside it), then the largest connected
part. At full scale this is about 10^5 edges, as a prefecture city's walking network is; "small" builds
the central district (淇滨区 and the development zone) with wider spacing: a few thousand edges."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy.sparse import coo_array
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import Delaunay, cKDTree
from sqlalchemy.orm import Session

from cityops.core.db import Database
from cityops.core.seeding import Generator, SeedContext
from cityops.livability import repository as repo
from cityops.livability import service
from cityops.livability.engine import (
    FloatArray,
    IntArray,
    StreetGraph,
    edge_coordinates,
    largest_component,
    local_crs,
    to_degrees,
    to_metres,
)
from cityops.places import service as places_service

DEMO_NETWORK = "hebi-synthetic"
URBAN_RADIUS_M = 650.0
ROAD_MAX_M = 3500.0
# Streets keep this far inside the outline the places service draws (simplified by up to ~30 m).
EDGE_MARGIN_M = 60.0
# Street spacing in metres: towns and villages; and which county units "small" keeps.
SPACING = {"full": (90.0, 60.0), "small": (160.0, 110.0)}
SMALL_COUNTIES = ("410611", "410671")


@dataclass(frozen=True)
class Settlement:
    code: str
    lon: float
    lat: float
    urban: bool
    population: int


@dataclass(frozen=True)
class Layout:
    city: Any  # the city's outline, WGS84
    settlements: list[Settlement]


def read_layout(session: Session) -> Layout:
    """The city's outline and its villages and communities, from the places service."""
    city = json.loads(places_service.geojson_layer(session, level="city"))
    outline = shapely.union_all([shapely.from_geojson(json.dumps(f["geometry"])) for f in city["features"]])
    settlements = []
    offset = 0
    while True:
        page = places_service.list_divisions(session, level="village", limit=1000, offset=offset)
        for d in page.items:
            if d.centroid_lon is None or d.centroid_lat is None:
                continue
            settlements.append(Settlement(code=d.code, lon=d.centroid_lon, lat=d.centroid_lat,
                                          urban=d.name.endswith(service.URBAN_SUFFIXES),
                                          population=d.population or 0))
        offset += len(page.items)
        if not page.items or offset >= page.total:
            break
    return Layout(city=outline, settlements=settlements)


@dataclass
class _Parts:
    """Nodes (metres) with the settlement group they belong to, and edges between them."""

    x: list[FloatArray]
    y: list[FloatArray]
    group: list[IntArray]
    a: list[IntArray]
    b: list[IntArray]
    count: int = 0

    def add(self, x: FloatArray, y: FloatArray, group: int, a: IntArray, b: IntArray) -> None:
        self.x.append(x)
        self.y.append(y)
        self.group.append(np.full(len(x), group, dtype=np.int64))
        self.a.append(a + self.count)
        self.b.append(b + self.count)
        self.count += len(x)


def lattice(area: Any, spacing: float, rng: np.random.Generator, *, jitter: float = 0.18,
            drop: float = 0.06) -> tuple[FloatArray, FloatArray, IntArray, IntArray]:
    """A street lattice over a polygon (metres): corners `spacing` apart in a random orientation,
    each moved by up to `jitter` of the spacing, a share `drop` of the links left out; only corners
    inside the polygon and links between them."""
    angle = rng.uniform(0, math.pi / 2)
    cos, sin = math.cos(angle), math.sin(angle)
    cx, cy = area.centroid.x, area.centroid.y
    minx, miny, maxx, maxy = area.bounds
    half = math.hypot(maxx - minx, maxy - miny) / 2 + spacing
    steps = np.arange(-half, half + spacing, spacing)
    i, j = np.meshgrid(steps, steps)
    x = cx + i * cos - j * sin + rng.uniform(-jitter, jitter, i.shape) * spacing
    y = cy + i * sin + j * cos + rng.uniform(-jitter, jitter, i.shape) * spacing
    inside = shapely.contains_xy(area, x, y)
    index = np.full(i.shape, -1, dtype=np.int64)
    index[inside] = np.arange(int(inside.sum()))
    a = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()])
    b = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()])
    keep = (a >= 0) & (b >= 0) & (rng.random(len(a)) >= drop)
    return x[inside], y[inside], a[keep], b[keep]


def generate(layout: Layout, *, scale: str = "full", seed: int = 2024) -> StreetGraph:
    """The synthetic walking network of a layout (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    town_spacing, village_spacing = SPACING[scale]
    settlements = layout.settlements
    if scale == "small":
        settlements = [s for s in settlements if s.code.startswith(SMALL_COUNTIES)]
    centre = layout.city.centroid
    crs = local_crs(round(centre.x, 2), round(centre.y, 2))
    forward = to_metres(crs)
    outline = shapely.transform(layout.city,
                                lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1])))
    city = outline.buffer(-EDGE_MARGIN_M)
    shapely.prepare(city)
    sx, sy = forward.transform(np.array([s.lon for s in settlements]), np.array([s.lat for s in settlements]))
    sx, sy = np.asarray(sx), np.asarray(sy)
    urban = np.array([s.urban for s in settlements])
    # Towns: merged disks around the communities.
    disks = shapely.buffer(shapely.points(sx[urban], sy[urban]), URBAN_RADIUS_M, quad_segs=8)
    towns = [shapely.intersection(t, city) for t in shapely.get_parts(shapely.union_all(disks))]
    town_area = shapely.union_all(towns)
    shapely.prepare(town_area)
    parts = _Parts([], [], [], [], [])
    # Which group (town, or village) each settlement belongs to, for the roads between them.
    group_of = np.full(len(settlements), -1, dtype=np.int64)
    for t, town in enumerate(towns):
        x, y, a, b = lattice(town, town_spacing, rng)
        parts.add(x, y, t, a, b)
        group_of[shapely.contains_xy(town, sx, sy)] = t
    cells = _voronoi_cells(sx, sy, city)
    for k in np.flatnonzero(group_of < 0):
        radius = float(np.clip(6.0 * math.sqrt(max(settlements[k].population, 100)), 150.0, 450.0))
        disk = shapely.Point(sx[k], sy[k]).buffer(radius, quad_segs=8)
        area = shapely.difference(shapely.intersection(disk, cells[k]), town_area)
        if area.is_empty:
            continue
        x, y, a, b = lattice(area, village_spacing, rng, drop=0.03)
        if len(x):
            group_of[k] = len(towns) + k
            parts.add(x, y, len(towns) + int(k), a, b)
    x, y = np.concatenate(parts.x), np.concatenate(parts.y)
    group = np.concatenate(parts.group)
    a, b = np.concatenate(parts.a), np.concatenate(parts.b)
    length = np.hypot(x[a] - x[b], y[a] - y[b])
    ra, rb, shape_x, shape_y, shape_edge = _roads(sx, sy, group_of, x, y, group, city, rng)
    road_length = _polyline_lengths(x, y, ra, rb, shape_x, shape_y, shape_edge)
    inverse = to_degrees(crs)
    lon, lat = inverse.transform(x, y)
    slon, slat = inverse.transform(shape_x, shape_y)
    graph = StreetGraph(crs=crs, lon=np.asarray(lon), lat=np.asarray(lat), u=np.concatenate([a, ra]),
                        v=np.concatenate([b, rb]), length=np.concatenate([length, road_length]),
                        shape_edge=shape_edge + len(a), shape_lon=np.asarray(slon),
                        shape_lat=np.asarray(slat))
    connected, _dropped = largest_component(graph)
    return connected


def _voronoi_cells(x: FloatArray, y: FloatArray, bounds: Any) -> list[Any]:
    """The Voronoi cell of each point (in the points' order), clipped to `bounds`."""
    points = shapely.points(x, y)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points), extend_to=bounds))
    tree = shapely.STRtree(cells)
    which, cell = tree.query(points, predicate="intersects")
    out: list[Any] = [shapely.Polygon()] * len(points)
    for p, c in zip(which.tolist(), cell.tolist(), strict=True):
        if out[p].is_empty:
            out[p] = cells[c]
    return out


def _roads(sx: FloatArray, sy: FloatArray, group_of: IntArray, x: FloatArray, y: FloatArray, group: IntArray,
           city: Any, rng: np.random.Generator
           ) -> tuple[IntArray, IntArray, FloatArray, FloatArray, IntArray]:
    """Roads between settlements of different groups along the Delaunay triangulation of their centres:
    each from the node of one group nearest the other's centre, gently curved."""
    placed = np.flatnonzero(group_of >= 0)
    empty = np.zeros(0, dtype=np.int64)
    if len(placed) < 3:
        return empty, empty.copy(), np.zeros(0), np.zeros(0), empty.copy()
    px, py = sx[placed], sy[placed]
    simplices = Delaunay(np.column_stack([px, py])).simplices
    sides = np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]])
    pairs = np.sort(sides, axis=1)
    pairs = np.unique(pairs, axis=0)
    span = np.hypot(px[pairs[:, 0]] - px[pairs[:, 1]], py[pairs[:, 0]] - py[pairs[:, 1]])
    tree = minimum_spanning_tree(coo_array((span + 1e-9, (pairs[:, 0], pairs[:, 1])),
                                           shape=(len(placed), len(placed)))).tocoo()
    in_tree = {(min(i, j), max(i, j)) for i, j in zip(tree.row.tolist(), tree.col.tolist(), strict=True)}
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(group.max() + 2))
    u: list[int] = []
    v: list[int] = []
    shape: list[tuple[float, float, int]] = []
    for (i, j), d in zip(pairs.tolist(), span.tolist(), strict=True):
        gi, gj = int(group_of[placed[i]]), int(group_of[placed[j]])
        if gi == gj:
            continue
        mid_inside = city.contains(shapely.Point((px[i] + px[j]) / 2, (py[i] + py[j]) / 2))
        if (i, j) not in in_tree and (d > ROAD_MAX_M or not mid_inside):
            continue
        ni = _nearest(order[bounds[gi]:bounds[gi + 1]], x, y, px[j], py[j])
        nj = _nearest(order[bounds[gj]:bounds[gj + 1]], x, y, px[i], py[i])
        length = math.hypot(x[nj] - x[ni], y[nj] - y[ni])
        if length < 1.0:
            continue
        edge = len(u)
        u.append(ni)
        v.append(nj)
        # A gentle bend: a sine arc up to 4 % of the length to one side, vertices every ~150 m.
        k = max(1, int(length // 150))
        t = np.arange(1, k + 1) / (k + 1)
        bend = rng.choice((-1.0, 1.0)) * min(0.04 * length, 80.0) * np.sin(np.pi * t)
        nx, ny = -(y[nj] - y[ni]) / length, (x[nj] - x[ni]) / length
        for tt, off in zip(t.tolist(), bend.tolist(), strict=True):
            shape.append((x[ni] + tt * (x[nj] - x[ni]) + off * nx, y[ni] + tt * (y[nj] - y[ni]) + off * ny,
                          edge))
    coords = np.array(shape, dtype=np.float64).reshape(-1, 3)
    return (np.array(u, dtype=np.int64), np.array(v, dtype=np.int64), coords[:, 0], coords[:, 1],
            coords[:, 2].astype(np.int64))


def _nearest(members: IntArray, x: FloatArray, y: FloatArray, tx: float, ty: float) -> int:
    return int(members[np.argmin((x[members] - tx) ** 2 + (y[members] - ty) ** 2)])


def _polyline_lengths(x: FloatArray, y: FloatArray, u: IntArray, v: IntArray, shape_x: FloatArray,
                      shape_y: FloatArray, shape_edge: IntArray) -> FloatArray:
    """Lengths of edges u -> shape vertices -> v (metres)."""
    coords, index = edge_coordinates(u, v, shape_edge, x, y, shape_x, shape_y)
    step = np.hypot(np.diff(coords[:, 0]), np.diff(coords[:, 1]))
    step[index[1:] != index[:-1]] = 0.0
    lengths: FloatArray = np.bincount(index[:-1], weights=step, minlength=len(u)).astype(np.float64)
    return lengths


def seed_network(session: Session, *, scale: str, seed: int) -> None:
    graph = generate(read_layout(session), scale=scale, seed=seed)
    service.save_network(session, name=DEMO_NETWORK, source=service.SOURCE_SYNTHETIC, graph=graph,
                         synthetic=True, replace=True)


# --- facilities ----------------------------------------------------------------------------------

# How many of each category the full city has. From the seed (the press conference of 2024-09-27): 541
# convenience outlets, 15 community commerce centres, 550 fitness trails, 247 fitness sites, 240+ parks of
# which 45 child-friendly (the rest split here by size class: 8 comprehensive, 57 community, 130 pocket
# parks). The seed gives no count of the others: these are SYNTHETIC counts of a plausible order for a
# city of 1.56 million (a kindergarten per 5,000 people or so), labelled synthetic like every row.
FACILITY_COUNTS = {
    "convenience_store": 541,
    "commerce_centre": 15,
    "fitness_trail": 550,
    "fitness_site": 247,
    "child_friendly_park": 45,
    "comprehensive_park": 8,
    "community_park": 57,
    "pocket_park": 130,
    "pocket_green": 300,
    "kindergarten": 300,
    "nursery": 60,
    "primary_school": 160,
    "middle_school": 60,
    "health_centre": 22,
    "clinic": 180,
    "elderly_day_care": 170,
    "community_canteen": 210,
    "medical_elderly_care": 25,
    "market": 130,
    "service_station": 280,
}
# Categories found in towns only (the others in villages too, where fewer people ask for them).
TOWN_ONLY = {
    "commerce_centre",
    "comprehensive_park",
    "community_park",
    "child_friendly_park",
    "pocket_park",
    "health_centre",
    "medical_elderly_care",
    "nursery",
    "fitness_trail",
}
# Weight of a town resident against a village resident when placing a facility.
TOWN_WEIGHT = 4.0
# Area ranges (m²) of green spaces by category: drawn log-uniformly.
GREEN_AREA_M2 = {
    "comprehensive_park": (100_000, 400_000),
    "community_park": (10_000, 60_000),
    "child_friendly_park": (5_000, 40_000),
    "pocket_park": (400, 9_000),
    "pocket_green": (150, 3_000),
}
# The first facility of a category for a community stands near its centre (metres).
NEAR_M = 150.0
# A facility stands this far (metres) from the street node it is placed at.
SETBACK_M = (10.0, 60.0)
# Facilities of one category keep at least this far apart (the import refuses closer ones as duplicates).
MIN_APART_M = 25.0


def facility_rows(
    layout: Layout, graph: StreetGraph, *, scale: str, seed: int
) -> list[tuple[int, dict[str, Any]]]:
    """SYNTHETIC facilities for the demo, as rows of an import file: one near each community (社区) while
    the count lasts, the rest near the street nodes around villages and communities chosen by population
    (town residents weigh TOWN_WEIGHT times more); green spaces as disks of their area with entrances on
    the rim."""
    rng = np.random.default_rng(seed)
    forward, inverse = to_metres(graph.crs), to_degrees(graph.crs)
    nx, ny = (np.asarray(v) for v in forward.transform(graph.lon, graph.lat))
    nodes = cKDTree(np.column_stack([nx, ny]))
    settlements = layout.settlements
    sx, sy = (
        np.asarray(v) for v in forward.transform([s.lon for s in settlements], [s.lat for s in settlements])
    )
    near = np.array([bool(nodes.query_ball_point((x, y), 300.0)) for x, y in zip(sx, sy, strict=True)])
    urban = np.array([s.urban for s in settlements])
    people = np.array([max(s.population, 1) for s in settlements], dtype=np.float64)
    weight = people * np.where(urban, TOWN_WEIGHT, 1.0)
    # The share of the city's (weighted) people this network serves sets how many facilities it gets.
    share = float(weight[near].sum() / weight.sum())
    rows: list[tuple[int, dict[str, Any]]] = []
    for category, full in FACILITY_COUNTS.items():
        where = near & urban if category in TOWN_ONLY else near
        if not where.any():
            continue
        count = max(1, round(full * share))
        p = np.where(where, weight, 0.0)
        placed: list[tuple[float, float]] = []
        tries = 0
        # First one near each community in turn, the most populous first (the city builds the living
        # circle community by community), then the rest where people are.
        firsts = [
            int(k) for k in np.flatnonzero(where & urban)[np.argsort(-people[where & urban], kind="stable")]
        ]
        while len(placed) < count and tries < count * 20:
            tries += 1
            first = bool(firsts)
            k = firsts.pop(0) if first else int(rng.choice(len(settlements), p=p / p.sum()))
            spread = NEAR_M if first else 350.0 if urban[k] else 200.0
            around = nodes.query_ball_point((sx[k], sy[k]), spread) or [int(nodes.query((sx[k], sy[k]))[1])]
            node = int(around[int(rng.integers(len(around)))])
            angle = rng.uniform(0, 2 * math.pi)
            area = None
            gates: list[list[float]] = []
            if category in GREEN_AREA_M2:
                low, high = GREEN_AREA_M2[category]
                area = float(np.exp(rng.uniform(math.log(low), math.log(high))))
                radius = math.sqrt(area / math.pi)
                step = radius + rng.uniform(*SETBACK_M)
                x, y = nx[node] + step * math.cos(angle), ny[node] + step * math.sin(angle)
                # The first gate faces the street node; bigger parks have more, around the rim.
                n_gates = 1 if area < 2_000 else int(rng.integers(2, 5))
                turns = angle + math.pi + np.arange(n_gates) * 2 * math.pi / n_gates
                gx, gy = x + radius * np.cos(turns), y + radius * np.sin(turns)
                glon, glat = inverse.transform(gx, gy)
                gates = [[round(float(a), 7), round(float(b), 7)] for a, b in zip(glon, glat, strict=True)]
            else:
                step = rng.uniform(*SETBACK_M)
                x, y = nx[node] + step * math.cos(angle), ny[node] + step * math.sin(angle)
            if any(math.hypot(x - a, y - b) < MIN_APART_M for a, b in placed):
                continue
            placed.append((x, y))
            lon, lat = inverse.transform(x, y)
            row: dict[str, Any] = {
                "category": category,
                "lon": round(float(lon), 7),
                "lat": round(float(lat), 7),
                "name": f"{settlements[k].code[-6:]}-{len(placed)}",
                "source_id": f"synthetic-{category}-{len(placed)}",
            }
            if area is not None:
                row["area_m2"] = round(area, 1)
                row["entrances"] = gates
            rows.append((len(rows) + 1, row))
    return rows


def seed_facilities(session: Session, *, scale: str, seed: int) -> None:
    """The demo's facilities through the import's own checks and storage (labelled synthetic)."""
    graph = service.load_graph(session, name=DEMO_NETWORK)
    rows = facility_rows(read_layout(session), graph, scale=scale, seed=seed)
    service.import_rows(
        session,
        kind="row",
        rows=rows,
        source=service.SOURCE_SYNTHETIC,
        network=DEMO_NETWORK,
        replace=True,
        synthetic=True,
    )


def run(ctx: SeedContext) -> None:
    advance = ctx.task("livability: synthetic walking network and facilities", total=2)
    with ctx.db.session() as session:
        seed_network(session, scale=ctx.scale, seed=ctx.rng("livability").getrandbits(32))
    advance(1)
    with ctx.db.session() as session:
        seed_facilities(session, scale=ctx.scale, seed=ctx.rng("livability-facilities").getrandbits(32))
    advance(1)


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return repo.by_name(session, DEMO_NETWORK) is not None


GENERATOR = Generator(name="livability", run=run, is_seeded=is_seeded)

