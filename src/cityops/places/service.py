"""Places rules: seeding, reading, searching, point lookup and map layers.

Services flush, never commit: the request or the CLI's unit of work commits.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from cityops.core import geo
from cityops.core.auth.scope import scope_prefix
from cityops.core.db import Database, utcnow
from cityops.core.errors import NotFound, ValidationFailed
from cityops.places import repository as repo
from cityops.places import synthetic
from cityops.places.index import NO_MATCH, Leaf, PlaceIndex
from cityops.places.models import Division, Grid
from cityops.places.schemas import (
    MAX_BULK_POINTS,
    BulkLookupResult,
    CountyStats,
    DivisionDetail,
    DivisionPage,
    DivisionRead,
    GridRead,
    LookupResult,
    PlaceRef,
    PlacesStats,
    SearchHit,
    SearchResult,
)

LEVELS = ("city", "county", "township", "village")
HIERARCHY_KEY = repo.SESSION_CACHE_KEY
LAYER_LEVELS = (*LEVELS, "grid")
CHILD_LEVEL = {"city": "county", "county": "township", "township": "village", "village": "grid"}
# Simplification tolerance per map layer, in degrees (1e-4 deg is about 10 m).
SIMPLIFY = {"city": 3e-4, "county": 2e-4, "township": 1.5e-4, "village": 8e-5, "grid": 5e-5}
SYNTHETIC_NOTE = (
    "Division names and codes are real (NBS 2023) and county boundaries are real (DataV, "
    "converted from GCJ-02 to WGS84); township, village and grid polygons, the development "
    "zone's area and all populations are synthetic."
)


# --- shape columns ------------------------------------------------------------------------------


def shape_columns(shape: Any) -> dict[str, Any]:
    """The stored columns derived from a WGS84 geometry."""
    minx, miny, maxx, maxy = shape.bounds
    centre = shape.centroid if shape.contains(shape.centroid) else shape.representative_point()
    return {
        "geometry": shapely.to_wkb(shape),
        "centroid_lon": centre.x,
        "centroid_lat": centre.y,
        "min_lon": minx,
        "min_lat": miny,
        "max_lon": maxx,
        "max_lat": maxy,
        "area_km2": round(geo.area_km2(shape), 6),
    }


# --- seeding ------------------------------------------------------------------------------------


def is_seeded(session: Session) -> bool:
    return session.get(Division, synthetic.CITY_CODE) is not None


def seed_places(
    session: Session, *, seed: int, advance: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Load Hebi's real divisions and generate their synthetic geometry and grids.

    Replaces whatever places data exists. Calls `advance` once per generation step (see
    `seed_steps()`), then once for writing."""
    places = synthetic.generate(seed, advance)
    now = utcnow()
    session.execute(delete(Grid))
    session.execute(delete(Division))
    order = {level: i for i, level in enumerate(LEVELS)}
    rows = []
    for d in sorted(places.divisions, key=lambda d: (order[d.level], d.code)):
        rows.append(
            {
                "code": d.code,
                "name": d.name,
                "name_en": d.name_en,
                "level": d.level,
                "parent_code": d.parent_code,
                "population": d.population,
                "geometry_synthetic": d.synthetic,
                "geometry_source": d.source,
                "source_datum": d.source_datum,
                "updated_at": now,
                **shape_columns(d.geometry),
            }
        )
    session.execute(insert(Division), rows)
    grid_rows = [
        {
            "code": g.code,
            "name": g.name,
            "village_code": g.village_code,
            "population": g.population,
            "households": g.households,
            "synthetic": True,
            "geometry_source": synthetic.SOURCE_SYNTHETIC,
            "source_datum": "WGS84",
            "updated_at": now,
            **shape_columns(g.geometry),
        }
        for g in places.grids
    ]
    session.execute(insert(Grid), grid_rows)
    repo.bump_revision(session)
    if advance:
        advance(1)
    return repo.count_by_level(session)


def seed_steps() -> int:
    """Progress steps of `seed_places`: one per township, one for noding, one for writing."""
    return sum(1 for r in synthetic.read_divisions() if r.level == "township") + 2


