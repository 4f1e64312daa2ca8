"""Warnings: issue, update, extend, cancel and expire them, import other senders' CAP messages, and
write each published step as a CAP 1.2 message.

Every change goes through the workflow table (workflow.py) and, when the warning is public, leaves a
CAP message in its history: Alert first, then Updates and a Cancel that reference every earlier message
of the warning. Services flush, never commit; events go to the outbox in the caller's transaction."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from sqlalchemy.orm import Session

from cityops.core.auth.models import User
from cityops.core.auth.scope import in_scope, scope_prefix
from cityops.core.db import Database, utcnow
from cityops.core.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from cityops.core.events import Event, emit
from cityops.core.i18n import gettext_for
from cityops.core.scheduler import Job
from cityops.places import service as places_service
from cityops.warning import cap, hazards
from cityops.warning import repository as repo
from cityops.warning.events import WarningCancelled, WarningExpired, WarningIssued, WarningUpdated
from cityops.warning.models import HazardWarning, WarningMessage
from cityops.warning.schemas import (
    ImportResult,
    WarningCreate,
    WarningMessageRead,
    WarningPage,
    WarningRead,
    WarningUpdate,
)
from cityops.warning.workflow import (
    NEW,
    STATE_LABELS,
    Transition,
    allowed_actions,
    transition_for,
    workflow_of,
)

IDENTIFIER_PREFIX = "cityops.hebi."
# Division outlines are simplified to about 100 m for warnings: a CAP polygon is for people and
# phones, and a county's full boundary would make every message tens of kilobytes.
AREA_TOLERANCE_DEG = 1e-3
MAX_AREA_POINTS = 5_000
LEVELS_BY_LENGTH = {6: ("county", "city"), 9: ("township",), 12: ("village",)}
OUTCOMES = Literal["created", "updated", "cancelled", "unchanged"]


@dataclass(frozen=True)
class Issuer:
    """Who the installation's own warnings come from (settings.cap_sender, cap_sender_name)."""

    sender: str
    name: str

    @classmethod
    def from_settings(cls, settings: Any) -> Issuer:
        return cls(settings.cap_sender, settings.cap_sender_name)


# --- areas -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedArea:
    geometry: MultiPolygon | None
    codes: list[str]
    names: list[str]


def _multi(geometry: Any) -> MultiPolygon | None:
    """The polygons of a geometry as one MultiPolygon (points and lines dropped); None if empty."""
    if geometry is None or geometry.is_empty:
        return None
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    if isinstance(geometry, MultiPolygon):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    polygons = [p for g in parts for p in (g.geoms if isinstance(g, MultiPolygon) else [g])]
    return MultiPolygon(polygons) if polygons else None


def _division_outline(session: Session, code: str) -> tuple[str, Any] | None:
    """The name and outline of a division, from the places layers (None: no such division here)."""
    for level in LEVELS_BY_LENGTH.get(len(code), ()):
        layer = json.loads(places_service.geojson_layer(session, level=level, code=code))
        for feature in layer["features"]:
            return str(feature["properties"]["name"]), shape(feature["geometry"])
    return None


def _city(session: Session) -> tuple[str, Any] | None:
    root = places_service.root_code(session)
    return _division_outline(session, root) if root else None


def _given_polygon(geojson: dict[str, Any]) -> MultiPolygon:
    kind = geojson.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValidationFailed(
            f"the area must be a GeoJSON Polygon or MultiPolygon, not {kind!r}", field="area"
        )
    try:
        geometry = shape(geojson)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.GEOSException) as exc:
        raise ValidationFailed(f"the area is not a valid GeoJSON {kind}: {exc}", field="area") from None
    bounds = geometry.bounds if not geometry.is_empty else None
    if bounds is None or not all(map(math.isfinite, bounds)):
        raise ValidationFailed("the area is empty", field="area")
    if not (-180 <= bounds[0] <= bounds[2] <= 180 and -90 <= bounds[1] <= bounds[3] <= 90):
        raise ValidationFailed("the area's coordinates must be WGS84 [lon, lat]", field="area")
    if shapely.get_num_coordinates(geometry) > MAX_AREA_POINTS:
        raise ValidationFailed(f"the area has more than {MAX_AREA_POINTS} points", field="area")
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    found = _multi(geometry)
    if found is None or found.area == 0:
        raise ValidationFailed("the area encloses nothing", field="area")
    return found


