"""Import a city's own division or grid boundaries (GeoJSON or Shapefile), all or nothing.

Every feature is checked before anything is written; the errors name the feature (its position in the
file and its code/name). The caller's unit of work commits, so a failure leaves the database as it was.
Import from the top down (counties, then townships, villages, grids): a feature's parent must exist.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityops.core import geo
from cityops.core.db import utcnow
from cityops.core.errors import Conflict, ValidationFailed
from cityops.places import repository as repo
from cityops.places.models import Division, Grid
from cityops.places.schemas import ImportResult
from cityops.places.service import shape_columns

IMPORT_LEVELS = ("county", "township", "village", "grid")
PARENT_LEVEL = {"county": "city", "township": "county", "village": "township", "grid": "village"}
CODE_LENGTH = {"county": 6, "township": 9, "village": 12}
DATUMS = {"wgs84": "WGS84", "gcj02": "GCJ-02"}
CODE_KEYS = ("code", "adcode", "CODE", "ADCODE", "Code")
NAME_KEYS = ("name", "NAME", "Name")
PARENT_KEYS = ("parent_code", "parent", "parent_adcode", "village_code", "PARENT", "PARENT_CODE")
# A feature is "outside the city" when it does not come within this distance of the city outline
# (about 2 km): boundaries from different sources disagree by less, a wrong datum or city by more.
CITY_TOLERANCE_DEG = 0.02
MAX_REPORTED = 20


@dataclass
class _Feature:
    number: int
    code: str
    name: str | None
    parent_code: str | None
    population: int | None
    households: int | None
    geometry: Any

    @property
    def label(self) -> str:
        return _label(self.number, self.code, self.name)


def _label(number: int, code: str | None, name: str | None) -> str:
    bits = [f"code {code}" if code else "no code"]
    if name:
        bits.append(str(name))
    return f"feature {number} ({', '.join(bits)})"


def _first(props: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = props.get(key)
        if value not in (None, ""):
            return value
    return None


def _as_code(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None


def _as_int(value: Any, what: str, label: str, errors: list[str]) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        errors.append(f"{label}: {what} must be a whole number, got {value!r}")
        return None
    if number < 0:
        errors.append(f"{label}: {what} must not be negative")
        return None
    return number


def read_features(path: Path) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(properties, geometry mapping) of every feature in a GeoJSON file or a Shapefile (.shp or .zip)."""
    if not path.exists():
        raise ValidationFailed(f"file not found: {path}", field="file")
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ValidationFailed(f"{path.name} is not UTF-8 text", field="file") from None
        except json.JSONDecodeError as exc:
            raise ValidationFailed(
                f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                field="file",
            ) from None
        if isinstance(data, dict) and data.get("type") == "Feature":
            data = {"type": "FeatureCollection", "features": [data]}
        if (
            not isinstance(data, dict)
            or data.get("type") != "FeatureCollection"
            or not isinstance(data.get("features"), list)
        ):
            raise ValidationFailed(f"{path.name} is not a GeoJSON FeatureCollection", field="file")
        out = []
        for i, feature in enumerate(data["features"], start=1):
            if not isinstance(feature, dict):
                raise ValidationFailed(f"feature {i} is not a GeoJSON object", field="file")
            props = feature.get("properties") or {}
            if not isinstance(props, dict):
                raise ValidationFailed(f"feature {i}: properties must be an object", field="file")
            geometry = feature.get("geometry")
            out.append((props, geometry if isinstance(geometry, dict) else None))
        return out
    if suffix in (".shp", ".zip"):
        return _read_shapefile(path)
    raise ValidationFailed(
        f"unsupported file type {suffix or '(none)'}: use .geojson, .json, .shp or a zipped Shapefile (.zip)",
        field="file",
    )


def _read_shapefile(path: Path) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    import shapefile

    prj = path.with_suffix(".prj")
    if prj.exists() and "PROJCS" in prj.read_text(encoding="utf-8", errors="replace").upper():
        raise ValidationFailed(
            f"{path.name} uses projected coordinates ({prj.name}); export it as longitude/"
            "latitude degrees (WGS84 or GCJ-02) first",
            field="file",
        )
    try:
        reader = shapefile.Reader(str(path), encoding="utf-8")
    except Exception as exc:  # pyshp raises its own and OS errors for unreadable files
        raise ValidationFailed(f"cannot read Shapefile {path.name}: {exc}", field="file") from None
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    with reader:
        for i, shape_record in enumerate(reader.iterShapeRecords(), start=1):
            try:
                props = dict(shape_record.record.as_dict())
                geometry = shape_record.shape.__geo_interface__ if shape_record.shape.shapeType else None
            except Exception as exc:  # a damaged record: name it rather than crash
                raise ValidationFailed(
                    f"feature {i}: cannot read it from {path.name}: {exc}", field="file"
                ) from None
            out.append((props, dict(geometry) if geometry else None))
    return out


