"""Warning pages: the list of warnings (filters, Excel export), a warning's page (its level, area on a map,
CAP messages with their XML, the response and the history), the forms to issue, update, extend and
cancel (warnings.issue), the import of a CAP file, the satellite scene catalogue, and the command board
(/warnings/board), which polls GET /api/warnings/board."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cityops.cases.pages import STATE_LABELS as CASE_STATE_LABELS
from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError, NotFound, ValidationFailed
from cityops.core.export import xlsx_response
from cityops.core.i18n import N_, gettext_for, locale_of
from cityops.core.templating import NavItem, form_refusal, register_nav, render
from cityops.warning import board, board_api, cap, hazards, response, satellite, service
from cityops.warning import repository as repo
from cityops.warning.schemas import WarningCreate, WarningUpdate
from cityops.warning.workflow import STATE_LABELS

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
register_nav(NavItem("warnings", N_("Warnings"), "/warnings", order=55, permission="warnings.view",
                     description=N_("Natural-disaster warnings in force and past, their CAP messages and the "
                                    "response they set in motion.")))
register_nav(NavItem("warning-board", N_("Command board"), "/warnings/board", order=56,
                     permission="warnings.view",
                     description=N_("One map of the monitoring stations, warning areas, response tasks, "
                                    "cameras, drones and satellite scenes.")))

MAX_ID = 2**31 - 1
PAGE = 50
WarningId = Annotated[int, Path(ge=1, le=MAX_ID)]
Viewer = Annotated[User, Depends(require_permission("warnings.view"))]
Issuer = Annotated[User, Depends(require_permission("warnings.issue"))]
SOURCE_LABELS = {"manual": N_("Issued by hand"), "station": N_("Raised by a station"),
                 "external": N_("Imported (CAP)")}
EXPORT_HEADERS = (N_("ID"), N_("Warning level"), N_("Hazard"), N_("Status"), N_("Origin"), N_("Headline"),
                  N_("Area"), N_("Issued at"), N_("Expires at"))
REFRESH_S = 30
PLACES_GEOJSON_URL = "/api/places/geojson"


def _labels() -> dict[str, Any]:
    return {"levels": hazards.LEVELS, "hazards": hazards.HAZARDS, "state_labels": STATE_LABELS,
            "source_labels": SOURCE_LABELS, "colours": board.LEVEL_COLOURS,
            "case_state_labels": CASE_STATE_LABELS, "bucket_labels": board.BUCKET_LABELS,
            "bucket_of_state": board.BUCKET_OF_STATE, "kind_labels": response.KIND_LABELS}


# --- the list --------------------------------------------------------------------------------------


@router.get("/warnings", response_class=HTMLResponse, response_model=None)
def warnings(
    request: Request,
    session: SessionDep,
    user: Viewer,
    settings: SettingsDep,
    status: Annotated[str | None, Query(pattern="^(active|draft|pending|issued|cancelled|expired)?$")] = None,
    hazard: Annotated[str | None, Query(max_length=24)] = None,
    level: Annotated[str | None, Query(pattern="^(blue|yellow|orange|red)?$")] = None,
    source: Annotated[str | None, Query(pattern="^(manual|station|external)?$")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    format: Annotated[str, Query(pattern="^(html|xlsx)$")] = "html",
) -> Response:
    """Warnings, the most recently changed first, by status, hazard, level and origin; Excel export."""
    locale = locale_of(request)
    filters = {"status": status or None, "hazard": hazard or None, "level": level or None,
               "source": source or None}
    if format == "xlsx":
        _ = gettext_for(locale).gettext
        found = service.list_warnings(session, limit=1000, locale=locale, status=filters["status"],
                                      hazard=filters["hazard"], level=filters["level"],
                                      source=filters["source"])
        rows = ([w.id, w.level_label, w.hazard_label, w.status_label, _(SOURCE_LABELS[w.source]), w.headline,
                 w.area_desc, w.issued_at, w.expires] for w in found.items)
        return xlsx_response(f"{_('Warnings')}.xlsx", _("Warnings"), [_(h) for h in EXPORT_HEADERS], rows,
                             timezone=settings.display_timezone)
    page = service.list_warnings(session, limit=PAGE, offset=offset, locale=locale, status=filters["status"],
                                 hazard=filters["hazard"], level=filters["level"], source=filters["source"])
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(request, "warning/list.html", {
        "page": page, "filters": filters, "query": query, "offset": offset,
        "may_issue": has_permission(user, "warnings.issue"), **_labels()})


# --- the command board -----------------------------------------------------------------------------


@router.get("/warnings/board", response_class=HTMLResponse)
def command_board(request: Request, user: Viewer, settings: SettingsDep,
                  camera_m: Annotated[int, Query(ge=1, le=board.MAX_CAMERA_M)] = board.DEFAULT_CAMERA_M
                  ) -> HTMLResponse:
    """The command board: one map, its layers switchable, refreshed from GET /api/warnings/board."""
    config = {"boardUrl": f"{board_api.router.prefix}/board?camera_m={camera_m}",
              "placesUrl": PLACES_GEOJSON_URL, "tileUrl": settings.tile_url, "refreshS": REFRESH_S,
              "colours": board.LEVEL_COLOURS, "noLevel": board.NO_LEVEL_COLOUR}
    return render(request, "warning/board.html", {"board_config": config, "camera_m": camera_m,
                                                  **_labels()})


# --- issuing and importing -------------------------------------------------------------------------


def _form_values(form: dict[str, str]) -> dict[str, str]:
    defaults = {"hazard": "rainstorm", "level": "blue", "division_codes": "", "area": "", "expires": "",
                "headline": "", "description": "", "instruction": "", "instruction_en": "", "draft": ""}
    return {**defaults, **form}


def _issue_page(request: Request, form: dict[str, str], *, error: str | None = None,
                status_code: int = 200) -> HTMLResponse:
    return render(request, "warning/new.html", {"form": _form_values(form), "error": error, **_labels()},
                  status_code=status_code)


@router.get("/warnings/new", response_class=HTMLResponse)
def new_warning(request: Request, user: Issuer) -> HTMLResponse:
    return _issue_page(request, {})


def _local_time(text: str, settings: Any, field: str) -> datetime:
    """A datetime-local field (the display timezone's wall clock) as an aware moment."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(f"{field}: a date and time, e.g. 2026-07-20T20:00", field=field) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(settings.display_timezone))


def _json_area(text: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:
        found = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"area: not valid JSON ({exc.msg}, line {exc.lineno})", field="area") from None
    if not isinstance(found, dict):
        raise ValidationFailed("area: a GeoJSON Polygon or MultiPolygon", field="area")
    return found


@router.post("/warnings/new", response_class=HTMLResponse, response_model=None)
def issue_warning(
    request: Request,
    session: SessionDep,
    user: Issuer,
    settings: SettingsDep,
    hazard: Annotated[str, Form(max_length=24)] = "",
    level: Annotated[str, Form(max_length=8)] = "",
    division_codes: Annotated[str, Form(max_length=4000)] = "",
    area: Annotated[str, Form(max_length=500_000)] = "",
    expires: Annotated[str, Form(max_length=40)] = "",
    headline: Annotated[str, Form(max_length=300)] = "",
    description: Annotated[str, Form(max_length=4000)] = "",
    instruction: Annotated[str, Form(max_length=4000)] = "",
    instruction_en: Annotated[str, Form(max_length=4000)] = "",
    draft: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Issue a warning from the form (its CAP Alert goes out), or keep it as a draft."""
    form = {"hazard": hazard, "level": level, "division_codes": division_codes, "area": area,
            "expires": expires, "headline": headline, "description": description, "instruction": instruction,
            "instruction_en": instruction_en, "draft": draft}
    try:
        data = WarningCreate(
            hazard=hazard, level=level, division_codes=division_codes.replace(",", " ").split(),
            area=_json_area(area), expires=_local_time(expires, settings, "expires"),
            headline=headline or None, description=description, instruction=instruction,
            instruction_en=instruction_en or None, draft=bool(draft))
        warning = service.issue(session, data=data, actor=user, issuer=service.Issuer.from_settings(settings))
    except (CityopsError, ValidationError) as exc:
        message, status = form_refusal(session, exc, record_page=False)
        return _issue_page(request, form, error=message, status_code=status)
    return RedirectResponse(f"/warnings/{warning.id}", status_code=303)


def _import_page(request: Request, *, error: str | None = None, problems: list[str] | None = None,
                 result: Any = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "warning/import.html", {"error": error, "problems": problems or [],
                                                   "result": result, **_labels()}, status_code=status_code)


@router.get("/warnings/import", response_class=HTMLResponse)
def import_form(request: Request, user: Issuer) -> HTMLResponse:
    return _import_page(request)


MAX_UPLOAD = 2 * 2**20


@router.post("/warnings/import", response_class=HTMLResponse, response_model=None)
def import_cap(request: Request, session: SessionDep, user: Issuer, settings: SettingsDep,
               file: Annotated[UploadFile | None, File()] = None) -> Response:
    """Import a CAP 1.2 file of another sender; a refused file shows each problem with its line."""
    try:
        if file is None or not file.filename:
            raise ValidationFailed("choose a CAP 1.2 XML file", field="file")
        data = file.file.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            raise ValidationFailed(f"the file is larger than {MAX_UPLOAD // 2**20} MB", field="file")
        issuer = service.Issuer.from_settings(settings)
        result = service.import_cap(session, data=data, actor=user, issuer=issuer)
    except cap.CapError as exc:
        session.rollback()
        problems = [p.text() for p in exc.problems[:cap.MAX_PROBLEMS]]
        return _import_page(request, error=exc.message, problems=problems, status_code=exc.status)
    except CityopsError as exc:
        message, status = form_refusal(session, exc, record_page=False)
        return _import_page(request, error=message, status_code=status)
    return _import_page(request, result=result, status_code=201 if result.outcome == "created" else 200)


# --- the satellite scene catalogue -----------------------------------------------------------------


def _scenes_page(request: Request, session: Session, user: User, *, error: str | None = None,
                 problems: list[str] | None = None, imported: Any = None,
                 status_code: int = 200) -> HTMLResponse:
    scenes = satellite.list_scenes(session, viewer=user, limit=100, locale=locale_of(request))
    return render(request, "warning/scenes.html", {
        "scenes": scenes, "error": error, "problems": problems or [], "imported": imported,
        "may_import": has_permission(user, "warnings.issue"),
        "may_open": has_permission(user, satellite.OPEN_PERMISSION)}, status_code=status_code)


@router.get("/warnings/scenes", response_class=HTMLResponse)
def scenes(request: Request, session: SessionDep, user: Viewer) -> HTMLResponse:
    """The satellite scenes with their change areas; a case is opened from a change area once."""
    return _scenes_page(request, session, user)


@router.post("/warnings/scenes", response_class=HTMLResponse, response_model=None)
def import_scenes(request: Request, session: SessionDep, user: Issuer,
                  file: Annotated[UploadFile | None, File()] = None) -> Response:
    try:
        if file is None or not file.filename:
            raise ValidationFailed("choose a JSON or GeoJSON file of scenes", field="file")
        data = file.file.read(MAX_UPLOAD * 10 + 1)
        if len(data) > MAX_UPLOAD * 10:
            raise ValidationFailed(f"the file is larger than {MAX_UPLOAD * 10 // 2**20} MB", field="file")
        imported = satellite.import_scenes(session, data=data, actor=user)
    except CityopsError as exc:
        message, status = form_refusal(session, exc, record_page=False)
        problems = [str(p["message"]) for p in exc.detail.get("errors", [])]
        return _scenes_page(request, session, user, error=message if not problems else None,
                            problems=problems, status_code=status)
    return _scenes_page(request, session, user, imported=imported, status_code=201)


@router.post("/warnings/scenes/changes/{change_id}/case", response_class=HTMLResponse, response_model=None)
def open_change_case(request: Request, session: SessionDep, user: Viewer,
                     change_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """Open a case from a change area (the form on the catalogue), then go to the case."""
    try:
        change = board_api.open_case(session, request, user, change_id)
    except CityopsError as exc:
        message, status = form_refusal(session, exc, record_page=False)
        return _scenes_page(request, session, user, error=message, status_code=status)
    return RedirectResponse(f"/cases/{change.case_id}", status_code=303)


# --- a warning -------------------------------------------------------------------------------------


def _warning_page(request: Request, session: Session, user: User, warning_id: int, *,
                  error: str | None = None, status_code: int = 200) -> HTMLResponse:
    locale = locale_of(request)
    warning = service.get_warning(session, warning_id=warning_id, locale=locale)
    found = response.response_of(session, warning_id=warning_id, viewer=user)
    history = response.history(session, warning_id=warning_id, viewer=user, locale=locale)
    timeline = sorted([*history.lifecycle, *history.response], key=lambda e: e.at)
    buckets = board.bucket_counts(session, found.tasks, viewer=user)
    return render(request, "warning/warning.html", {
        "warning": warning, "response": found, "timeline": timeline, "buckets": buckets, "error": error,
        "may_issue": has_permission(user, "warnings.issue") and bool(warning.allowed_actions),
        "places_url": PLACES_GEOJSON_URL, "tile_url": request.app.state.settings.tile_url,
        **_labels()}, status_code=status_code)


@router.get("/warnings/{warning_id}", response_class=HTMLResponse)
def warning_page(request: Request, session: SessionDep, user: Viewer, warning_id: WarningId) -> HTMLResponse:
    """A warning: level, area on a map, CAP messages, the response and the history."""
    return _warning_page(request, session, user, warning_id)


@router.get("/warnings/{warning_id}/messages/{message_id}.xml", response_class=Response)
def message_xml(session: SessionDep, user: Viewer, warning_id: WarningId,
                message_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """One CAP message of the warning as it went out (or came in)."""
    messages = repo.messages_of(session, [warning_id]).get(warning_id, [])
    found = next((m for m in messages if m.id == message_id), None)
    if found is None:
        raise NotFound(f"warning {warning_id} has no message {message_id}", field="message_id")
    return Response(found.xml.encode(), media_type="application/cap+xml; charset=utf-8")


def _act(request: Request, session: Session, user: User, warning_id: int, action: Any) -> Response:
    """Run a form's action; the warning's page again with the reason when it is refused."""
    try:
        action()
    except (CityopsError, ValidationError) as exc:
        message, status = form_refusal(session, exc, record_page=True)
        return _warning_page(request, session, user, warning_id, error=message, status_code=status)
    return RedirectResponse(f"/warnings/{warning_id}", status_code=303)


@router.post("/warnings/{warning_id}/issue", response_class=HTMLResponse, response_model=None)
def release(request: Request, session: SessionDep, user: Issuer, warning_id: WarningId) -> Response:
    """Issue a draft, or confirm a warning a station raised."""
    return _act(request, session, user, warning_id,
                lambda: service.release(session, warning_id=warning_id, actor=user))


@router.post("/warnings/{warning_id}/update", response_class=HTMLResponse, response_model=None)
def update(request: Request, session: SessionDep, user: Issuer, warning_id: WarningId,
           level: Annotated[str, Form(max_length=8)] = "",
           instruction: Annotated[str, Form(max_length=4000)] = "",
           note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Change the level or the instructions (a CAP Update)."""
    def run() -> None:
        data = WarningUpdate(level=level or None, instruction=instruction or None,
                             note=note or None)
        service.update(session, warning_id=warning_id, data=data, actor=user)

    return _act(request, session, user, warning_id, run)


@router.post("/warnings/{warning_id}/extend", response_class=HTMLResponse, response_model=None)
def extend(request: Request, session: SessionDep, user: Issuer, settings: SettingsDep, warning_id: WarningId,
           expires: Annotated[str, Form(max_length=40)] = "",
           note: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Keep the warning in force until a later time (a CAP Update)."""
    return _act(request, session, user, warning_id, lambda: service.extend(
        session, warning_id=warning_id, expires=_local_time(expires, settings, "expires"), note=note or None,
        actor=user))


@router.post("/warnings/{warning_id}/cancel", response_class=HTMLResponse, response_model=None)
def cancel(request: Request, session: SessionDep, user: Issuer, warning_id: WarningId,
           reason: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Lift the warning with the reason (a CAP Cancel); its open tasks are cancelled."""
    return _act(request, session, user, warning_id,
                lambda: service.cancel(session, warning_id=warning_id, reason=reason, actor=user))