def resolve_area(
    session: Session,
    *,
    polygon: dict[str, Any] | MultiPolygon | None,
    codes: Sequence[str],
    strict_codes: bool = True,
) -> ResolvedArea:
    """The union of a polygon and the outlines of division codes, checked to touch the city. With
    `strict_codes` (warnings issued here) an unknown code is an error; an import keeps such codes as
    geocodes without an outline."""
    parts: list[Any] = []
    names: list[str] = []
    kept: list[str] = []
    for code in dict.fromkeys(codes):
        outline = _division_outline(session, code)
        if outline is None:
            if strict_codes:
                raise ValidationFailed(f"no division with code {code!r}", field="division_codes")
        else:
            names.append(outline[0])
            parts.append(outline[1])
        kept.append(code)
    if polygon is not None:
        parts.append(polygon if isinstance(polygon, MultiPolygon) else _given_polygon(polygon))
    if not parts:
        if not kept:
            raise ValidationFailed("give the area: a polygon or division codes", field="area")
        return ResolvedArea(None, kept, names)
    merged = shapely.union_all(parts)
    simple = shapely.simplify(merged, AREA_TOLERANCE_DEG, preserve_topology=True)
    geometry = _multi(shapely.set_precision(simple, 1e-6)) or _multi(merged)
    city = _city(session)
    if geometry is not None and city is not None and not geometry.intersects(city[1]):
        raise ValidationFailed(f"the area lies outside {city[0]}", field="area")
    return ResolvedArea(geometry, kept, names)


# A drawn area may stray this far beyond the outline of the issuer's division (about 200 m: the outlines
# of warnings are simplified to about 100 m).
SCOPE_MARGIN_DEG = 2e-3


def authorize_area(
    session: Session,
    actor: User | None,
    *,
    codes: Sequence[str],
    geometry: MultiPolygon | None,
    what: str = "the warning's area",
) -> None:
    """Forbidden (403, with the reason) unless the actor's division scope holds the area: every division
    code in it, and a drawn area within the outline of the scope's division. The system (None) and the
    city's own staff act anywhere in the city (resolve_area keeps every area there)."""
    if actor is None:
        return
    scope = actor.scope_code or ""
    try:
        prefix = scope_prefix(scope)
    except ValueError:
        raise Forbidden(
            "your account has no division scope, so it changes no warnings", code="outside_scope"
        ) from None
    outside = [code for code in codes if not in_scope(scope, code)]
    if outside:
        raise Forbidden(
            f"{what} includes {', '.join(outside[:5])}, outside your scope {scope}", code="outside_scope"
        )
    if geometry is None:
        return
    root = places_service.root_code(session)
    if root is not None and root.startswith(prefix):
        return
    outline = _division_outline(session, scope)
    if outline is None or not outline[1].buffer(SCOPE_MARGIN_DEG).contains(geometry):
        name = outline[0] if outline is not None else scope
        raise Forbidden(f"{what} reaches beyond {name} ({scope}), your scope", code="outside_scope")


def _authorize_warning(session: Session, actor: User | None, warning: HazardWarning) -> None:
    authorize_area(
        session,
        actor,
        codes=warning.division_codes,
        geometry=_geometry_of(warning),
        what=f"the area of warning {warning.id}",
    )


def _geojson(geometry: MultiPolygon | None) -> dict[str, Any] | None:
    if geometry is None:
        return None
    found: dict[str, Any] = json.loads(shapely.to_geojson(geometry))
    return found


def _geometry_of(warning: HazardWarning) -> MultiPolygon | None:
    return _multi(shape(warning.area)) if warning.area else None


def _rings(geometry: MultiPolygon | None) -> tuple[cap.Ring, ...]:
    """CAP polygons: the outer ring of each part (CAP has no holes)."""
    if geometry is None:
        return ()
    return tuple(
        tuple((float(x), float(y)) for x, y in polygon.exterior.coords) for polygon in geometry.geoms
    )


def _circle_polygon(circle: str) -> Polygon:
    """A CAP circle ('lat,lon radius_km') as a 32-sided polygon, good enough for a map and a test
    against the city."""
    centre, radius = circle.split(" ")
    lat, lon = (float(v) for v in centre.split(","))
    km = float(radius)
    degrees_lat = km / 111.32
    degrees_lon = km / (111.32 * max(math.cos(math.radians(lat)), 0.01))
    points = [
        (lon + degrees_lon * math.cos(a), lat + degrees_lat * math.sin(a))
        for a in (2 * math.pi * i / 32 for i in range(32))
    ]
    return Polygon(points) if km > 0 else Point(lon, lat).buffer(1e-4)