def import_file(
    session: Session, *, path: Path, level: str, datum: str = "wgs84", source: str | None = None
) -> ImportResult:
    """Validate every feature, then write them in the caller's transaction (all or nothing)."""
    if level not in IMPORT_LEVELS:
        raise ValidationFailed(
            f"level must be one of {', '.join(IMPORT_LEVELS)}, not {level!r}", field="level"
        )
    if datum.lower() not in DATUMS:
        raise ValidationFailed(f"datum must be one of {', '.join(DATUMS)}, not {datum!r}", field="datum")
    source_datum = DATUMS[datum.lower()]
    label = source or f"imported from {path.name}"
    if source_datum == "GCJ-02":
        label += ", GCJ-02 converted to WGS84"
    raw = read_features(path)
    if not raw:
        raise ValidationFailed(f"{path.name} has no features", field="file")
    features = _validate(session, raw, level=level, source_datum=source_datum)
    created = updated = deleted = 0
    now = utcnow()
    if level == "grid":
        existing = repo.grids_by_code(session, [f.code for f in features])
        villages = sorted({f.parent_code for f in features if f.parent_code})
        keep = {f.code for f in features}
        stale = list(session.scalars(select(Grid.code).where(Grid.village_code.in_(villages))))
        try:
            deleted = repo.delete_grids(session, [c for c in stale if c not in keep])
        except IntegrityError:
            raise Conflict(
                "grids of the imported villages that are not in the file are still referenced "
                "by other records; include them in the file"
            ) from None
        for f in features:
            columns = shape_columns(f.geometry)
            grid = existing.get(f.code)
            if grid is None:
                grid = Grid(code=f.code, name=f.name or f.code, village_code=f.parent_code or "")
                session.add(grid)
                created += 1
            else:
                updated += 1
            grid.village_code = f.parent_code or grid.village_code
            if f.name:
                grid.name = f.name
            if f.population is not None:
                grid.population = f.population
            if f.households is not None:
                grid.households = f.households
            for key, value in columns.items():
                setattr(grid, key, value)
            grid.synthetic = False
            grid.geometry_source = label[:200]
            grid.source_datum = source_datum
            grid.updated_at = now
    else:
        existing_divisions = repo.divisions_by_code(session, [f.code for f in features])
        for f in features:
            division = existing_divisions.get(f.code)
            if division is None:
                division = Division(
                    code=f.code, name=f.name or f.code, level=level, parent_code=f.parent_code
                )
                session.add(division)
                created += 1
            else:
                updated += 1
            if f.name:
                division.name = f.name
            if f.parent_code:
                division.parent_code = f.parent_code
            if f.population is not None:
                division.population = f.population
            for key, value in shape_columns(f.geometry).items():
                setattr(division, key, value)
            division.geometry_synthetic = False
            division.geometry_source = label[:200]
            division.source_datum = source_datum
            division.updated_at = now
        if level == "county":
            _refresh_city_outline(session, now)
    session.flush()
    repo.bump_revision(session)
    return ImportResult(
        level=level, created=created, updated=updated, deleted=deleted, source=label, datum=source_datum
    )


def _refresh_city_outline(session: Session, now: Any) -> None:
    """After new county boundaries the city outline is their union."""
    session.flush()
    city = session.scalars(select(Division).where(Division.level == "city")).first()
    if city is None:
        return
    shapes = [
        shapely.from_wkb(g)
        for g in session.scalars(
            select(Division.geometry).where(Division.level == "county", Division.geometry.is_not(None))
        )
    ]
    if not shapes:
        return
    outline = shapely.union_all(shapes, grid_size=1e-8)
    for key, value in shape_columns(outline).items():
        setattr(city, key, value)
    city.geometry_source = "union of the county polygons"
    city.geometry_synthetic = False
    city.updated_at = now


