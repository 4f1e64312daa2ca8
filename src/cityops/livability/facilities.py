"""Reading and checking facility files (CSV, Excel, GeoJSON) before anything is stored.

Every row (CSV/Excel line, GeoJSON feature) is checked and every problem collected, with the row and
the field: an unknown category, a missing or bad coordinate, a point outside the network's area (farther
than the engine's snapping distance from every street), a green space without an area, an entrance far
from its green space, and duplicates (the same source id twice, or the same category within
DUPLICATE_M of another facility, in the file or already stored). One problem refuses the whole file.

Columns (CSV/Excel header; Chinese headers in ALIASES work too): category (key or Chinese or English
name, categories.yaml), name, lon, lat (WGS84), area_m2 (green spaces), entrances (green spaces:
"lon lat; lon lat" or "lon,lat; lon,lat"), source_id (optional). GeoJSON: a FeatureCollection of Point
features (or Polygon outlines of green spaces: the location is a point inside, the area is measured when
area_m2 is not given) with those properties; entrances may also be a list of [lon, lat]."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from cityops.core.errors import ValidationFailed
from cityops.core.tables import read_table
from cityops.livability.categories import Catalogue
from cityops.livability.engine import Engine, local_crs, to_metres

# The same category this close to another facility is the same facility entered twice.
DUPLICATE_M = 5.0
# An entrance this far (straight line) from its green space's location belongs to another place.
MAX_ENTRANCE_M = 2000.0
MAX_ENTRANCES = 20
MAX_NAME = 200
MAX_SOURCE_ID = 80
# Problems listed in the error message (all of them are in its detail).
MESSAGE_ERRORS = 20
ALIASES = {
    "类别": "category",
    "类型": "category",
    "名称": "name",
    "经度": "lon",
    "纬度": "lat",
    "面积": "area_m2",
    "面积(平方米)": "area_m2",
    "入口": "entrances",
    "编号": "source_id",
    "id": "source_id",
}


@dataclass
class Row:
    """A checked row: what will be stored."""

    number: int
    category: str
    name: str
    lon: float
    lat: float
    area_m2: float | None
    area_class: str | None
    entrances: list[tuple[float, float]]
    source_id: str | None


@dataclass(frozen=True)
class Problem:
    row: int
    field: str
    message: str


@dataclass
class Existing:
    """Facilities already stored, for the duplicate checks."""

    source_ids: dict[str, int] = field(default_factory=dict)
    # (category, id, lon, lat)
    points: list[tuple[str, int, float, float]] = field(default_factory=list)


def read_file(data: bytes, filename: str) -> tuple[str, list[tuple[int, dict[str, Any]]]]:
    """('row'|'feature', [(number, {column: value})]) from a .csv, .xlsx or .geojson/.json file."""
    if filename.lower().endswith((".geojson", ".json")):
        return "feature", _geojson_rows(data, filename)
    return "row", read_table(data, filename, aliases=ALIASES)


def _geojson_rows(data: bytes, filename: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"{filename}: not valid GeoJSON ({exc})", field="file") from None
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        raise ValidationFailed(f"{filename}: give a GeoJSON FeatureCollection", field="file")
    rows = []
    for number, feature in enumerate(doc["features"], start=1):
        if not isinstance(feature, dict):
            raise ValidationFailed(f"{filename}: feature {number} is not a GeoJSON object", field="file")
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            raise ValidationFailed(
                f"{filename}: feature {number}: properties must be an object", field="file"
            )
        row: dict[str, Any] = {ALIASES.get(str(k), str(k)): v for k, v in props.items()}
        row["_geometry"] = feature.get("geometry")
        rows.append((number, row))
    if not rows:
        raise ValidationFailed(f"{filename}: the collection has no features", field="file")
    return rows


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _coordinate(value: Any, name: str, limit: float, problems: list[str]) -> float | None:
    if _blank(value):
        problems.append(f"{name}: missing")
        return None
    number = _float(value)
    if number is None or abs(number) > limit:
        problems.append(
            f"{name}: {value!r} is not a WGS84 {'longitude' if name == 'lon' else 'latitude'} "
            f"(a number from {-limit:g} to {limit:g})"
        )
        return None
    return number


def _entrances(value: Any) -> list[tuple[float, float]] | str:
    """Entrances as (lon, lat) pairs, or the reason they cannot be read."""
    if _blank(value):
        return []
    pairs: list[Any]
    if isinstance(value, list):
        pairs = value
    else:
        pairs = [re.split(r"[\s,]+", part.strip()) for part in str(value).split(";") if part.strip()]
    out = []
    for k, pair in enumerate(pairs, start=1):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            return f"entrance {k} is not a 'lon lat' pair: {pair!r}"
        lon, lat = _float(pair[0]), _float(pair[1])
        if lon is None or lat is None or abs(lon) > 180 or abs(lat) > 90:
            return f"entrance {k}: {pair!r} is not a WGS84 longitude and latitude"
        out.append((lon, lat))
    if len(out) > MAX_ENTRANCES:
        return f"at most {MAX_ENTRANCES} entrances, got {len(out)}"
    return out


def _from_geometry(row: dict[str, Any], problems: list[str]) -> None:
    """A GeoJSON feature's location (and a green space's area when its outline is given)."""
    geometry = row.pop("_geometry", None)
    if geometry is None:
        problems.append("geometry: missing (give a Point, or a Polygon for a green space)")
        return
    try:
        shape = shapely.from_geojson(json.dumps(geometry))
    except Exception:  # shapely raises GEOSException and others for broken geometry
        problems.append(f"geometry: not a valid GeoJSON geometry: {str(geometry)[:80]}")
        return
    if shape.is_empty or shape.geom_type not in ("Point", "Polygon", "MultiPolygon"):
        problems.append(f"geometry: give a Point or a Polygon, not {shape.geom_type}")
        return
    try:
        point = shape if shape.geom_type == "Point" else shape.representative_point()
        if shape.geom_type != "Point" and _blank(row.get("area_m2")):
            metric = to_metres(local_crs(point.x, point.y))
            row["area_m2"] = shapely.transform(
                shape, lambda xy: np.column_stack(metric.transform(xy[:, 0], xy[:, 1]))
            ).area
    except Exception:  # GEOS refuses some broken outlines (self-intersecting rings ...)
        problems.append("geometry: the outline is not a valid polygon")
        return
    row["lon"], row["lat"] = point.x, point.y


def check_rows(
    kind: str,
    rows: list[tuple[int, dict[str, Any]]],
    *,
    catalogue: Catalogue,
    engine: Engine,
    network: str,
    existing: Existing,
) -> tuple[list[Row], list[Problem]]:
    """The rows as they will be stored, and every problem found (an empty list: store them all)."""
    problems: list[Problem] = []
    parsed: list[Row] = []
    for number, raw in rows:
        found: list[str] = []
        if kind == "feature":
            _from_geometry(raw, found)
        category = catalogue.find(str(raw.get("category") or ""))
        if category is None:
            text = raw.get("category")
            found.append(
                f"category: {'missing' if _blank(text) else f'unknown category {text!r}'}; "
                f"known: {', '.join(catalogue.categories)}"
            )
        name = "" if _blank(raw.get("name")) else str(raw.get("name")).strip()
        if not name:
            found.append("name: missing")
        elif len(name) > MAX_NAME:
            found.append(f"name: longer than {MAX_NAME} characters")
        lon = _coordinate(raw.get("lon"), "lon", 180.0, found)
        lat = _coordinate(raw.get("lat"), "lat", 90.0, found)
        area: float | None = None
        if not _blank(raw.get("area_m2")):
            area = _float(raw.get("area_m2"))
            if area is None or area <= 0:
                found.append(f"area_m2: {raw.get('area_m2')!r} is not an area in m² above 0")
                area = None
        elif category is not None and category.green:
            found.append(f"area_m2: missing; a green space ({category.key}) needs its area in m²")
        entrances = _entrances(raw.get("entrances"))
        if isinstance(entrances, str):
            found.append(f"entrances: {entrances}")
            entrances = []
        elif entrances and category is not None and not category.green:
            found.append(f"entrances: only green spaces have entrances, not {category.key}")
        source_id = None if _blank(raw.get("source_id")) else str(raw.get("source_id")).strip()
        if source_id is not None and len(source_id) > MAX_SOURCE_ID:
            found.append(f"source_id: longer than {MAX_SOURCE_ID} characters")
        if found or category is None or lon is None or lat is None:
            problems.extend(_problem(number, text) for text in found)
            continue
        parsed.append(
            Row(
                number,
                category.key,
                name,
                lon,
                lat,
                area if category.green else None,
                catalogue.area_class(area).key if category.green and area else None,
                list(entrances),
                source_id,
            )
        )
    problems.extend(_placement(kind, parsed, engine=engine, network=network))
    problems.extend(_duplicates(kind, parsed, existing))
    problems.sort(key=lambda p: p.row)
    return parsed, problems


def _problem(number: int, text: str) -> Problem:
    name, _sep, message = text.partition(": ")
    return Problem(number, name, message)


def _placement(kind: str, rows: list[Row], *, engine: Engine, network: str) -> list[Problem]:
    """Locations and entrances on the network (within its snapping distance), entrances near their
    green space."""
    problems: list[Problem] = []
    if not rows:
        return problems
    lon = [r.lon for r in rows] + [e[0] for r in rows for e in r.entrances]
    lat = [r.lat for r in rows] + [e[1] for r in rows for e in r.entrances]
    snapped = engine.snap(lon, lat)
    x, y = snapped.px, snapped.py
    k = len(rows)
    limit = engine.max_snap_m
    for i, r in enumerate(rows):
        if snapped.edge[i] < 0:
            problems.append(
                Problem(
                    r.number,
                    "lon",
                    f"({r.lon:.6f}, {r.lat:.6f}) is outside the area of network "
                    f"{network!r}: no street within {limit:,.0f} m",
                )
            )
        for n, (elon, elat) in enumerate(r.entrances, start=1):
            if snapped.edge[k] < 0:
                problems.append(
                    Problem(
                        r.number,
                        "entrances",
                        f"entrance {n} ({elon:.6f}, {elat:.6f}) is "
                        f"outside the area of network {network!r}: no street within "
                        f"{limit:,.0f} m",
                    )
                )
            gap = math.hypot(x[k] - x[i], y[k] - y[i])
            if gap > MAX_ENTRANCE_M:
                problems.append(
                    Problem(
                        r.number,
                        "entrances",
                        f"entrance {n} is {gap:,.0f} m from the "
                        f"{kind}'s location (at most {MAX_ENTRANCE_M:,.0f} m)",
                    )
                )
            k += 1
    return problems


def _duplicates(kind: str, rows: list[Row], existing: Existing) -> list[Problem]:
    """The same source id twice, or the same category within DUPLICATE_M, in the file or stored."""
    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    for r in rows:
        if r.source_id is None:
            continue
        if r.source_id in existing.source_ids:
            problems.append(
                Problem(
                    r.number,
                    "source_id",
                    f"source id {r.source_id!r} is already imported "
                    f"(facility #{existing.source_ids[r.source_id]})",
                )
            )
        elif r.source_id in seen_ids:
            problems.append(
                Problem(
                    r.number,
                    "source_id",
                    f"source id {r.source_id!r} is also on {kind} {seen_ids[r.source_id]}",
                )
            )
        else:
            seen_ids[r.source_id] = r.number
    if not rows:
        return problems
    # Points in metres around the file's centre (a few metres is all that matters here).
    lon0, lat0 = float(np.mean([r.lon for r in rows])), float(np.mean([r.lat for r in rows]))
    metric = to_metres(local_crs(lon0, lat0))
    categories = sorted({r.category for r in rows})
    for category in categories:
        mine = [r for r in rows if r.category == category]
        stored = [p for p in existing.points if p[0] == category]
        x, y = metric.transform(
            [r.lon for r in mine] + [p[2] for p in stored], [r.lat for r in mine] + [p[3] for p in stored]
        )
        tree = shapely.STRtree(shapely.points(np.asarray(x), np.asarray(y)))
        left, right = tree.query(
            shapely.points(np.asarray(x[: len(mine)]), np.asarray(y[: len(mine)])),
            predicate="dwithin",
            distance=DUPLICATE_M,
        )
        n = len(mine)
        match: dict[int, int] = {}
        for i, j in zip(left.tolist(), right.tolist(), strict=True):
            if i == j or i < j < n:  # itself, or a later row (that row reports this one)
                continue
            # A stored facility first, else the earliest row.
            if i not in match or (j >= n, -j) > (match[i] >= n, -match[i]):
                match[i] = j
        for i, j in sorted(match.items()):
            text = (
                f"facility #{stored[j - n][1]} (already imported)" if j >= n else f"{kind} {mine[j].number}"
            )
            problems.append(
                Problem(
                    mine[i].number,
                    "lon",
                    f"a {category} within {DUPLICATE_M:g} m of {text}: the same facility twice?",
                )
            )
    return problems


def refusal(filename: str, kind: str, problems: list[Problem]) -> ValidationFailed:
    """The error refusing a file: a line per problem (the first MESSAGE_ERRORS), all in the detail."""
    rows = len({p.row for p in problems})
    lines = [f"{filename}: {rows} {kind}{'s' if rows != 1 else ''} refused, nothing imported"]
    lines += [f"{kind} {p.row}: {p.field}: {p.message}" for p in problems[:MESSAGE_ERRORS]]
    if len(problems) > MESSAGE_ERRORS:
        lines.append(f"... and {len(problems) - MESSAGE_ERRORS} more problems")
    return ValidationFailed(
        "\n".join(lines),
        field="file",
        detail={"errors": [{kind: p.row, "field": p.field, "message": p.message} for p in problems]},
    )