# --- reading ---------------------------------------------------------------------------------------


def _status_now(warning: HazardWarning, now: datetime) -> str:
    """An issued warning past its expiry reads as expired before the job has marked it so."""
    return "expired" if warning.status == "issued" and warning.expires <= now else warning.status


def to_read(
    warning: HazardWarning,
    messages: Sequence[WarningMessage],
    *,
    locale: str = "zh",
    now: datetime | None = None,
) -> WarningRead:
    _ = gettext_for(locale).gettext
    now = now or utcnow()
    level = hazards.LEVELS[warning.level]
    hazard = hazards.HAZARDS.get(warning.hazard, hazards.HAZARDS["other"])
    status = _status_now(warning, now)
    actions = [a for a in allowed_actions(workflow_of(warning.source), status) if a != "expire"]
    return WarningRead(
        id=warning.id,
        identifier=warning.identifier,
        sender=warning.sender,
        sender_name=warning.sender_name,
        source=warning.source,
        source_detail=warning.source_detail,
        hazard=warning.hazard,
        hazard_label=_(hazard.label),
        level=warning.level,
        level_label=_(level.label),
        severity=level.severity,
        status=status,
        status_label=_(STATE_LABELS[status]),
        category=warning.category,
        urgency=warning.urgency,
        certainty=warning.certainty,
        headline=warning.headline,
        headline_en=warning.headline_en,
        description=warning.description,
        description_en=warning.description_en,
        instruction=warning.instruction,
        instruction_en=warning.instruction_en,
        area_desc=warning.area_desc,
        division_codes=list(warning.division_codes),
        area=warning.area,
        onset=warning.onset,
        expires=warning.expires,
        created_at=warning.created_at,
        issued_at=warning.issued_at,
        updated_at=warning.updated_at,
        ended_at=warning.ended_at,
        end_reason=warning.end_reason,
        allowed_actions=actions if warning.source != "external" else [],
        messages=[WarningMessageRead.model_validate(m) for m in messages],
    )


def _get(session: Session, warning_id: int) -> HazardWarning:
    warning = repo.get(session, warning_id)
    if warning is None:
        raise NotFound(f"no warning with id {warning_id}", field="warning_id")
    return warning


def get_warning(session: Session, *, warning_id: int, locale: str = "zh") -> WarningRead:
    warning = _get(session, warning_id)
    return to_read(warning, repo.messages_of(session, [warning.id])[warning.id], locale=locale)


def list_warnings(
    session: Session,
    *,
    status: str | None = None,
    hazard: str | None = None,
    source: str | None = None,
    level: str | None = None,
    limit: int = 50,
    offset: int = 0,
    locale: str = "zh",
) -> WarningPage:
    """Warnings newest first; `status=active` is shorthand for those in force."""
    statuses: list[str] | None = None
    if status:
        statuses = ["issued"] if status == "active" else [status]
        if statuses[0] not in STATE_LABELS:
            raise ValidationFailed(
                f"status must be active or one of {', '.join(STATE_LABELS)}, not {status!r}", field="status"
            )
    if hazard:
        hazards.hazard(hazard)
    if level:
        hazards.level(level)
    if not 1 <= limit <= 1000:
        raise ValidationFailed("limit must be between 1 and 1000", field="limit")
    items, total = repo.list_warnings(
        session,
        statuses=statuses,
        hazard=hazard,
        source=source,
        level=level,
        limit=limit,
        offset=max(offset, 0),
    )
    messages = repo.messages_of(session, [w.id for w in items])
    now = utcnow()
    return WarningPage(
        items=[to_read(w, messages[w.id], locale=locale, now=now) for w in items],
        total=total,
        limit=limit,
        offset=offset,
    )


def latest_cap(session: Session, *, warning_id: int) -> str:
    """The warning's newest CAP message as it went out (or came in)."""
    warning = _get(session, warning_id)
    latest = repo.latest_message(session, warning.id)
    if latest is None:
        raise NotFound(
            f"warning {warning_id} has no CAP message: it is {warning.status}, not yet issued",
            field="warning_id",
        )
    return latest.xml


# --- writing CAP messages --------------------------------------------------------------------------


def _new_identifier() -> str:
    return f"{IDENTIFIER_PREFIX}{uuid.uuid4()}"


