"""Hebi's real divisions plus deterministic synthetic geometry below county level.

Real: the NBS 2023 division list (city, 6 county units, 48 townships, 1,041 villages/communities),
the 5 county polygons (DataV, GCJ-02, converted here to WGS84) and 33 township centre points (2016,
GCJ-02). Synthetic, and labelled so: the development-zone area, every township, village and grid
polygon, and all populations. No public polygons exist below county level.

How the synthetic layers are built, each one exactly tessellating its parent:
- 410671 (the development zone, a functional zone with no polygon) is carved out of 淇滨区 south of
  the district seat, and its 3 streets are placed inside it.
- Townships: a power diagram (weighted Voronoi) of township seed points, clipped to the county, with
  weights fitted so areas follow the township's village count (communities count less: urban).
  Seeds are the real 2016 centres where known, otherwise chosen inside the county.
- Villages: Voronoi cells of village seeds inside their township; communities (居委会/社区) are seeded
  densely around the township centre, villages (村) spread over the rest.
- Townships and counties are then re-formed as the exact union of their children.
- Populations: per village by kind, scaled to Hebi's 1.56 million.
- Grids: exactly 2,397, apportioned to villages by population (largest remainder, at least one
  each); a village is split by k-means seeds + Voronoi.
All overlay operations run on a 1e-8 degree precision grid (about 1 mm), so neighbouring cells share
identical vertices and levels tessellate without slivers.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPoint, Point, Polygon, box
from shapely.ops import nearest_points

from cityops.core import geo

DATA_DIR = Path(__file__).resolve().parent / "data"
GRID_SIZE = 1e-8
CITY_CODE = "410600"
DEV_ZONE_CODE = "410671"
QIBIN_CODE = "410611"
TOTAL_POPULATION = 1_560_000
TOTAL_GRIDS = 2_397
DEV_ZONE_AREA_KM2 = 45.0
# How much area a village of each kind asks for, relative to a rural village (村).
AREA_WEIGHT = {"rural": 1.0, "urban": 0.3, "farm": 0.5}
# Typical population of each kind before scaling to the city total (lognormal median, sigma).
POPULATION_MODEL = {"rural": (1250.0, 0.45), "urban": (3800.0, 0.5), "farm": (500.0, 0.3)}
SOURCE_DATAV = "DataV GeoAtlas 2021, GCJ-02 converted to WGS84"
SOURCE_SYNTHETIC = "synthetic"

FloatArray = npt.NDArray[np.float64]
Advance = Callable[[int], None]


@dataclass(frozen=True)
class DivisionRecord:
    code: str
    name: str
    level: str
    parent_code: str | None
    name_en: str | None


@dataclass
class GeneratedDivision:
    code: str
    name: str
    name_en: str | None
    level: str
    parent_code: str | None
    geometry: Any
    population: int
    synthetic: bool
    source: str
    source_datum: str


@dataclass
class GeneratedGrid:
    code: str
    name: str
    village_code: str
    geometry: Any
    population: int
    households: int


@dataclass
class GeneratedPlaces:
    divisions: list[GeneratedDivision] = field(default_factory=list)
    grids: list[GeneratedGrid] = field(default_factory=list)


# --- reading the shipped data -------------------------------------------------------------------


def read_divisions() -> list[DivisionRecord]:
    """The real NBS 2023 division list, with pinyin where the data has it."""
    pinyin = read_pinyin()
    rows: list[DivisionRecord] = []
    with (DATA_DIR / "divisions.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            parent = row["parent_code"] if row["level"] != "city" else None
            rows.append(
                DivisionRecord(row["code"], row["name"], row["level"], parent, pinyin.get(row["code"]))
            )
    return rows


def read_pinyin() -> dict[str, str]:
    """English names from the pinyin of the short name, written as place names are: "he shan" -> "Heshan"."""
    with (DATA_DIR / "names_pinyin.csv").open(encoding="utf-8", newline="") as fh:
        return {row["code"]: row["pinyin"].replace(" ", "").capitalize() for row in csv.DictReader(fh)}


def read_county_boundaries() -> dict[str, Any]:
    """The 5 real county polygons, converted from GCJ-02 to WGS84."""
    collection = json.loads((DATA_DIR / "boundaries.geojson").read_text(encoding="utf-8"))
    result: dict[str, Any] = {}
    for feature in collection["features"]:
        shape = shapely.from_geojson(json.dumps(feature["geometry"]))
        wgs = geo.geometry_gcj02_to_wgs84(shape)
        result[str(feature["properties"]["adcode"])] = _single(shapely.set_precision(wgs, GRID_SIZE))
    return result


def read_township_centres() -> dict[str, tuple[float, float]]:
    """Real 2016 township centre points (GCJ-02 in the file), as WGS84 (lon, lat)."""
    collection = json.loads((DATA_DIR / "township_centers_2016.geojson").read_text(encoding="utf-8"))
    codes = [f["properties"]["code"] for f in collection["features"]]
    coords = np.array([f["geometry"]["coordinates"] for f in collection["features"]], dtype=np.float64)
    lon, lat = geo.gcj02_to_wgs84(coords[:, 0], coords[:, 1])
    return {code: (float(x), float(y)) for code, x, y in zip(codes, lon, lat, strict=True)}


@dataclass(frozen=True)
class GeoNamesPlace:
    name_en: str
    lon: float
    lat: float
    county_code: str


def read_geonames() -> list[GeoNamesPlace]:
    """GeoNames points (already WGS84): the county seats and the city."""
    collection = json.loads((DATA_DIR / "places_geonames.geojson").read_text(encoding="utf-8"))
    return [
        GeoNamesPlace(
            name_en=f["properties"]["name_en"],
            lon=float(f["geometry"]["coordinates"][0]),
            lat=float(f["geometry"]["coordinates"][1]),
            county_code=f["properties"]["county_adcode"],
        )
        for f in collection["features"]
    ]


# --- names and kinds ----------------------------------------------------------------------------


def village_kind(name: str) -> str:
    if name.endswith("生活区"):
        return "farm"
    if name.endswith("居民委员会") or name.endswith("社区"):
        return "urban"
    return "rural"


def short_village_name(name: str) -> str:
    """The everyday name: 东马庄村民委员会 -> 东马庄村, 上关居民委员会 -> 上关社区."""
    for suffix, replacement in (("村民委员会", "村"), ("村委会", "村"), ("居民委员会", "社区")):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem if stem.endswith(replacement) else stem + replacement
    return name


# --- geometry helpers ---------------------------------------------------------------------------


def _polygonal(shape: Any) -> Any:
    """Only the areal parts of an overlay result (dropping touching lines and points)."""
    if shape.is_empty:
        return Polygon()
    if shape.geom_type in ("Polygon", "MultiPolygon"):
        return shape
    parts = [p for p in shapely.get_parts(shape) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts, grid_size=GRID_SIZE) if parts else Polygon()


def _single(shape: Any) -> Any:
    """A one-part MultiPolygon as a Polygon."""
    if shape.geom_type == "MultiPolygon" and len(shape.geoms) == 1:
        return shape.geoms[0]
    return shape


def _km_per_degree(lat: float) -> tuple[float, float]:
    return 111.32 * math.cos(math.radians(lat)), 110.57


def sample_points(shape: Any, n: int, rng: np.random.Generator) -> FloatArray:
    """n uniform random points inside a polygon (rejection sampling in its bounding box)."""
    minx, miny, maxx, maxy = shape.bounds
    shapely.prepare(shape)
    out: list[FloatArray] = []
    have = 0
    ratio = max(shape.area / max((maxx - minx) * (maxy - miny), 1e-18), 0.05)
    while have < n:
        m = int((n - have) / ratio * 1.3) + 16
        xs = rng.uniform(minx, maxx, m)
        ys = rng.uniform(miny, maxy, m)
        inside = shapely.contains_xy(shape, xs, ys)
        pts = np.column_stack([xs[inside], ys[inside]])
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:n]


def _best_candidate(existing: FloatArray, candidates: FloatArray, kx: float) -> FloatArray:
    """The candidate farthest from the existing points (Mitchell's best-candidate sampling)."""
    if len(existing) == 0:
        return np.asarray(candidates[0], dtype=np.float64)
    dx = (candidates[:, None, 0] - existing[None, :, 0]) * kx
    dy = candidates[:, None, 1] - existing[None, :, 1]
    nearest = np.min(dx * dx + dy * dy, axis=1)
    return np.asarray(candidates[int(np.argmax(nearest))], dtype=np.float64)


def _voronoi_cells(seeds: FloatArray, parent: Any) -> list[Any]:
    """Voronoi cells of the seeds clipped to the parent, in seed order."""
    if len(seeds) == 1:
        return [parent]
    minx, miny, maxx, maxy = parent.bounds
    pad = max(maxx - minx, maxy - miny)
    frame = box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    cells = shapely.get_parts(shapely.voronoi_polygons(MultiPoint(seeds), extend_to=frame, ordered=True))
    cells = shapely.set_precision(cells, GRID_SIZE)
    clipped = shapely.intersection(cells, parent, grid_size=GRID_SIZE)
    return [_polygonal(c) for c in clipped]


def _power_cells(seeds: FloatArray, weights: FloatArray, parent: Any, kx: float) -> list[Any]:
    """Cells of the power diagram {x : |x-s_i|^2 - w_i is least}, clipped to the parent.

    Distances are measured in a local frame where a degree of longitude is shrunk by kx, so the
    cells look right on the ground; every cell is an intersection of half-planes."""
    minx, miny, maxx, maxy = parent.bounds
    pad = 2 * max(maxx - minx, maxy - miny)
    frame = box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    local = seeds * np.array([kx, 1.0])
    big = 10 * pad + 1.0
    cells: list[Any] = []
    for i in range(len(seeds)):
        cell = frame
        for j in range(len(seeds)):
            if i == j:
                continue
            # In the local frame: 2 x.(s_j - s_i) <= |s_j|^2 - |s_i|^2 - w_j + w_i
            normal = local[j] - local[i]
            rhs = (local[j] @ local[j] - local[i] @ local[i] - weights[j] + weights[i]) / 2.0
            length = float(np.hypot(*normal))
            unit = normal / length
            middle = (local[i] + local[j]) / 2.0
            base = middle + unit * (rhs / length - unit @ middle)  # on the bisector, near the seeds
            along = np.array([-unit[1], unit[0]])
            corners = np.array(
                [
                    base + along * big,
                    base + along * big - unit * big,
                    base - along * big - unit * big,
                    base - along * big,
                ]
            )
            corners[:, 0] /= kx
            cell = shapely.intersection(cell, Polygon(corners))
            if cell.is_empty:
                break
        cells.append(
            _polygonal(
                shapely.intersection(shapely.set_precision(cell, GRID_SIZE), parent, grid_size=GRID_SIZE)
            )
        )
    return cells


def _fit_power_diagram(
    seeds: FloatArray,
    targets: FloatArray,
    parent: Any,
    kx: float,
    rng: np.random.Generator,
    iterations: int = 150,
) -> tuple[FloatArray, FloatArray]:
    """Seeds and weights of a capacity-constrained centroidal power diagram: each cell's share of the
    parent's area follows its target share, and seeds relax towards their cell's centroid so the
    weights converge even when starting seeds are bunched (real township centres often sit together
    in the county town). Works on a sample of points; returns (seeds in degrees, weights)."""
    frame = np.array([kx, 1.0])
    sample = sample_points(parent, 6000, rng) * frame
    local = seeds * frame
    share_target = targets / targets.sum()
    area = parent.area * kx
    weights = np.zeros(len(seeds))
    for _ in range(iterations):
        d2 = ((sample[:, None, :] - local[None, :, :]) ** 2).sum(axis=2)
        owner = np.argmin(d2 - weights[None, :], axis=1)
        share = np.bincount(owner, minlength=len(seeds)) / len(sample)
        weights += 0.5 * area * (share_target - share)
        weights -= weights.mean()
        for i in range(len(seeds)):
            members = sample[owner == i]
            if len(members):
                local[i] += 0.3 * (members.mean(axis=0) - local[i])
    return local / frame, weights


def _exact_partition(parent: Any, cells: list[Any]) -> list[Any]:
    """Turn cells that cover the parent only up to rounding (independently clipped half-planes) into
    an exact partition: node all their edges together, polygonize the faces and give each face to the
    cell that holds most of it, so neighbours share identical edges and no sliver is left over."""
    lines = shapely.union_all(
        [parent.boundary, *[c.boundary for c in cells if not c.is_empty]], grid_size=GRID_SIZE
    )
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    faces = faces[shapely.contains_xy(parent, *shapely.get_coordinates(shapely.point_on_surface(faces)).T)]
    tree = shapely.STRtree(cells)
    owned: dict[int, list[Any]] = defaultdict(list)
    for face in faces:
        candidates = [int(j) for j in tree.query(face)]
        if not candidates:
            candidates = [int(tree.nearest(face))]
        # A face mostly inside a cell goes to it; a sliver (gap or overlap left by rounding) goes to the
        # cell it shares most border with, so it never detaches from its owner.
        cover = [shapely.intersection(face, cells[j]).area for j in candidates]
        if max(cover) > 0.5 * face.area:
            best = candidates[int(np.argmax(cover))]
        else:
            best = max(
                candidates, key=lambda j: shapely.intersection(face.boundary, cells[j].boundary).length
            )
        owned[best].append(face)
    return [
        _single(shapely.union_all(owned[i], grid_size=GRID_SIZE)) if owned[i] else Polygon()
        for i in range(len(cells))
    ]


def _merge_fragments(cells: list[Any]) -> list[Any]:
    """Give every stray piece of a multi-part cell to the neighbour it shares most border with, so each
    cell is one connected polygon (where the parent allows it)."""
    cells = list(cells)
    strays: list[tuple[int, Any]] = []
    for i, cell in enumerate(cells):
        if cell.geom_type == "MultiPolygon":
            parts = sorted(cell.geoms, key=lambda p: p.area, reverse=True)
            cells[i] = parts[0]
            strays.extend((i, p) for p in parts[1:])
    if not strays:
        return cells
    tree = shapely.STRtree(cells)
    additions: dict[int, list[Any]] = defaultdict(list)
    for origin, piece in strays:
        best, best_len = origin, 0.0
        for j in tree.query(piece, predicate="intersects"):
            j = int(j)
            if j == origin:
                continue
            shared = shapely.intersection(piece.boundary, cells[j].boundary).length
            if shared > best_len:
                best, best_len = j, shared
        additions[best].append(piece)
    for j, pieces in additions.items():
        cells[j] = _single(shapely.union_all([cells[j], *pieces], grid_size=GRID_SIZE))
    return cells


def _kmeans(
    points: FloatArray, k: int, rng: np.random.Generator, kx: float, iterations: int = 12
) -> FloatArray:
    """Lloyd's k-means with k-means++ seeding, in the local metric frame."""
    local = points * np.array([kx, 1.0])
    centres = [local[int(rng.integers(len(local)))]]
    for _ in range(1, k):
        d2 = np.min(((local[:, None, :] - np.array(centres)[None, :, :]) ** 2).sum(axis=2), axis=1)
        probs = d2 / d2.sum() if d2.sum() > 0 else np.full(len(local), 1.0 / len(local))
        centres.append(local[int(rng.choice(len(local), p=probs))])
    c = np.array(centres)
    for _ in range(iterations):
        owner = np.argmin(((local[:, None, :] - c[None, :, :]) ** 2).sum(axis=2), axis=1)
        for j in range(k):
            members = local[owner == j]
            if len(members):
                c[j] = members.mean(axis=0)
    return np.asarray(c / np.array([kx, 1.0]), dtype=np.float64)


def _distinct(points: FloatArray) -> bool:
    return len(np.unique(np.round(points, 9), axis=0)) == len(points)


# --- apportionment ------------------------------------------------------------------------------


def largest_remainder(weights: npt.ArrayLike, total: int, minimum: int = 0) -> list[int]:
    """Split `total` in proportion to weights (Hamilton's method), each share at least `minimum`."""
    w = np.asarray(weights, dtype=np.float64)
    if minimum * len(w) > total:
        raise ValueError(f"cannot give {len(w)} shares at least {minimum} out of {total}")
    quotas = total * w / w.sum()
    shares = np.maximum(np.floor(quotas).astype(np.int64), minimum)
    diff = total - int(shares.sum())
    remainders = quotas - shares
    if diff > 0:
        for i in np.argsort(-remainders, kind="stable")[:diff]:
            shares[i] += 1
    elif diff < 0:
        for i in np.argsort(remainders, kind="stable"):
            if diff == 0:
                break
            if shares[i] > minimum:
                shares[i] -= 1
                diff += 1
    return [int(s) for s in shares]


# --- the generator ------------------------------------------------------------------------------


def _carve_dev_zone(qibin: Any, seat: tuple[float, float], rng: np.random.Generator) -> Any:
    """A plausible area for the development zone inside 淇滨区: an irregular blob of about
    DEV_ZONE_AREA_KM2, south of the district seat and clear of it."""
    kx, ky = _km_per_degree(seat[1])
    radius_km = math.sqrt(DEV_ZONE_AREA_KM2 / math.pi)
    target = Point(seat[0] - 2.5 / kx, seat[1] - 6.5 / ky)
    room = qibin.buffer(-1.3 * radius_km / ky)
    centre = target if room.contains(target) else nearest_points(room, target)[0]
    theta = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    wobble = np.ones_like(theta)
    for harmonic in (2, 3, 5):
        wobble += rng.uniform(0.03, 0.08) * np.sin(harmonic * theta + rng.uniform(0, 2 * np.pi))
    ring = np.column_stack(
        [
            centre.x + radius_km * wobble * np.cos(theta) / kx,
            centre.y + radius_km * wobble * np.sin(theta) / ky,
        ]
    )
    return _single(
        _polygonal(
            shapely.intersection(shapely.set_precision(Polygon(ring), GRID_SIZE), qibin, grid_size=GRID_SIZE)
        )
    )


def _township_seeds(
    codes: list[str],
    names: dict[str, str],
    county_shape: Any,
    known: dict[str, tuple[float, float]],
    urban_core: tuple[float, float],
    rng: np.random.Generator,
    kx: float,
) -> FloatArray:
    seeds: dict[str, FloatArray] = {}
    inner = county_shape.buffer(-0.004)
    if inner.is_empty:
        inner = county_shape
    for code in codes:
        if code in known:
            point = Point(known[code])
            if not inner.contains(point):
                # A real centre that fell inside the carved development zone moves just outside it.
                point = nearest_points(inner, point)[0]
            seeds[code] = np.array([point.x, point.y])
    for code in codes:
        if code in seeds:
            continue
        existing = np.array(list(seeds.values())) if seeds else np.empty((0, 2))
        candidates = sample_points(inner, 256, rng)
        if names[code].endswith("街道"):
            # Streets are urban: keep the candidates nearest the county's urban core.
            d = np.hypot((candidates[:, 0] - urban_core[0]) * kx, candidates[:, 1] - urban_core[1])
            candidates = candidates[np.argsort(d)[:16]]
        seeds[code] = _best_candidate(existing, candidates, kx)
    return np.array([seeds[c] for c in codes])


def _township_core(
    code: str, cell: Any, seed: FloatArray, known: dict[str, tuple[float, float]]
) -> FloatArray:
    """Where a township's communities cluster: its real centre when that lies in the cell."""
    for candidate in ([known[code]] if code in known else []) + [(float(seed[0]), float(seed[1]))]:
        if cell.contains(Point(candidate)):
            return np.array(candidate)
    point = cell.representative_point()
    return np.array([point.x, point.y])


def _village_seeds(
    kinds: list[str], township: Any, core: FloatArray, rng: np.random.Generator, kx: float
) -> FloatArray:
    """Communities cluster round the township centre; villages spread out (best-candidate)."""
    inner = township.buffer(-0.0005)
    if inner.is_empty or inner.area < township.area * 0.2:
        inner = township
    order = sorted(range(len(kinds)), key=lambda i: (kinds[i] != "urban", i))
    spread = math.sqrt(township.area) * 0.25
    chosen: list[FloatArray] = []
    out = np.zeros((len(kinds), 2))
    for i in order:
        existing = np.array(chosen) if chosen else np.empty((0, 2))
        if kinds[i] == "urban":
            raw = core + rng.normal(0.0, spread, (48, 2)) * np.array([1.0 / kx, 1.0])
            inside = raw[shapely.contains_xy(inner, raw[:, 0], raw[:, 1])]
            candidates = inside[:10] if len(inside) else sample_points(inner, 10, rng)
        else:
            candidates = sample_points(inner, 24, rng)
        out[i] = _best_candidate(existing, candidates, kx)
        chosen.append(out[i])
    return out


def generate(seed: int = 2024, advance: Advance | None = None) -> GeneratedPlaces:
    """Build every division with geometry and the 2,397 grids; deterministic for a seed.

    `advance` is called once per township (48 steps) and once for the final noding step."""
    rng = np.random.default_rng(seed)
    records = read_divisions()
    by_code = {r.code: r for r in records}
    children: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.parent_code:
            children[r.parent_code].append(r.code)
    counties = read_county_boundaries()
    centres = read_township_centres()
    geonames = {p.name_en: p for p in read_geonames()}
    seat_of = {
        "410602": "Heshan",
        "410603": "Shancheng",
        "410611": "Qibin",
        "410621": "Xun Xian",
        "410622": "Zhaoge",
    }

    qibin_seat = geonames["Qibin"]
    zone = _carve_dev_zone(counties[QIBIN_CODE], (qibin_seat.lon, qibin_seat.lat), rng)
    county_shapes = dict(counties)
    county_shapes[QIBIN_CODE] = _single(
        _polygonal(shapely.difference(counties[QIBIN_CODE], zone, grid_size=GRID_SIZE))
    )
    county_shapes[DEV_ZONE_CODE] = zone

    kinds = {r.code: village_kind(r.name) for r in records if r.level == "village"}
    village_shapes: dict[str, Any] = {}
    for county_code in sorted(county_shapes):
        shape = county_shapes[county_code]
        towns = sorted(children[county_code])
        kx = _km_per_degree(shape.centroid.y)[0] / _km_per_degree(shape.centroid.y)[1]
        if county_code in seat_of:
            seat = geonames[seat_of[county_code]]
            core = (seat.lon, seat.lat)
        else:
            core = (shape.centroid.x, shape.centroid.y)
        names = {c: by_code[c].name for c in towns}
        seeds = _township_seeds(towns, names, shape, centres, core, rng, kx)
        targets = np.array([sum(AREA_WEIGHT[kinds[v]] for v in children[t]) for t in towns])
        if len(towns) == 1:
            cells = [shape]
        else:
            seeds, weights = _fit_power_diagram(seeds, targets, shape, kx, rng)
            cells = _merge_fragments(_exact_partition(shape, _power_cells(seeds, weights, shape, kx)))
        for town, cell, town_seed in zip(towns, cells, seeds, strict=True):
            villages = sorted(children[town])
            core_point = _township_core(town, cell, town_seed, centres)
            v_seeds = _village_seeds([kinds[v] for v in villages], cell, core_point, rng, kx)
            if not _distinct(v_seeds):
                raise RuntimeError(f"duplicate village seeds in township {town}")
            v_cells = _merge_fragments(_voronoi_cells(v_seeds, cell))
            for v, v_cell in zip(villages, v_cells, strict=True):
                if v_cell.is_empty:
                    raise RuntimeError(f"village {v} got no area in township {town}")
                village_shapes[v] = v_cell
            if advance:
                advance(1)

    # Populations per village, scaled so the city totals TOTAL_POPULATION exactly.
    village_codes = sorted(village_shapes)
    raw_pop = np.array(
        [
            rng.lognormal(math.log(POPULATION_MODEL[kinds[v]][0]), POPULATION_MODEL[kinds[v]][1])
            for v in village_codes
        ]
    )
    village_pop = dict(
        zip(village_codes, largest_remainder(raw_pop, TOTAL_POPULATION, minimum=50), strict=True)
    )

    # Grids: apportion by population, then split each village.
    grid_counts = dict(
        zip(
            village_codes,
            largest_remainder([village_pop[v] for v in village_codes], TOTAL_GRIDS, minimum=1),
            strict=True,
        )
    )
    grid_village: list[str] = []
    grid_cells: list[Any] = []
    for v in village_codes:
        cells = _split_village(v, village_shapes[v], grid_counts[v], rng)
        grid_village.extend([v] * len(cells))
        grid_cells.extend(cells)

    # Each level was clipped separately; node everything once so every level is an exact union of
    # grid faces and neighbours share identical edges.
    city_outline = shapely.union_all(list(counties.values()), grid_size=GRID_SIZE)
    grid_cells = _merge_fragments(_exact_partition(city_outline, grid_cells))
    if advance:
        advance(1)

    grids: list[GeneratedGrid] = []
    grids_of: dict[str, list[int]] = defaultdict(list)
    for i, v in enumerate(grid_village):
        grids_of[v].append(i)
    for v in village_codes:
        idx = grids_of[v]
        areas = np.array([grid_cells[i].area for i in idx])
        pops = largest_remainder(areas * rng.uniform(0.8, 1.2, len(idx)), village_pop[v], minimum=1)
        short = short_village_name(by_code[v].name)
        for n, (i, pop) in enumerate(zip(idx, pops, strict=True), start=1):
            households = max(1, round(pop / rng.uniform(2.6, 3.2)))
            grids.append(
                GeneratedGrid(
                    code=f"{v}{n:03d}",
                    name=f"{short}第{n}网格",
                    village_code=v,
                    geometry=shapely.normalize(grid_cells[i]),
                    population=pop,
                    households=households,
                )
            )

    shape_of: dict[str, Any] = {}
    pop_of: dict[str, int] = {}
    for v in village_codes:
        shape_of[v] = _single(shapely.union_all([grid_cells[i] for i in grids_of[v]], grid_size=GRID_SIZE))
        pop_of[v] = village_pop[v]
    for level in ("township", "county", "city"):
        for r in records:
            if r.level == level:
                shape_of[r.code] = _single(
                    shapely.union_all([shape_of[c] for c in children[r.code]], grid_size=GRID_SIZE)
                )
                pop_of[r.code] = sum(pop_of[c] for c in children[r.code])

    places = GeneratedPlaces(grids=grids)
    for r in records:
        real = r.level == "city" or (r.level == "county" and r.code != DEV_ZONE_CODE)
        if r.level == "city":
            source = "union of the 5 county polygons; " + SOURCE_DATAV
        elif r.code == QIBIN_CODE:
            source = SOURCE_DATAV + "; minus the synthetic 410671 area"
        else:
            source = SOURCE_DATAV if real else SOURCE_SYNTHETIC
        places.divisions.append(
            GeneratedDivision(
                code=r.code,
                name=r.name,
                name_en=r.name_en,
                level=r.level,
                parent_code=r.parent_code,
                geometry=shapely.normalize(shape_of[r.code]),
                population=pop_of[r.code],
                synthetic=not real,
                source=source,
                source_datum="GCJ-02" if real else "WGS84",
            )
        )
    return places


def _split_village(code: str, shape: Any, k: int, rng: np.random.Generator) -> list[Any]:
    """k grid cells covering the village: Voronoi of k-means centres of random points in it, numbered
    north to south, then west to east, so numbering reads like a map."""
    if k == 1:
        return [shape]
    kx = _km_per_degree(shape.centroid.y)[0] / _km_per_degree(shape.centroid.y)[1]
    points = sample_points(shape, 40 * k, rng)
    seeds = _kmeans(points, k, rng, kx)
    if not _distinct(seeds):
        seeds = points[rng.choice(len(points), k, replace=False)]
    cells = _merge_fragments(_voronoi_cells(seeds, shape))
    if any(c.is_empty for c in cells):
        raise RuntimeError(f"empty grid cell in village {code}")
    order = sorted(range(k), key=lambda i: (-round(cells[i].centroid.y, 3), cells[i].centroid.x))
    return [cells[i] for i in order]
