"""The satellite scene catalogue: scenes (footprint, time, sensor, cloud cover, resolution, source) and the
change areas their analysis flagged (water spreading, landslides, illegal building), from which a case
can be opened once.

Scenes come as a JSON list or a GeoJSON FeatureCollection (the feature's geometry is the footprint, its
properties the rest); a file is taken whole or refused whole, each problem named by the feature's index.
A case opened from a change area goes through the case engine's intake like any report, located at the
area's representative point and so routed to its grid."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import shapely
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from shapely.geometry import MultiPolygon
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cityops.cases import service as case_service
from cityops.cases.schemas import CaseCreate
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.auth.scope import can_access
from cityops.core.db import utcnow
from cityops.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityops.core.geo import area_km2
from cityops.core.i18n import N_, gettext_for
from cityops.core.templating import form_error
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex
from cityops.warning import service
from cityops.warning.models import ChangeArea, SatelliteScene

MAX_SCENES = 1_000
MAX_CHANGES = 500
MAX_PROBLEMS = 20
# A change area may reach past its scene's simplified footprint by this much (about 100 m).
FOOTPRINT_TOLERANCE_DEG = 1e-3
OPEN_PERMISSION = "cases.dispatch"
SYNTHETIC_SOURCE = "模拟数据 synthetic"


@dataclass(frozen=True)
class ChangeKind:
    code: str
    name_zh: str
    label: str  # English msgid
    case_type: str
    category: str
    fields: tuple[tuple[str, Any], ...] = ()


CHANGE_KINDS = {
    k.code: k
    for k in (
        ChangeKind("flooding", "水体扩张", N_("Water spreading"), "hazard", "other",
                   (("immediate_danger", True),)),
        ChangeKind("landslide", "滑坡", N_("Landslide"), "hazard", "other", (("immediate_danger", True),)),
        ChangeKind("illegal_building", "违法建设", N_("Illegal construction"), "urban", "other"),
    )
}


def change_kind(name: str) -> ChangeKind:
    """A kind by its code or its Chinese name."""
    for kind in CHANGE_KINDS.values():
        if name in (kind.code, kind.name_zh):
            return kind
    known = ", ".join(f"{k.code} ({k.name_zh})" for k in CHANGE_KINDS.values())
    raise ValidationFailed(f"kind must be one of {known}, not {name!r}", field="kind")


Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Short
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False)
    geometry: dict[str, Any]


class SceneIn(BaseModel):
    """One scene of an import: the footprint is a GeoJSON Polygon or MultiPolygon (WGS84)."""

    model_config = ConfigDict(extra="forbid")

    scene_id: Short
    sensor: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    source: Short
    acquired_at: AwareDatetime
    cloud_cover: float = Field(ge=0, le=100, allow_inf_nan=False, description="Percent")
    resolution_m: float = Field(gt=0, le=1000, allow_inf_nan=False)
    footprint: dict[str, Any]
    changes: list[ChangeIn] = Field(default_factory=list, max_length=MAX_CHANGES)


class ChangeAreaRead(BaseModel):
    id: int
    scene_id: int
    kind: str
    kind_label: str
    confidence: float
    geometry: dict[str, Any]
    lon: float
    lat: float
    area_km2: float
    case_id: int | None
    case_number: str | None = None
    opened_at: datetime | None


class SceneRead(BaseModel):
    id: int
    scene_id: str
    sensor: str
    source: str
    acquired_at: datetime
    cloud_cover: float
    resolution_m: float
    footprint: dict[str, Any]
    synthetic: bool
    changes: list[ChangeAreaRead]


class SceneImport(BaseModel):
    created: int
    existing: int  # already in the catalogue (same source and scene id): left as they were
    scenes: list[SceneRead]


# --- import ---------------------------------------------------------------------------------------


def _parsed(data: bytes | str | list[Any] | dict[str, Any]) -> Any:
    if not isinstance(data, bytes | str):
        return data  # parsed already (the API's JSON body)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise ValidationFailed("the file must be UTF-8 text", field="file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                               field="file") from None


def _items(data: bytes | str | list[Any] | dict[str, Any]) -> list[Any]:
    found = _parsed(data)
    if isinstance(found, dict) and found.get("type") == "FeatureCollection":
        features = found.get("features")
        if not isinstance(features, list):
            raise ValidationFailed("the FeatureCollection has no list of features", field="features")
        items: list[Any] = []
        for feature in features:
            if isinstance(feature, dict) and feature.get("type") == "Feature":
                properties = feature.get("properties")
                items.append({**(properties if isinstance(properties, dict) else {}),
                              "footprint": feature.get("geometry")})
            else:
                items.append(feature)
        found = items
    if not isinstance(found, list):
        raise ValidationFailed("expected a JSON list of scenes or a GeoJSON FeatureCollection", field="file")
    if not found:
        raise ValidationFailed("the file holds no scene", field="features")
    if len(found) > MAX_SCENES:
        raise ValidationFailed(f"at most {MAX_SCENES} scenes per file, got {len(found)}", field="features")
    return found


@dataclass
class _Checked:
    scene: SceneIn
    footprint: MultiPolygon
    changes: list[tuple[ChangeKind, float, MultiPolygon, Any]]  # kind, confidence, shape, inside city


def _polygon(value: Any) -> MultiPolygon:
    if not isinstance(value, dict):
        raise ValidationFailed("not a GeoJSON geometry", field="area")
    return service._given_polygon(value)


def _check(item: Any, city: tuple[str, Any] | None) -> _Checked:
    """One scene, or ValueError with the reason (the caller adds the feature's index)."""
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    try:
        scene = SceneIn.model_validate(item)
    except PydanticValidationError as exc:
        raise ValueError(form_error(exc)) from None
    try:
        footprint = _polygon(scene.footprint)
    except ValidationFailed as exc:
        raise ValueError(f"footprint: {exc.message}") from None
    if city is not None and not footprint.intersects(city[1]):
        raise ValueError(f"the footprint lies outside {city[0]}")
    reach = footprint.buffer(FOOTPRINT_TOLERANCE_DEG)
    changes = []
    for j, change in enumerate(scene.changes):
        try:
            kind = change_kind(change.kind)
            geometry = _polygon(change.geometry)
        except ValidationFailed as exc:
            raise ValueError(f"change {j}: {exc.message}") from None
        if not reach.covers(geometry):
            raise ValueError(f"change {j}: lies outside the scene's footprint")
        inside = geometry.intersection(city[1]) if city is not None else geometry
        if inside.is_empty:
            raise ValueError(f"change {j}: lies outside {city[0] if city else 'the city'}")
        changes.append((kind, change.confidence, geometry, inside))
    return _Checked(scene, footprint, changes)


def _geojson(geometry: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(shapely.to_geojson(shapely.set_precision(geometry, 1e-6)))
    return found


def import_scenes(session: Session, *, data: bytes | str | list[Any] | dict[str, Any], actor: User | None,
                  synthetic: bool = False, now: datetime | None = None) -> SceneImport:
    """Register the scenes of a file with their change areas: all or none. Each problem is named by the
    feature's index (from 0); a scene already registered (same source and scene id) is left as it is."""
    now = now or utcnow()
    items = _items(data)
    city = service._city(session)
    checked: list[tuple[int, _Checked]] = []
    problems: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        try:
            found = _check(item, city)
        except ValueError as exc:
            problems.append({"index": i, "message": f"feature {i}: {exc}"})
            continue
        key = (found.scene.source, found.scene.scene_id)
        if key in seen:
            problems.append({"index": i, "message": f"feature {i}: scene {key[1]} of {key[0]} repeats "
                                                    f"feature {seen[key]}"})
            continue
        seen[key] = i
        checked.append((i, found))
    if problems:
        shown = "; ".join(p["message"] for p in problems[:MAX_PROBLEMS])
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise ValidationFailed(
            f"{len(problems)} of {len(items)} scenes refused, none registered: {shown}{more}",
            field="features", detail={"errors": problems[:MAX_PROBLEMS * 5]})
    known = select(SatelliteScene.source, SatelliteScene.scene_id).where(
        SatelliteScene.scene_id.in_([k[1] for k in seen]))
    existing = {(source, scene_id) for source, scene_id in session.execute(known)}
    made: list[SatelliteScene] = []
    for _, found in checked:
        scene = found.scene
        if (scene.source, scene.scene_id) in existing:
            continue
        row = SatelliteScene(
            scene_id=scene.scene_id, sensor=scene.sensor, source=scene.source, acquired_at=scene.acquired_at,
            cloud_cover=scene.cloud_cover, resolution_m=scene.resolution_m,
            footprint=_geojson(found.footprint), synthetic=synthetic,
            created_by_id=actor.id if actor is not None and actor.id else None, created_at=now,
        )
        session.add(row)
        session.flush()
        for kind, confidence, geometry, inside in found.changes:
            point = inside.representative_point()
            session.add(ChangeArea(scene_id=row.id, kind=kind.code, confidence=confidence,
                                   geometry=_geojson(geometry), lon=round(point.x, 6), lat=round(point.y, 6),
                                   area_km2=round(area_km2(geometry), 4)))
        made.append(row)
    session.flush()
    return SceneImport(created=len(made), existing=len(checked) - len(made),
                       scenes=scenes_by_id(session, [s.id for s in made]))


# --- reading --------------------------------------------------------------------------------------


def _reads(session: Session, scenes: Sequence[SatelliteScene], *, viewer: User | None,
           locale: str) -> list[SceneRead]:
    _ = gettext_for(locale).gettext
    ids = [s.id for s in scenes]
    changes: dict[int, list[ChangeArea]] = {i: [] for i in ids}
    if ids:
        for change in session.scalars(select(ChangeArea).where(ChangeArea.scene_id.in_(ids))
                                      .order_by(ChangeArea.id)):
            changes[change.scene_id].append(change)
    case_ids = [c.case_id for found in changes.values() for c in found if c.case_id is not None]
    numbers = ({c.id: c.number for c in case_service.cases_by_ids(session, viewer=viewer, ids=case_ids)}
               if viewer is not None and case_ids else {})
    return [
        SceneRead(
            id=s.id, scene_id=s.scene_id, sensor=s.sensor, source=s.source, acquired_at=s.acquired_at,
            cloud_cover=s.cloud_cover, resolution_m=s.resolution_m, footprint=s.footprint,
            synthetic=s.synthetic,
            changes=[ChangeAreaRead(
                id=c.id, scene_id=c.scene_id, kind=c.kind,
                kind_label=_(CHANGE_KINDS[c.kind].label) if c.kind in CHANGE_KINDS else c.kind,
                confidence=c.confidence, geometry=c.geometry, lon=c.lon, lat=c.lat, area_km2=c.area_km2,
                case_id=c.case_id, case_number=numbers.get(c.case_id) if c.case_id else None,
                opened_at=c.opened_at) for c in changes[s.id]],
        )
        for s in scenes
    ]


def scenes_by_id(session: Session, ids: Sequence[int], *, viewer: User | None = None,
                 locale: str = "zh") -> list[SceneRead]:
    rows = session.scalars(select(SatelliteScene).where(SatelliteScene.id.in_(ids))
                           .order_by(SatelliteScene.id)).all() if ids else []
    return _reads(session, rows, viewer=viewer, locale=locale)


def list_scenes(session: Session, *, viewer: User | None = None, limit: int = 50, sensor: str | None = None,
                locale: str = "zh") -> list[SceneRead]:
    """The newest scenes first, with their change areas (case numbers as far as the viewer sees)."""
    if not 1 <= limit <= 500:
        raise ValidationFailed("limit must be between 1 and 500", field="limit")
    query = select(SatelliteScene)
    if sensor:
        query = query.where(SatelliteScene.sensor == sensor)
    rows = session.scalars(query.order_by(SatelliteScene.acquired_at.desc(), SatelliteScene.id.desc())
                           .limit(limit)).all()
    return _reads(session, rows, viewer=viewer, locale=locale)


# --- opening a case -------------------------------------------------------------------------------


def open_case(session: Session, *, change_id: int, actor: User, index: PlaceIndex,
              now: datetime | None = None) -> ChangeAreaRead:
    """Open a case from a change area (cases.dispatch, the area's point in the actor's scope), once: the
    case is taken in like a report, located at the area's representative point and routed to its grid;
    a second attempt is a Conflict naming the case."""
    now = now or utcnow()
    if not has_permission(actor, OPEN_PERMISSION):
        raise Forbidden(f"your role may not open cases from change areas (needs permission "
                        f"{OPEN_PERMISSION!r})")
    change = session.get(ChangeArea, change_id)
    if change is None:
        raise NotFound(f"no change area with id {change_id}", field="change_id")
    if change.case_id is not None:
        raise Conflict(f"change area {change.id} has a case already (case {change.case_id})",
                       field="change_id", detail={"case_id": change.case_id})
    try:
        where = places_service.lookup_point(index, lon=change.lon, lat=change.lat)
    except NotFound as exc:
        raise ValidationFailed(exc.message, field="change_id") from None
    division = where.grid.code if where.grid else where.village.code if where.village else None
    if not can_access(actor, division_code=division):
        raise Forbidden(f"change area {change.id} lies outside your scope")
    scene = session.get(SatelliteScene, change.scene_id)
    assert scene is not None  # the foreign key holds it
    kind = CHANGE_KINDS[change.kind]
    day = scene.acquired_at.date().isoformat()
    label = "（模拟数据）" if scene.synthetic else ""
    data = CaseCreate(
        type_code=kind.case_type, category=kind.category,
        title=f"卫星遥感发现{kind.name_zh}{label}"[:200],
        description=(f"{scene.sensor} 影像 {scene.scene_id}（{day}，{scene.source}）"
                     f"标记的{kind.name_zh}区域，"
                     f"面积约 {change.area_km2:g} 平方公里，置信度 {change.confidence:.0%}。请现场核查。"
                     f"（变化图斑 {change.id}）")[:5000],
        lon=change.lon, lat=change.lat, source="warning", fields=dict(kind.fields),
    )
    case = case_service.report_case(session, data=data, index=index, reporter=actor, now=now)
    claimed = session.execute(
        update(ChangeArea).where(ChangeArea.id == change.id, ChangeArea.case_id.is_(None))
        .values(case_id=case.id, opened_by_id=actor.id, opened_at=now)
        .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]  # another request opened one meanwhile
        raise Conflict(f"change area {change.id} has a case already", field="change_id")
    session.refresh(change)
    [read] = _reads(session, [scene], viewer=actor, locale="zh")
    return next(c for c in read.changes if c.id == change.id)