def _infos(warning: HazardWarning, msg_type: str) -> tuple[cap.Info, ...]:
    level = hazards.LEVELS[warning.level]
    hazard = hazards.HAZARDS[warning.hazard]
    cancelled = msg_type == "Cancel"
    response = "AllClear" if cancelled else hazards.response_for(hazard, level)
    geometry = _geometry_of(warning)
    area = cap.Area(
        warning.area_desc,
        _rings(geometry),
        geocodes=tuple(cap.geocode_for(c) for c in warning.division_codes),
    )
    common: dict[str, Any] = {
        "categories": (hazard.category,),
        "urgency": "Past" if cancelled else warning.urgency,
        "severity": level.severity,
        "certainty": warning.certainty,
        "response_types": (response,),
        "event_codes": ((cap.HAZARD_EVENT_CODE, hazard.code),),
        "onset": warning.onset,
        "expires": warning.expires,
        "sender_name": warning.sender_name,
        "areas": (area,),
    }
    infos = [
        cap.Info(
            language="zh-CN",
            event=hazard.name_zh,
            headline=warning.headline,
            description=warning.description or None,
            instruction=warning.instruction or None,
            parameters=((cap.LEVEL_PARAMETER, level.code), (cap.LEVEL_PARAMETER_ZH, level.colour_zh)),
            **common,
        )
    ]
    if warning.headline_en:
        infos.append(
            cap.Info(
                language="en-US",
                event=hazard.label,
                headline=warning.headline_en,
                description=warning.description_en or None,
                instruction=warning.instruction_en or None,
                parameters=((cap.LEVEL_PARAMETER, level.code),),
                **common,
            )
        )
    return tuple(infos)