# --- reading ------------------------------------------------------------------------------------


def _bbox(obj: Division | Grid) -> tuple[float, float, float, float] | None:
    if obj.min_lon is None or obj.min_lat is None or obj.max_lon is None or obj.max_lat is None:
        return None
    return (obj.min_lon, obj.min_lat, obj.max_lon, obj.max_lat)


def division_read(obj: Division) -> DivisionRead:
    read = DivisionRead.model_validate(obj)
    read.bbox = _bbox(obj)
    return read


def grid_read(obj: Grid) -> GridRead:
    read = GridRead.model_validate(obj)
    read.bbox = _bbox(obj)
    return read


def get_division(session: Session, *, code: str) -> DivisionDetail:
    """A division with its ancestors, children (or grids for a village) and counts below it."""
    division = repo.get_division(session, code)
    if division is None:
        raise NotFound(f"no division with code {code!r}", field="code")
    detail = DivisionDetail(**division_read(division).model_dump())
    ancestors: list[DivisionRead] = []
    parent_code = division.parent_code
    while parent_code:
        parent = repo.get_division(session, parent_code)
        if parent is None:
            break
        ancestors.insert(0, division_read(parent))
        parent_code = parent.parent_code
    detail.ancestors = ancestors
    detail.children = [division_read(c) for c in repo.children(session, code)]
    if division.level == "village":
        detail.grids = [grid_read(g) for g in repo.grids_of(session, code)]
    detail.counts = descendant_counts(session, code=code)
    return detail


def descendant_counts(session: Session, *, code: str) -> dict[str, int]:
    tree = _Hierarchy.load(session)
    counts = {level: 0 for level in (*LEVELS[1:], "grid")}
    for node in tree.descendants(code):
        counts[tree.level[node]] += 1
    counts["grid"] = sum(tree.grid_count.get(v, 0) for v in tree.descendants(code, level="village"))
    if tree.level.get(code) == "village":
        counts["grid"] = tree.grid_count.get(code, 0)
    return {k: v for k, v in counts.items() if LAYER_LEVELS.index(k) > LAYER_LEVELS.index(tree.level[code])}


def get_grid(session: Session, *, code: str) -> GridRead:
    grid = repo.get_grid(session, code)
    if grid is None:
        raise NotFound(f"no grid with code {code!r}", field="code")
    return grid_read(grid)