def _validate(
    session: Session,
    raw: list[tuple[dict[str, Any], dict[str, Any] | None]],
    *,
    level: str,
    source_datum: str,
) -> list[_Feature]:
    errors: list[str] = []
    features: list[_Feature] = []
    seen: dict[str, int] = {}
    codes = [_as_code(_first(p, CODE_KEYS)) for p, _g in raw]
    parents_given = [_as_code(_first(p, PARENT_KEYS)) for p, _g in raw]
    if level == "grid":
        known_grids = repo.grids_by_code(session, [c for c in codes if c])
        known_here = {c: g.village_code for c, g in known_grids.items()}
        other_level: dict[str, str] = {}
    else:
        known_divisions = repo.divisions_by_code(session, [c for c in codes if c])
        known_here = {c: d.parent_code or "" for c, d in known_divisions.items() if d.level == level}
        other_level = {c: d.level for c, d in known_divisions.items() if d.level != level}
    parent_codes = {p for p in parents_given if p} | set(known_here.values())
    derived = (_derived_parent(c, level) for c in codes if c)
    parent_codes |= {d for d in derived if d}
    parents = repo.divisions_by_code(session, sorted(parent_codes))
    city = session.scalars(select(Division).where(Division.level == "city")).first()
    city_area = None
    if city is not None and city.geometry is not None:
        city_area = shapely.buffer(shapely.from_wkb(city.geometry), CITY_TOLERANCE_DEG)
        shapely.prepare(city_area)
    if level == "county" and city is not None:
        parents.setdefault(city.code, city)

    for number, ((props, geometry), code, parent_given) in enumerate(
        zip(raw, codes, parents_given, strict=True), start=1
    ):
        name_value = _first(props, NAME_KEYS)
        name = str(name_value).strip() if name_value is not None else None
        where = _label(number, code, name)
        if code is None:
            errors.append(f"{where}: missing code (property 'code')")
            continue
        if code in other_level:
            errors.append(f"{where}: code {code} is already a {other_level[code]}, not a {level}")
            continue
        if level != "grid" and not re.fullmatch(rf"\d{{{CODE_LENGTH[level]}}}", code):
            errors.append(f"{where}: a {level} code has {CODE_LENGTH[level]} digits, got {code!r}")
            continue
        if level == "grid" and not re.fullmatch(r"[0-9A-Za-z_-]{1,15}", code):
            errors.append(f"{where}: a grid code has 1 to 15 letters or digits, got {code!r}")
            continue
        if code in seen:
            errors.append(f"{where}: duplicate code {code} (also feature {seen[code]})")
            continue
        seen[code] = number
        parent_code = parent_given or known_here.get(code) or _derived_parent(code, level)
        if level == "county" and parent_code is None and city is not None:
            parent_code = city.code
        parent = parents.get(parent_code or "")
        if parent is None:
            errors.append(
                f"{where}: unknown parent {parent_code or '(none given)'}; import the "
                f"{PARENT_LEVEL[level]} level first or set 'parent_code'"
            )
            continue
        if parent.level != PARENT_LEVEL[level]:
            errors.append(
                f"{where}: parent {parent.code} is a {parent.level}, a {level}'s parent must be a "
                f"{PARENT_LEVEL[level]}"
            )
            continue
        if code not in known_here and not name:
            errors.append(f"{where}: missing name for the new {level} {code}")
            continue
        shape = _geometry(geometry, where, errors, source_datum)
        if shape is None:
            continue
        if city_area is not None and not city_area.intersects(shape):
            rp = shape.representative_point()
            errors.append(
                f"{where}: outside the city (near {rp.x:.5f}, {rp.y:.5f}); check the datum "
                "(--datum) and that the file is for this city"
            )
            continue
        population = _as_int(props.get("population"), "population", where, errors)
        households = _as_int(props.get("households"), "households", where, errors)
        features.append(_Feature(number, code, name, parent.code, population, households, shape))
    if errors:
        shown = errors[:MAX_REPORTED]
        more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
        raise ValidationFailed(
            f"{len(errors)} bad feature(s), nothing imported: "
            + "; ".join(shown[:3])
            + ("; …" if len(shown) > 3 else "")
            + more,
            field="file",
            detail={"errors": shown, "error_count": len(errors)},
        )
    return features


def _derived_parent(code: str, level: str) -> str | None:
    """NBS codes nest: a township's county is its first 6 digits, a village's township its first 9,
    and a grid's village its first 12."""
    cut = {"township": 6, "village": 9, "grid": 12}.get(level)
    if cut is None or len(code) <= cut:
        return None
    return code[:cut]


def _geometry(mapping: dict[str, Any] | None, where: str, errors: list[str], source_datum: str) -> Any:
    if mapping is None:
        errors.append(f"{where}: missing geometry")
        return None
    try:
        shape = shapely.geometry.shape(mapping)
    except Exception as exc:  # shapely raises several types for malformed mappings
        errors.append(f"{where}: invalid geometry: {exc}")
        return None
    if shape.geom_type not in ("Polygon", "MultiPolygon"):
        errors.append(f"{where}: geometry must be a Polygon or MultiPolygon, got {shape.geom_type}")
        return None
    if shape.is_empty:
        errors.append(f"{where}: geometry is empty")
        return None
    minx, miny, maxx, maxy = shape.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        errors.append(
            f"{where}: coordinates are not longitude/latitude degrees (bounds {minx:.1f}, {miny:.1f}, "
            f"{maxx:.1f}, {maxy:.1f}); export the file in WGS84 or GCJ-02 degrees"
        )
        return None
    if not shape.is_valid:
        errors.append(f"{where}: invalid geometry: {shapely.is_valid_reason(shape)}")
        return None
    if source_datum == "GCJ-02":
        shape = geo.geometry_gcj02_to_wgs84(shape)
    return shape