def _publish(
    session: Session,
    warning: HazardWarning,
    *,
    action: str,
    msg_type: str,
    now: datetime,
    actor: User | None,
    note: str | None = None,
    identifier: str | None = None,
) -> WarningMessage:
    """Write the CAP message of a step of one of the platform's own warnings and keep it."""
    earlier = repo.messages_of(session, [warning.id])[warning.id]
    sent = cap.cap_time(now)
    message = cap.Alert(
        identifier=identifier or _new_identifier(),
        sender=warning.sender,
        sent=sent,
        msg_type=msg_type,
        note=note,
        references=tuple(cap.Reference(m.sender, m.identifier, m.sent) for m in earlier),
        infos=_infos(warning, msg_type),
    )
    row = WarningMessage(
        warning_id=warning.id,
        action=action,
        msg_type=msg_type,
        sender=message.sender,
        identifier=message.identifier,
        sent=sent,
        sent_at=now,
        level=warning.level,
        note=note,
        xml=cap.to_xml(message),
        actor_id=actor.id if actor is not None else None,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


# --- the platform's own warnings -------------------------------------------------------------------


def _check_times(onset: datetime | None, expires: datetime, now: datetime) -> None:
    if expires <= now:
        raise ValidationFailed(f"expires ({cap.cap_time(expires)}) must be in the future", field="expires")
    if onset is not None and expires <= onset:
        raise ValidationFailed(
            f"expires ({cap.cap_time(expires)}) must be after onset ({cap.cap_time(onset)})", field="expires"
        )


def default_headline(sender_name: str, hazard: hazards.Hazard, level: hazards.Level) -> str:
    """鹤壁市城市运行管理中心发布暴雨橙色预警"""
    return f"{sender_name}发布{hazard.name_zh}{level.colour_zh}预警"


def default_headline_en(hazard: hazards.Hazard, level: hazards.Level) -> str:
    return f"{level.label} {hazard.label.lower()} warning"


def issue(
    session: Session,
    *,
    data: WarningCreate,
    actor: User | None,
    issuer: Issuer,
    now: datetime | None = None,
    source: str = "manual",
    source_detail: str = "",
    pending: bool = False,
) -> HazardWarning:
    """Issue a warning (a CAP Alert), or keep it as a draft (`data.draft`), or, for a station's level
    that an operator confirms first (`pending`), hold it until `release`."""
    now = now or utcnow()
    hazard = hazards.hazard(data.hazard)
    level = hazards.level(data.level)
    _check_times(data.onset, data.expires, now)
    area = resolve_area(session, polygon=data.area, codes=data.division_codes)
    authorize_area(session, actor, codes=area.codes, geometry=area.geometry)
    action = "raise" if pending else "draft" if data.draft else "issue"
    transition = transition_for(workflow_of(source), NEW, action)
    if not data.area_desc and not area.names:
        raise ValidationFailed(
            "describe the area (area_desc): it is drawn, not named by divisions", field="area_desc"
        )
    has_english = bool(data.headline_en or data.instruction_en or data.description_en)
    warning = HazardWarning(
        sender=issuer.sender,
        identifier=_new_identifier(),
        hazard=hazard.code,
        level=level.code,
        status=transition.to,
        source=source,
        source_detail=source_detail,
        sender_name=issuer.name,
        category=hazard.category,
        urgency=data.urgency or ("Expected" if data.onset is not None and data.onset > now else "Immediate"),
        certainty=data.certainty,
        headline=data.headline or default_headline(issuer.name, hazard, level),
        headline_en=data.headline_en or (default_headline_en(hazard, level) if has_english else None),
        description=data.description,
        description_en=data.description_en,
        instruction=data.instruction,
        instruction_en=data.instruction_en,
        area_desc=data.area_desc or "、".join(area.names),
        division_codes=area.codes,
        area=_geojson(area.geometry),
        onset=data.onset,
        expires=data.expires,
        created_by_id=actor.id if actor is not None else None,
        created_at=now,
        updated_at=now,
    )
    session.add(warning)
    session.flush()
    if transition.message is not None:
        _go_public(session, warning, transition, action="issue", now=now, actor=actor)
    return warning


def _go_public(
    session: Session,
    warning: HazardWarning,
    transition: Transition,
    *,
    action: str,
    now: datetime,
    actor: User | None,
) -> WarningMessage:
    warning.status = transition.to
    warning.issued_at = now
    warning.updated_at = now
    # The first message carries the warning's own identifier.
    message = _publish(
        session, warning, action=action, msg_type="Alert", now=now, actor=actor, identifier=warning.identifier
    )
    _emit_issued(session, warning, message)
    return message


def _emit_issued(session: Session, warning: HazardWarning, message: WarningMessage) -> None:
    emit(
        session,
        WarningIssued(
            warning_id=warning.id,
            identifier=warning.identifier,
            hazard=warning.hazard,
            level=warning.level,
            source=warning.source,
            message_id=message.id,
        ),
    )


def _updated(warning: HazardWarning, message: WarningMessage, *, previous_level: str,
             action: str) -> WarningUpdated:
    return WarningUpdated(warning_id=warning.id, identifier=warning.identifier, hazard=warning.hazard,
                          level=warning.level, previous_level=previous_level,
                          expires=warning.expires.isoformat(), action=action, message_id=message.id)


def _expire_if_due(session: Session, warning: HazardWarning, now: datetime) -> None:
    if warning.status == "issued" and warning.expires <= now:
        transition = transition_for(workflow_of(warning.source), warning.status, "expire")
        warning.status = transition.to
        warning.ended_at = warning.expires
        warning.end_reason = "expired"
        warning.updated_at = now
        emit(session, WarningExpired(warning_id=warning.id, identifier=warning.identifier))


def _own(session: Session, warning_id: int, action: str, now: datetime) -> tuple[HazardWarning, Transition]:
    warning = _get(session, warning_id)
    _expire_if_due(session, warning, now)
    if warning.source == "external" and action in ("update", "extend", "cancel"):
        raise Conflict(
            f"warning {warning.id} was imported from {warning.sender}: only its sender's CAP "
            f"messages change it",
            code="external_warning",
        )
    return warning, transition_for(workflow_of(warning.source), warning.status, action)


def release(
    session: Session, *, warning_id: int, actor: User | None, now: datetime | None = None
) -> HazardWarning:
    """Issue a draft, or confirm a warning a station raised: its CAP Alert goes out."""
    now = now or utcnow()
    warning = _get(session, warning_id)
    _authorize_warning(session, actor, warning)
    action = "confirm" if warning.status == "pending" else "issue"
    transition = transition_for(workflow_of(warning.source), warning.status, action)
    _check_times(warning.onset, warning.expires, now)
    _go_public(session, warning, transition, action=action, now=now, actor=actor)
    return warning


def _relevel(warning: HazardWarning, level: hazards.Level, data: WarningUpdate) -> None:
    """A new level, and the default headlines that named the old one (unless new ones are given)."""
    hazard = hazards.HAZARDS[warning.hazard]
    if data.headline is None and warning.headline == default_headline(
        warning.sender_name, hazard, hazards.LEVELS[warning.level]
    ):
        warning.headline = default_headline(warning.sender_name, hazard, level)
    if data.headline_en is None and warning.headline_en == default_headline_en(
        hazard, hazards.LEVELS[warning.level]
    ):
        warning.headline_en = default_headline_en(hazard, level)
    warning.level = level.code


def update(
    session: Session, *, warning_id: int, data: WarningUpdate, actor: User | None, now: datetime | None = None
) -> HazardWarning:
    """Change the level, area, texts or expiry of a warning in force (a CAP Update)."""
    now = now or utcnow()
    warning, transition = _own(session, warning_id, "update", now)
    _authorize_warning(session, actor, warning)
    changes = data.model_dump(exclude_unset=True, exclude={"note"})
    changes = {k: v for k, v in changes.items() if v is not None or k in ("area",)}
    if not changes:
        raise ValidationFailed("nothing to update: give a level, area, text or expiry", field="level")
    previous_level = warning.level
    if "level" in changes:
        _relevel(warning, hazards.level(changes["level"]), data)
    if "expires" in changes:
        _check_times(warning.onset, changes["expires"], now)
        warning.expires = changes["expires"]
    if "area" in changes or "division_codes" in changes:
        codes = data.division_codes if data.division_codes is not None else list(warning.division_codes)
        polygon: dict[str, Any] | MultiPolygon | None = data.area if "area" in changes else None
        if "area" not in changes and "division_codes" in changes:
            polygon = None  # the new codes replace the old area
        area = resolve_area(session, polygon=polygon, codes=codes)
        authorize_area(session, actor, codes=area.codes, geometry=area.geometry)
        warning.division_codes = area.codes
        warning.area = _geojson(area.geometry)
        if data.area_desc is None and area.names:
            warning.area_desc = "、".join(area.names)
    for key in (
        "headline",
        "description",
        "instruction",
        "headline_en",
        "description_en",
        "instruction_en",
        "area_desc",
    ):
        if key in changes:
            setattr(warning, key, changes[key])
    warning.updated_at = now
    warning.status = transition.to
    message = _publish(
        session, warning, action="update", msg_type="Update", now=now, actor=actor, note=data.note
    )
    emit(session, _updated(warning, message, previous_level=previous_level, action="update"))
    return warning


def revise_pending(
    session: Session, *, warning_id: int, data: WarningUpdate, now: datetime | None = None
) -> HazardWarning:
    """Change the level and texts of a station's warning that awaits an operator's confirmation: nothing
    has gone out yet, so no message and no event (its Alert goes out on `release`)."""
    now = now or utcnow()
    warning = _get(session, warning_id)
    if warning.status != "pending":
        raise InvalidTransition(
            f"warning {warning.id} is {warning.status}: only a warning awaiting confirmation changes "
            f"without a message",
            detail={"state": warning.status, "allowed": allowed_actions(workflow_of(warning.source),
                                                                        warning.status)},
        )
    if data.level is not None:
        _relevel(warning, hazards.level(data.level), data)
    if data.expires is not None:
        _check_times(warning.onset, data.expires, now)
        warning.expires = data.expires
    for key in ("description", "instruction", "description_en", "instruction_en"):
        value = getattr(data, key)
        if value is not None:
            setattr(warning, key, value)
    warning.updated_at = now
    return warning


def extend(
    session: Session,
    *,
    warning_id: int,
    expires: datetime,
    actor: User | None,
    note: str | None = None,
    now: datetime | None = None,
) -> HazardWarning:
    """Keep a warning in force longer (a CAP Update with the new expiry)."""
    now = now or utcnow()
    warning, transition = _own(session, warning_id, "extend", now)
    _authorize_warning(session, actor, warning)
    if expires <= warning.expires:
        raise ValidationFailed(
            f"expires ({cap.cap_time(expires)}) must be later than the warning's current "
            f"expiry ({cap.cap_time(warning.expires)})",
            field="expires",
        )
    warning.expires = expires
    warning.updated_at = now
    warning.status = transition.to
    message = _publish(
        session,
        warning,
        action="extend",
        msg_type="Update",
        now=now,
        actor=actor,
        note=note or f"有效期延长至{cap.cap_time(expires)}",
    )
    emit(session, _updated(warning, message, previous_level=warning.level, action="extend"))
    return warning


def cancel(
    session: Session, *, warning_id: int, reason: str, actor: User | None, now: datetime | None = None
) -> HazardWarning:
    """End a warning before its expiry (a CAP Cancel, the reason in its <note>); a draft or a pending
    warning is discarded or rejected without any message."""
    now = now or utcnow()
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("give the reason for cancelling", field="reason")
    warning = _get(session, warning_id)
    _authorize_warning(session, actor, warning)
    _expire_if_due(session, warning, now)
    action = {"draft": "discard", "pending": "reject"}.get(warning.status, "cancel")
    _, transition = _own(session, warning_id, action, now)
    warning.status = transition.to
    warning.ended_at = now
    warning.end_reason = reason
    warning.updated_at = now
    message = (
        _publish(session, warning, action="cancel", msg_type="Cancel", now=now, actor=actor, note=reason)
        if transition.message == "Cancel"
        else None
    )
    emit(
        session,
        WarningCancelled(
            warning_id=warning.id,
            identifier=warning.identifier,
            reason=reason,
            message_id=message.id if message is not None else None,
        ),
    )
    return warning


def expire_due(session: Session, *, now: datetime | None = None) -> int:
    """Mark the warnings whose expiry has passed as expired; how many."""
    now = now or utcnow()
    due = repo.due_to_expire(session, now)
    for warning in due:
        _expire_if_due(session, warning, now)
    return len(due)


def expiry_job(*, interval_s: int = 60) -> Job:
    """'warning.expiry' for the scheduler (reads show the right status meanwhile)."""

    def run(db: Database, now: datetime) -> int:
        with db.session() as session:
            return expire_due(session, now=now)

    return Job("warning.expiry", interval_s, run)


# --- imported CAP ----------------------------------------------------------------------------------


def _imported_area(session: Session, alert: cap.Alert, info: cap.Info) -> ResolvedArea:
    polygons = [shapely.make_valid(Polygon(ring)) for area in info.areas for ring in area.polygons]
    polygons += [_circle_polygon(c) for area in info.areas for c in area.circles]
    codes = cap.division_codes(info.areas)
    geometry = _multi(shapely.union_all(polygons)) if polygons else None
    if geometry is None and not codes:
        raise cap.CapError(
            [
                cap.Problem(
                    f"{alert.msg_type} {alert.identifier} gives no area this platform can "
                    f"place: no polygon, circle or division geocode"
                )
            ]
        )
    try:
        area = resolve_area(session, polygon=geometry, codes=codes, strict_codes=False)
    except ValidationFailed as exc:
        raise cap.CapError([cap.Problem(exc.message, path="/alert/info/area")]) from None
    if area.geometry is None:  # only codes, none of them a division of this city
        city = _city(session)
        raise cap.CapError(
            [
                cap.Problem(
                    f"the area ({', '.join(codes)}) names no division of {city[0] if city else 'this city'}",
                    path="/alert/info/area",
                )
            ]
        )
    return area


def _apply_info(session: Session, warning: HazardWarning, alert: cap.Alert) -> None:
    info = alert.main_info
    assert info is not None  # parse() refuses an Alert or Update without one
    english = alert.info_in("en") if info.language.lower().startswith("zh") else None
    level = cap.level_of(info)
    assert level is not None  # parse() refuses an info without a level
    hazard_code = info.event_code(cap.HAZARD_EVENT_CODE)
    hazard = hazards.HAZARDS.get(hazard_code or "") or hazards.hazard_named(info.event)
    area = _imported_area(session, alert, info)
    sent = alert.sent_at
    warning.hazard = hazard.code
    warning.level = level.code
    warning.category = info.categories[0] if info.categories else hazard.category
    warning.urgency = info.urgency
    warning.certainty = info.certainty
    warning.sender_name = (info.sender_name or alert.sender)[:200]
    warning.source_detail = warning.sender_name
    warning.headline = (info.headline or f"{info.event}")[:300]
    warning.description = info.description or ""
    warning.instruction = info.instruction or ""
    warning.headline_en = english.headline[:300] if english and english.headline else None
    warning.description_en = english.description if english else None
    warning.instruction_en = english.instruction if english else None
    warning.area_desc = ("、".join(a.desc for a in info.areas if a.desc) or "、".join(area.names))[:500]
    warning.division_codes = area.codes
    warning.area = _geojson(area.geometry)
    warning.onset = info.onset or info.effective
    warning.expires = cap.expiry_of(info, sent)


def _keep(
    session: Session,
    warning: HazardWarning,
    alert: cap.Alert,
    xml: str,
    *,
    action: str,
    now: datetime,
    actor: User | None,
) -> WarningMessage:
    row = WarningMessage(
        warning_id=warning.id,
        action=action,
        msg_type=alert.msg_type,
        sender=alert.sender,
        identifier=alert.identifier,
        sent=alert.sent,
        sent_at=alert.sent_at,
        level=warning.level,
        note=alert.note[:500] if alert.note else None,
        xml=xml,
        actor_id=actor.id if actor is not None else None,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def import_cap(
    session: Session, *, data: bytes | str, actor: User | None, issuer: Issuer, now: datetime | None = None
) -> ImportResult:
    """Import a CAP 1.2 message from another sender (e.g. the meteorological bureau's feed).

    An Alert becomes an external warning; an Update or Cancel whose references name a message
    imported before applies to that warning (an Update of a warning never seen becomes a new one).
    Importing a message again changes nothing. Invalid input raises CapError (422) with the reason."""
    now = now or utcnow()
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    alert = cap.parse(data)
    if alert.sender == issuer.sender:
        raise cap.CapError(
            [
                cap.Problem(
                    f"sender {alert.sender} is this platform's own: its warnings are made here, not imported",
                    path="/alert/sender",
                )
            ]
        )
    known = repo.message(session, alert.sender, alert.identifier)
    if known is not None:
        warning = _get(session, known.warning_id)
        return ImportResult(
            outcome="unchanged",
            warning=to_read(warning, repo.messages_of(session, [warning.id])[warning.id], now=now),
        )
    target = repo.warning_referenced(session, [(r.sender, r.identifier) for r in alert.references])
    if target is not None and target.sender != alert.sender:
        raise cap.CapError(
            [
                cap.Problem(
                    f"{alert.sender} may not change a warning of {target.sender}", path="/alert/references"
                )
            ]
        )
    outcome: OUTCOMES
    if target is None:
        if alert.msg_type == "Cancel":
            refs = " ".join(r.text() for r in alert.references)
            raise cap.CapError(
                [
                    cap.Problem(
                        f"the Cancel references no message imported here ({refs})", path="/alert/references"
                    )
                ]
            )
        warning = _create_external(session, alert, text, actor=actor, now=now)
        outcome = "created"
    else:
        warning = target
        _expire_if_due(session, warning, now)
        action = "cancel" if alert.msg_type == "Cancel" else "update"
        transition = transition_for(workflow_of(warning.source), warning.status, action)
        previous_level = warning.level
        if action == "update":
            _apply_info(session, warning, alert)
        warning.status = transition.to
        warning.updated_at = now
        message = _keep(session, warning, alert, text, action=action, now=now, actor=actor)
        event: Event
        if action == "cancel":
            warning.ended_at = now
            warning.end_reason = alert.note or "cancelled by the sender"
            event = WarningCancelled(
                warning_id=warning.id,
                identifier=warning.identifier,
                reason=warning.end_reason,
                message_id=message.id,
            )
            outcome = "cancelled"
        else:
            warning.ended_at = None
            warning.end_reason = None
            event = _updated(warning, message, previous_level=previous_level, action="update")
            outcome = "updated"
        emit(session, event)
    return ImportResult(
        outcome=outcome,
        warning=to_read(warning, repo.messages_of(session, [warning.id])[warning.id], now=now),
    )


def _create_external(
    session: Session, alert: cap.Alert, xml: str, *, actor: User | None, now: datetime
) -> HazardWarning:
    transition = transition_for(workflow_of("external"), NEW, "import")
    warning = HazardWarning(
        sender=alert.sender,
        identifier=alert.identifier,
        status=transition.to,
        source="external",
        created_at=now,
        issued_at=alert.sent_at,
        updated_at=now,
        created_by_id=actor.id if actor is not None else None,
    )
    _apply_info(session, warning, alert)
    session.add(warning)
    session.flush()
    message = _keep(session, warning, alert, xml, action="import", now=now, actor=actor)
    if warning.expires <= now:  # an old message: kept for the record, never in force here
        warning.status = "expired"
        warning.ended_at = warning.expires
        warning.end_reason = "expired"
        emit(session, WarningExpired(warning_id=warning.id, identifier=warning.identifier))
    else:
        _emit_issued(session, warning, message)
    return warning