def list_divisions(
    session: Session,
    *,
    level: str | None = None,
    parent_code: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> DivisionPage:
    if level is not None and level not in LEVELS:
        raise ValidationFailed(f"level must be one of {', '.join(LEVELS)}, not {level!r}", field="level")
    if not 1 <= limit <= 1000:
        raise ValidationFailed("limit must be between 1 and 1000", field="limit")
    if offset < 0:
        raise ValidationFailed("offset must not be negative", field="offset")
    items, total = repo.list_divisions(
        session, level=level, parent_code=parent_code, q=(q or "").strip() or None, limit=limit, offset=offset
    )
    return DivisionPage(items=[division_read(d) for d in items], total=total, limit=limit, offset=offset)


def search(session: Session, *, q: str, limit: int = 20) -> SearchResult:
    """Divisions and grids by code prefix, Chinese name or pinyin (spaces and case ignored)."""
    text = q.strip()
    if not text:
        raise ValidationFailed("search text is empty", field="q")
    if len(text) > 60:
        raise ValidationFailed("search text is longer than 60 characters", field="q")
    hits = [
        SearchHit(
            code=d.code,
            name=d.name,
            name_en=d.name_en,
            level=d.level,
            parent_code=d.parent_code,
        )
        for d in repo.search_divisions(session, text, limit)
    ]
    if len(hits) < limit:
        hits += [
            SearchHit(code=g.code, name=g.name, name_en=None, level="grid", parent_code=g.village_code)
            for g in repo.search_grids(session, text, limit - len(hits))
        ]
    return SearchResult(items=hits)


def stats(session: Session) -> PlacesStats:
    tree = _Hierarchy.load(session)
    counts = {level: 0 for level in LAYER_LEVELS}
    for level in tree.level.values():
        counts[level] += 1
    counts["grid"] = sum(tree.grid_count.values())
    counties = []
    for code in tree.children.get(tree.root or "", []):
        villages = tree.descendants(code, level="village")
        counties.append(
            CountyStats(
                code=code,
                name=tree.name[code],
                name_en=tree.name_en[code],
                townships=len(tree.descendants(code, level="township")),
                villages=len(villages),
                grids=sum(tree.grid_count.get(v, 0) for v in villages),
                population=tree.population.get(code) or 0,
                area_km2=round(tree.area.get(code) or 0.0, 1),
                synthetic=tree.synthetic.get(code, True),
            )
        )
    root = tree.root
    return PlacesStats(
        counts=counts,
        counties=counties,
        population=(tree.population.get(root) or 0) if root else 0,
        area_km2=round((tree.area.get(root) or 0.0) if root else 0.0, 1),
        synthetic_note=SYNTHETIC_NOTE,
    )


@dataclass(frozen=True)
class ChildRow:
    """A child division with what lies below it, for the browse page."""

    code: str
    name: str
    name_en: str | None
    level: str
    townships: int
    villages: int
    grids: int
    population: int | None
    area_km2: float | None
    synthetic: bool


def child_rows(session: Session, *, code: str) -> list[ChildRow]:
    tree = _Hierarchy.load(session)
    rows = []
    for child in tree.children.get(code, []):
        villages = tree.descendants(child, level="village") if tree.level[child] != "village" else [child]
        rows.append(
            ChildRow(
                code=child,
                name=tree.name[child],
                name_en=tree.name_en[child],
                level=tree.level[child],
                townships=len(tree.descendants(child, level="township")),
                villages=len(villages) if tree.level[child] != "village" else 0,
                grids=sum(tree.grid_count.get(v, 0) for v in villages),
                population=tree.population[child],
                area_km2=tree.area[child],
                synthetic=tree.synthetic[child],
            )
        )
    return rows


def root_code(session: Session) -> str | None:
    """The top division (the city) of this installation."""
    return _Hierarchy.load(session).root


@dataclass
class _Hierarchy:
    """The division tree in memory (about a thousand rows): cheap to load, used for counts."""

    level: dict[str, str] = field(default_factory=dict)
    name: dict[str, str] = field(default_factory=dict)
    name_en: dict[str, str | None] = field(default_factory=dict)
    parent: dict[str, str | None] = field(default_factory=dict)
    population: dict[str, int | None] = field(default_factory=dict)
    area: dict[str, float | None] = field(default_factory=dict)
    synthetic: dict[str, bool] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    grid_count: dict[str, int] = field(default_factory=dict)
    root: str | None = None

    @classmethod
    def load(cls, session: Session) -> _Hierarchy:
        # Pages ask several questions of the tree per request: load it once per session (a places
        # write in the session drops it, see repository.bump_revision).
        cached: _Hierarchy | None = session.info.get(HIERARCHY_KEY)
        if cached is not None:
            return cached
        tree = cls()
        for code, name, name_en, level, parent, population, area, synth in repo.hierarchy(session):
            tree.level[code] = level
            tree.name[code] = name
            tree.name_en[code] = name_en
            tree.parent[code] = parent
            tree.population[code] = population
            tree.area[code] = area
            tree.synthetic[code] = bool(synth)
            if level == "city" and tree.root is None:
                tree.root = code
        for code, parent in tree.parent.items():
            if parent in tree.level:
                tree.children.setdefault(parent, []).append(code)
        tree.grid_count = {str(v): int(n) for v, n in repo.grid_villages(session)}
        session.info[HIERARCHY_KEY] = tree
        return tree

    def descendants(self, code: str, level: str | None = None) -> list[str]:
        out: list[str] = []
        stack = list(reversed(self.children.get(code, [])))
        while stack:
            node = stack.pop()
            if level is None or self.level[node] == level:
                out.append(node)
            stack.extend(reversed(self.children.get(node, [])))
        return out


# --- coordinates and lookup ---------------------------------------------------------------------


def validate_coordinates(
    lon: npt.ArrayLike, lat: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Finite WGS84 degrees: lon in -180..180, lat in -90..90; otherwise ValidationFailed naming the field
    (and the first bad index for arrays)."""
    try:
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationFailed("coordinates must be numbers", field="lon") from None
    if x.shape != y.shape:
        raise ValidationFailed(f"lon has {x.size} values but lat has {y.size}", field="lat")
    for name, values, limit in (("lon", x, 180.0), ("lat", y, 90.0)):
        bad = ~np.isfinite(values) | (np.abs(values) > limit)
        if bad.any():
            flat = np.flatnonzero(bad.ravel())
            where = f" at index {int(flat[0])}" if values.ndim else ""
            value = values.ravel()[flat[0]]
            raise ValidationFailed(
                f"{name} must be a finite number between {-limit:g} and {limit:g}; got {value!r}{where}",
                field=name,
            )
    return x, y


def build_index(session: Session, *, revision: int | None = None) -> PlaceIndex:
    """The lookup index over every grid (the finest level), with the codes above each grid."""
    tree = _Hierarchy.load(session)
    rows = repo.leaf_grids(session)
    polygons = shapely.from_wkb([r.geometry for r in rows])
    leaves = []
    for code, _name, village, _wkb in rows:
        township = tree.parent.get(village)
        county = tree.parent.get(township) if township else None
        leaves.append(Leaf(grid_code=code, village_code=village, township_code=township, county_code=county))
    names = {**tree.name, **{r.code: r.name for r in rows}}
    return PlaceIndex(
        polygons, leaves, revision=repo.revision(session) if revision is None else revision, names=names
    )


def _ref(index: PlaceIndex, code: str | None) -> PlaceRef | None:
    if code is None:
        return None
    return PlaceRef(code=code, name=index.names.get(code, code))


def random_point(rng: random.Random, index: PlaceIndex) -> tuple[float, float]:
    """A uniformly random point inside a random grid (synthetic data: demo seeds and simulators)."""
    polygon = index.polygons[rng.randrange(len(index.polygons))]
    minx, miny, maxx, maxy = polygon.bounds
    for _ in range(50):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if polygon.contains(shapely.Point(x, y)):
            return x, y
    centre = polygon.representative_point()
    return centre.x, centre.y


def lookup_point(index: PlaceIndex, *, lon: float, lat: float) -> LookupResult:
    """Grid, village, township and county of a WGS84 point; NotFound outside the city."""
    x, y = validate_coordinates(lon, lat)
    hit = int(index.locate(x.reshape(1), y.reshape(1))[0])
    if hit == NO_MATCH:
        raise NotFound(
            f"point ({float(x):.6f}, {float(y):.6f}) is outside the city's divisions "
            "(coordinates are WGS84 longitude, latitude)"
        )
    leaf = index.leaves[hit]
    return LookupResult(
        lon=float(x),
        lat=float(y),
        grid=_ref(index, leaf.grid_code),
        village=_ref(index, leaf.village_code),
        township=_ref(index, leaf.township_code),
        county=_ref(index, leaf.county_code),
    )


def lookup_points(
    index: PlaceIndex, *, lon: Sequence[float] | npt.ArrayLike, lat: Sequence[float] | npt.ArrayLike
) -> BulkLookupResult:
    x, y = validate_coordinates(lon, lat)
    if x.ndim != 1:
        raise ValidationFailed("lon and lat must be lists of numbers", field="lon")
    if x.size > MAX_BULK_POINTS:
        raise ValidationFailed(f"at most {MAX_BULK_POINTS} points per request, got {x.size}", field="lon")
    hits = index.locate(x, y)
    columns: dict[str, list[str | None]] = {"grid": [], "village": [], "township": [], "county": []}
    table = [(lf.grid_code, lf.village_code, lf.township_code, lf.county_code) for lf in index.leaves]
    for h in hits.tolist():
        codes: tuple[str | None, ...] = table[h] if h != NO_MATCH else (None, None, None, None)
        for key, value in zip(columns, codes, strict=True):
            columns[key].append(value)
    return BulkLookupResult(count=int(x.size), matched=int(np.count_nonzero(hits != NO_MATCH)), **columns)


def points_in_zone(
    session: Session,
    *,
    lon: Sequence[float],
    lat: Sequence[float],
    code: str | None = None,
    polygon: Sequence[tuple[float, float]] | None = None,
) -> list[bool] | None:
    """Whether each WGS84 point lies in a zone (a point on its edge does): the grid or division of
    `code`, or a `polygon` of (lon, lat) pairs. None when the code names no place with a boundary."""
    if polygon is not None:
        shape = shapely.Polygon(polygon)
    else:
        place: Grid | Division | None = None
        if code:
            place = repo.get_grid(session, code) or repo.get_division(session, code)
        if place is None or place.geometry is None:
            return None
        shape = shapely.from_wkb(place.geometry)
    x, y = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    return [bool(v) for v in np.atleast_1d(shapely.intersects_xy(shape, x, y))]


@dataclass(frozen=True)
class AreaGrid:
    """A grid an area covers, with its village and a point inside the grid (to place things there)."""

    grid_code: str
    grid_name: str
    village_code: str
    village_name: str
    lon: float
    lat: float


# How much of a grid (or of the area) an overlap must be for the grid to count as covered.
MIN_AREA_SHARE = 0.05


def grids_in_area(
    index: PlaceIndex, *, codes: Sequence[str] = (), geometry: Any = None, min_share: float = MIN_AREA_SHARE
) -> list[AreaGrid]:
    """The grids an area covers, by code: every grid inside the divisions (or grids) named by `codes`,
    and every grid that `geometry` (WGS84 polygons) overlaps by at least `min_share` of the grid's area
    or of the geometry's own, so that slivers along a neighbour's edge (a simplified outline) do not
    count and a small area inside one grid does."""
    prefixes = []
    for code in codes:
        try:
            prefixes.append(scope_prefix(code))
        except ValueError:
            continue
    chosen = {i for i, leaf in enumerate(index.leaves) if leaf.grid_code and prefixes
              and leaf.grid_code.startswith(tuple(prefixes))}
    if geometry is not None and not geometry.is_empty and len(index.polygons):
        candidates = np.array(
            sorted(set(index.tree.query(geometry, predicate="intersects").tolist()) - chosen), dtype=np.int64
        )
        if len(candidates):
            polygons = index.polygons[candidates]
            grid_area = shapely.area(polygons)
            overlap = grid_area.copy()
            partly = ~shapely.contains(geometry, polygons)
            overlap[partly] = shapely.area(shapely.intersection(polygons[partly], geometry))
            enough = (overlap >= min_share * grid_area) | (overlap >= min_share * geometry.area)
            chosen.update(int(i) for i in candidates[enough & (overlap > 0)])
    found = sorted(chosen, key=lambda i: index.leaves[i].grid_code or "")
    points = shapely.point_on_surface(index.polygons[found]) if found else []
    grids = []
    for i, point in zip(found, points, strict=True):
        leaf = index.leaves[i]
        grid, village = leaf.grid_code or "", leaf.village_code or ""
        grids.append(AreaGrid(grid_code=grid, grid_name=index.names.get(grid, grid), village_code=village,
                              village_name=index.names.get(village, village), lon=float(point.x),
                              lat=float(point.y)))
    return grids


# --- map layers ---------------------------------------------------------------------------------


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValidationFailed(
            "bbox must be four numbers: min_lon,min_lat,max_lon,max_lat", field="bbox"
        ) from None
    if len(values) != 4:
        raise ValidationFailed("bbox must be four numbers: min_lon,min_lat,max_lon,max_lat", field="bbox")
    validate_coordinates(values[0::2], values[1::2])
    if values[0] > values[2] or values[1] > values[3]:
        raise ValidationFailed("bbox minimum is greater than its maximum", field="bbox")
    return (values[0], values[1], values[2], values[3])


def geojson_layer(
    session: Session,
    *,
    level: str,
    parent_code: str | None = None,
    code: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> bytes:
    """A GeoJSON FeatureCollection (WGS84, simplified) of one level, optionally limited to the
    descendants of `parent_code`, to one `code`, and/or to a bounding box."""
    if level not in LAYER_LEVELS:
        raise ValidationFailed(
            f"level must be one of {', '.join(LAYER_LEVELS)}, not {level!r}", field="level"
        )
    tree = _Hierarchy.load(session) if parent_code or level == "grid" else None
    codes: list[str] | None = None
    if parent_code:
        assert tree is not None
        if parent_code not in tree.level:
            raise NotFound(f"no division with code {parent_code!r}", field="parent")
        if level == "grid":
            codes = tree.descendants(parent_code, level="village")
            if tree.level[parent_code] == "village":
                codes = [parent_code]
        else:
            codes = tree.descendants(parent_code, level=level)
    features: list[str] = []
    if level == "grid":
        rows = repo.grid_shapes(session, village_codes=codes, codes=[code] if code else None, bbox=bbox)
        for r in rows:
            props = {
                "code": r.code,
                "name": r.name,
                "name_en": None,
                "level": "grid",
                "parent_code": r.village_code,
                "synthetic": bool(r.synthetic),
            }
            features.append(_feature(r.geometry, props, SIMPLIFY["grid"]))
    else:
        if code:
            codes = [c for c in (codes if codes is not None else [code]) if c == code]
        rows = repo.division_shapes(session, level=level, codes=codes, bbox=bbox)
        for r in rows:
            props = {
                "code": r.code,
                "name": r.name,
                "name_en": r.name_en,
                "level": r.level,
                "parent_code": r.parent_code,
                "synthetic": bool(r.geometry_synthetic),
            }
            features.append(_feature(r.geometry, props, SIMPLIFY[level]))
    return ('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}").encode()


def _feature(wkb: bytes, props: dict[str, Any], tolerance: float) -> str:
    shape = shapely.from_wkb(wkb)
    simple = shapely.simplify(shape, tolerance, preserve_topology=True)
    simple = shapely.set_precision(simple, 1e-6)
    if simple.is_empty:
        simple = shape
    return (
        '{"type":"Feature","properties":'
        + json.dumps(props, ensure_ascii=False)
        + ',"geometry":'
        + str(shapely.to_geojson(simple))
        + "}"
    )


# --- per-app cache ------------------------------------------------------------------------------


class PlacesCache:
    """What the API keeps between requests: the lookup index and rendered map layers, valid for one
    places revision. A CLI import in another process bumps the revision, so the next request here
    notices (one primary-key read) and rebuilds."""

    MAX_LAYERS = 256

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._revision = -1
        self._index: PlaceIndex | None = None
        self._layers: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()

    def _check(self, session: Session) -> int:
        current = repo.revision(session)
        if current != self._revision:
            self._revision = current
            self._index = None
            self._layers.clear()
        return current

    def index(self, session: Session) -> PlaceIndex:
        with self._lock:
            revision = self._check(session)
            if self._index is None:
                self._index = build_index(session, revision=revision)
            return self._index

    def layer(
        self,
        session: Session,
        *,
        level: str,
        parent_code: str | None = None,
        code: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
    ) -> bytes:
        # Round the box outwards so panning by a few pixels reuses the cached answer.
        key_bbox = (
            None
            if bbox is None
            else (
                math.floor(bbox[0] * 100) / 100,
                math.floor(bbox[1] * 100) / 100,
                math.ceil(bbox[2] * 100) / 100,
                math.ceil(bbox[3] * 100) / 100,
            )
        )
        key = (level, parent_code, code, key_bbox)
        with self._lock:
            self._check(session)
            cached = self._layers.get(key)
            if cached is not None:
                self._layers.move_to_end(key)
                return cached
        body = geojson_layer(session, level=level, parent_code=parent_code, code=code, bbox=key_bbox)
        with self._lock:
            self._layers[key] = body
            while len(self._layers) > self.MAX_LAYERS:
                self._layers.popitem(last=False)
        return body

    def invalidate(self) -> None:
        with self._lock:
            self._revision = -1
            self._index = None
            self._layers.clear()


def cache_for(state: Any) -> PlacesCache:
    """The PlacesCache on an app's state (created on first use)."""
    cache: PlacesCache | None = getattr(state, "places_cache", None)
    if cache is None:
        cache = PlacesCache(state.db)
        state.places_cache = cache
    return cache


# --- neighbours across a boundary ---------------------------------------------------------------

MAX_NEIGHBOUR_M = 5_000.0
# Only to size the search box; distances are measured in the local projection below.
_METRES_PER_DEGREE_LAT = 110_574.0
_METRES_PER_DEGREE_LON_EQUATOR = 111_320.0


@dataclass(frozen=True)
class NearbyUnit:
    level: str  # "village" or "grid"
    code: str
    name: str
    village_code: str  # the village itself, or the village of the grid
    distance_m: float


@dataclass(frozen=True)
class Neighbours:
    grid_code: str | None  # the grid and village holding the point (None outside them)
    village_code: str | None
    boundary_m: float | None  # from the point to the nearest edge of its grid or village
    units: list[NearbyUnit]  # other villages and grids within the distance, nearest first


def _local_metres(lon: float, lat: float) -> Callable[[Any], Any]:
    """Geometry -> the same geometry in metres on an azimuthal equidistant projection centred on the
    point (pyproj): distances from the point are true geodesic distances on the WGS84 ellipsoid."""
    from pyproj import Transformer

    transformer = Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m", always_xy=True
    )

    def project(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return lambda shape: shapely.transform(shape, project)


def neighbours_near(session: Session, *, lon: float, lat: float, within_m: float) -> Neighbours:
    """The villages and grids other than the point's own whose boundary lies within `within_m` metres
    of a WGS84 point, when the point is that close to the boundary of its grid or village (none
    otherwise). Distances in metres, measured on a local azimuthal equidistant projection centred on
    the point (true distances from it)."""
    x, y = validate_coordinates(lon, lat)
    lon, lat = float(x), float(y)
    if not 0 < within_m <= MAX_NEIGHBOUR_M:
        raise ValidationFailed(f"within_m must be above 0 and at most {MAX_NEIGHBOUR_M:g}", field="within_m")
    # A search box a little wider than the distance, so no candidate is missed near its corners.
    dlat = within_m * 1.2 / _METRES_PER_DEGREE_LAT
    dlon = within_m * 1.2 / (_METRES_PER_DEGREE_LON_EQUATOR * max(math.cos(math.radians(lat)), 0.01))
    bbox = (lon - dlon, lat - dlat, lon + dlon, lat + dlat)
    project = _local_metres(lon, lat)
    origin = shapely.Point(0.0, 0.0)
    found: dict[str, list[tuple[str, str, str, Any]]] = {
        "grid": [
            (r.code, r.name, r.village_code, project(shapely.from_wkb(r.geometry)))
            for r in repo.grid_shapes(session, bbox=bbox)
        ],
        "village": [
            (r.code, r.name, r.code, project(shapely.from_wkb(r.geometry)))
            for r in repo.division_shapes(session, level="village", bbox=bbox)
        ],
    }
    # The point's own units: the lowest code covering it, as the point lookup answers on a shared edge.
    own_grid = next((g for g in found["grid"] if g[3].covers(origin)), None)
    own_village_code = own_grid[2] if own_grid else None
    own_village = next((v for v in found["village"] if v[0] == own_village_code), None) or next(
        (v for v in found["village"] if v[3].covers(origin)), None
    )
    edges = [float(shapely.distance(origin, u[3].boundary)) for u in (own_grid, own_village) if u]
    boundary_m = min(edges) if edges else None
    units: list[NearbyUnit] = []
    if boundary_m is None or boundary_m <= within_m:
        own = {own_grid[0] if own_grid else None, own_village[0] if own_village else None}
        for level, rows in found.items():
            for code, name, village_code, shape in rows:
                distance = float(shapely.distance(origin, shape))
                if code not in own and distance <= within_m:
                    units.append(NearbyUnit(level, code, name, village_code, round(distance, 1)))
    units.sort(key=lambda u: (u.distance_m, u.level, u.code))
    return Neighbours(
        grid_code=own_grid[0] if own_grid else None,
        village_code=own_village[0] if own_village else None,
        boundary_m=None if boundary_m is None else round(boundary_m, 1),
        units=units,
    )
