"""Device pages: the list with a map of status (/devices), a device with its latest values, charts
and token (/devices/{id}), the alarm console (/devices/alarms), the fire scenario board
(/devices/fire), and the dead letters of ingestion (/devices/rejections)."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cityops.cases.pages import STATE_LABELS
from cityops.core.auth.deps import CurrentUser
from cityops.core.auth.roles import has_permission
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError, Forbidden, ValidationFailed
from cityops.core.export import xlsx_response
from cityops.core.i18n import N_, gettext_for, locale_of
from cityops.core.longpoll import wakeups
from cityops.core.templating import NavItem, form_refusal, register_nav, render
from cityops.perception import profiles, rules, service
from cityops.perception.api import MAX_ID, SEVERITY_PATTERN
from cityops.perception.schemas import DeviceUpdate, RpcCreate, RulesWrite
from cityops.places import service as places_service

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
register_nav(NavItem("devices", N_("Devices"), "/devices", order=50, permission="devices.view",
                     description=N_("Sensors and cameras of the city: where they are, whether they report, "
                                    "and what they measured.")))
# Leaders have no device pages: the board is their way in (the fire brigade's is the device pages).
register_nav(NavItem("fire-board", N_("Fire board"), "/devices/fire", order=51, permission="dashboard.view",
                     description=N_("Fire alarms now, fires confirmed today, and the smoke detectors that "
                                    "raise false alarms.")))
STATUS_LABELS = {"online": N_("Online"), "offline": N_("Offline"), "inactive": N_("Never reported")}
REASON_LABELS = {"too_large": N_("Too large"), "malformed_json": N_("Not valid JSON"),
                 "bad_shape": N_("Not a ThingsBoard payload"), "bad_value": N_("Bad value"),
                 "ts_out_of_range": N_("Timestamp out of range"),
                 "unknown_token": N_("Unknown or revoked token"),
                 "forbidden": N_("Not this gateway's device"), "unknown_device": N_("Unknown device name"),
                 "too_many_devices": N_("Too many devices")}
ALARM_STATUS_LABELS = {"ACTIVE_UNACK": N_("Active, not acknowledged"),
                       "ACTIVE_ACK": N_("Active, acknowledged"),
                       "CLEARED_UNACK": N_("Cleared, not acknowledged"), "CLEARED_ACK": N_("Cleared")}
SEVERITY_LABELS = {"CRITICAL": N_("Critical"), "MAJOR": N_("Major"), "MINOR": N_("Minor"),
                   "WARNING": N_("Warning")}
EXPORT_HEADERS = ("ID", "Name", "Profile", "Status", "Division", "Department", "Longitude", "Latitude",
                  "Last activity")
PAGE = 50


def _check_view(user: CurrentUser) -> None:
    if not has_permission(user, "devices.view"):
        raise Forbidden("your role may not see devices (needs permission 'devices.view')")


@router.get("/devices", response_class=HTMLResponse, name="devices", response_model=None)
def devices(request: Request, session: SessionDep, user: CurrentUser, settings: SettingsDep,
            profile: Annotated[str | None, Query(max_length=40)] = None,
            status: Annotated[str | None, Query(max_length=10)] = None,
            q: Annotated[str | None, Query(max_length=60)] = None,
            offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
            format: Annotated[str, Query(pattern="^(html|xlsx)$")] = "html") -> Response:
    """Devices in scope with filters, a map coloured by status, and an Excel export of the list."""
    _check_view(user)
    filters = {"profile": profile or None, "status": status or None, "q": q or None}
    if format == "xlsx":
        page = service.list_devices(session, viewer=user, limit=service.MAX_EXPORT,
                                    profile=filters["profile"], status=filters["status"], q=filters["q"])
        rows = ([d.id, d.name, d.profile_name, d.status, d.division_code,
                 d.org_unit.name if d.org_unit else "", d.lon, d.lat, d.last_activity_at] for d in page.items)
        return xlsx_response("设备列表.xlsx", "devices", EXPORT_HEADERS, rows,
                             timezone=settings.display_timezone)
    page = service.list_devices(session, viewer=user, limit=PAGE, offset=offset, profile=filters["profile"],
                                status=filters["status"], q=filters["q"])
    points = service.map_points(session, viewer=user, profile=filters["profile"], status=filters["status"],
                                q=filters["q"])
    return render(request, "perception/devices.html", {
        "page": page, "points": points, "profiles": profiles.registry().profiles, "filters": filters,
        "status_labels": STATUS_LABELS, "offset": offset,
        "may_manage": has_permission(user, "devices.manage")})


ALARM_EXPORT_HEADERS = (N_("ID"), N_("Severity"), N_("Alarm"), N_("Device"), N_("Status"), N_("Since"),
                        N_("Cleared at"), N_("Acknowledged at"), N_("Value"), N_("Case"))
RATE_EXPORT_HEADERS = (N_("Device"), N_("Division"), N_("Department"), N_("Smoke alarms"),
                       N_("Confirmed by a fire"), N_("False alarms"), N_("Still active"),
                       N_("False-alarm rate"))
RATES_PAGE = 100


def _rule_names(request: Request, session: Session) -> dict[str, str]:
    """Rule code -> its name in the request's language (rules carry their own zh/en names)."""
    chinese = locale_of(request) == "zh"
    return {r.code: r.name_zh if chinese else r.name_en for r in rules.in_force(session).all()}


@router.get("/devices/alarms", response_class=HTMLResponse, response_model=None)
def alarms(request: Request, session: SessionDep, user: CurrentUser, settings: SettingsDep,
           active: Annotated[bool, Query()] = True,
           severity: Annotated[str | None, Query(pattern=SEVERITY_PATTERN)] = None,
           alarm_type: Annotated[str | None, Query(alias="type", max_length=40)] = None,
           device: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
           offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
           format: Annotated[str, Query(pattern="^(html|xlsx)$")] = "html") -> Response:
    """The alarm console: alarms of the devices in scope, newest first, by severity, type and device;
    to acknowledge, clear by hand, follow to their cases, and export to Excel."""
    _check_view(user)
    severity, alarm_type = severity or None, alarm_type or None
    filters = {"active": active, "severity": severity, "type": alarm_type, "device": device}
    query = {"active": "true" if active else "false", "severity": severity or "", "type": alarm_type or "",
             "device": device or ""}
    names = _rule_names(request, session)
    if format == "xlsx":
        found = service.list_alarms(session, viewer=user, active_only=active, severity=severity,
                                    alarm_type=alarm_type, device_id=device, limit=service.MAX_EXPORT)
        _ = gettext_for(locale_of(request)).gettext
        rows = ([a.id, _(SEVERITY_LABELS.get(a.severity, a.severity)), names.get(a.rule_code, a.type),
                 a.device_name, _(ALARM_STATUS_LABELS.get(a.status, a.status)), a.start_at, a.clear_at,
                 a.ack_at, a.value, a.case_id] for a in found.items)
        return xlsx_response(f"{_('Alarms')}.xlsx", _("Alarms"), [_(h) for h in ALARM_EXPORT_HEADERS], rows,
                             timezone=settings.display_timezone)
    page = service.list_alarms(session, viewer=user, active_only=active, severity=severity,
                               alarm_type=alarm_type, device_id=device, limit=PAGE, offset=offset)
    return render(request, "perception/alarms.html", {
        "page": page, "active": active, "offset": offset, "filters": filters, "query": urlencode(query),
        "status_labels": ALARM_STATUS_LABELS, "severity_labels": SEVERITY_LABELS, "rule_names": names,
        "may_manage": has_permission(user, "devices.manage")})


@router.post("/devices/alarms/{alarm_id}/ack", response_class=HTMLResponse, response_model=None)
def acknowledge(request: Request, session: SessionDep, user: CurrentUser,
                alarm_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    service.acknowledge(session, actor=user, alarm_id=alarm_id)
    return RedirectResponse("/devices/alarms", status_code=303)


@router.post("/devices/alarms/{alarm_id}/clear", response_class=HTMLResponse, response_model=None)
def clear(request: Request, session: SessionDep, user: CurrentUser,
          alarm_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """Clear an alarm by hand (devices.manage); its rules start over on the device."""
    service.clear_by_hand(session, actor=user, alarm_id=alarm_id)
    return RedirectResponse("/devices/alarms", status_code=303)


@router.get("/devices/fire", response_class=HTMLResponse, response_model=None)
def fire_board(request: Request, session: SessionDep, user: CurrentUser, settings: SettingsDep,
               offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
               format: Annotated[str, Query(pattern="^(html|xlsx)$")] = "html") -> Response:
    """The fire scenario board: active fire alarms on a map with their cases, today's counts, and the
    detectors' false-alarm rates (the rates export to Excel)."""
    if format == "xlsx":
        rates = service.false_alarm_rates(session, viewer=user, limit=service.MAX_EXPORT)
        _ = gettext_for(locale_of(request)).gettext
        rows = ([r.device_name, r.division_code, r.org_unit_name or "", r.alarms, r.confirmed, r.false_alarms,
                 r.active, round(r.rate, 4)] for r in rates.items)
        return xlsx_response(f"{_('False-alarm rates')}.xlsx", _("False-alarm rates"),
                             [_(h) for h in RATE_EXPORT_HEADERS], rows, timezone=settings.display_timezone)
    board = service.fire_board(session, viewer=user, timezone=settings.display_timezone,
                               rates_offset=offset, rates_limit=RATES_PAGE)
    points = [{"id": a.id, "device": a.device_name, "lon": a.lon, "lat": a.lat, "severity": a.severity,
               "fire": a.confirmed_fire} for a in board.active]
    return render(request, "perception/fire.html", {
        "board": board, "points": points, "offset": offset, "rule_names": _rule_names(request, session),
        "status_labels": ALARM_STATUS_LABELS, "severity_labels": SEVERITY_LABELS,
        "state_labels": STATE_LABELS, "may_view_devices": has_permission(user, "devices.view")})


KIND_LABELS = {"threshold": N_("Threshold"), "rate_of_change": N_("Rate of change"), "no_data": N_("No data"),
               "geofence": N_("Geofence"), "confirm": N_("Confirmation across devices")}


def _rules_page(request: Request, session: Session, user: CurrentUser, *, version: int | None = None,
                text: str | None = None, comment: str = "", error: str | None = None,
                status_code: int = 200) -> HTMLResponse:
    found = service.rules_read(session, version=version)
    return render(request, "perception/rules.html", {
        "found": found, "text": found.text if text is None else text, "comment": comment, "error": error,
        "kind_labels": KIND_LABELS, "severity_labels": SEVERITY_LABELS,
        "may_manage": has_permission(user, "devices.manage")}, status_code=status_code)


@router.get("/devices/rules", response_class=HTMLResponse)
def rules_editor(request: Request, session: SessionDep, user: CurrentUser,
                 version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> HTMLResponse:
    """The alarm rules in force, the editor of their YAML (validated with the line and field of any
    mistake) and the versions saved, each of which can be loaded and saved again."""
    _check_view(user)
    return _rules_page(request, session, user, version=version)


@router.post("/devices/rules", response_class=HTMLResponse, response_model=None)
def save_rules(request: Request, session: SessionDep, user: CurrentUser,
               text: Annotated[str, Form(max_length=200_000)],
               comment: Annotated[str, Form(max_length=200)] = "") -> Response:
    try:
        service.save_rules(session, actor=user, data=RulesWrite(text=text, comment=comment))
    except (CityopsError, ValidationError) as exc:
        message, status = form_refusal(session, exc, record_page=False)
        return _rules_page(request, session, user, text=text, comment=comment, error=message,
                           status_code=status)
    return RedirectResponse("/devices/rules", status_code=303)


@router.get("/devices/rejections", response_class=HTMLResponse)
def rejections(request: Request, session: SessionDep, user: CurrentUser,
               reason: Annotated[str | None, Query(max_length=24)] = None) -> HTMLResponse:
    """What ingestion refused: counts by reason and the newest messages with an excerpt."""
    found = service.rejections(session, viewer=user, reason=reason or None, limit=200)
    return render(request, "perception/rejections.html", {"found": found, "reason": reason,
                                                          "reason_labels": REASON_LABELS})


def _device_page(request: Request, session: SessionDep, user: CurrentUser, device_id: int, *,
                 error: str | None = None, status_code: int = 200,
                 rpc_form: dict[str, str] | None = None,
                 attribute_form: dict[str, str] | None = None) -> HTMLResponse:
    device = service.get_device(session, viewer=user, device_id=device_id)
    profile = profiles.registry().get(device.profile)
    return render(request, "perception/device.html", {
        "device": device, "profile": profile, "status_labels": STATUS_LABELS, "error": error,
        "chart_keys": [k.key for k in profile.keys if k.type != "string" and k.key in device.latest],
        "may_manage": has_permission(user, "devices.manage"),
        **_rpc_context(session, user, device_id, rpc_form),
        **_attributes_context(session, user, device_id, attribute_form)}, status_code=status_code)


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def device(request: Request, session: SessionDep, user: CurrentUser,
           device_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> HTMLResponse:
    _check_view(user)
    return _device_page(request, session, user, device_id)


@router.post("/devices/{device_id}/token", response_class=HTMLResponse, response_model=None)
def change_token(request: Request, session: SessionDep, user: CurrentUser,
                 device_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                 action: Annotated[str, Form(pattern="^(rotate|revoke)$")] = "rotate") -> Response:
    """Rotate or revoke the access token from the device page."""
    try:
        change = service.revoke_token if action == "revoke" else service.rotate_token
        change(session, actor=user, device_id=device_id)
    except CityopsError as exc:
        message, status = form_refusal(session, exc, record_page=True)
        return _device_page(request, session, user, device_id, error=message, status_code=status)
    return RedirectResponse(f"/devices/{device_id}", status_code=303)


# --- commands to the device (server-side RPC) ---------------------------------------------------

RPC_STATUS_LABELS = {"QUEUED": N_("Queued"), "SENT": N_("Sent"), "DELIVERED": N_("Delivered to the broker"),
                     "SUCCESSFUL": N_("Successful"), "TIMEOUT": N_("No answer in time"),
                     "EXPIRED": N_("Expired unsent"), "FAILED": N_("Failed")}
RPC_ROWS = 20


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _rpc_context(session: SessionDep, user: CurrentUser, device_id: int,
                 form: dict[str, str] | None) -> dict[str, object]:
    """The device's last commands, and the command form (as sent, when it was refused)."""
    return {"rpcs": service.list_rpcs(session, viewer=user, device_id=device_id, limit=RPC_ROWS).items,
            "rpc_status_labels": RPC_STATUS_LABELS, "json_text": _json_text,
            "rpc_form": form or {"method": "", "params": "{}", "timeout_s": "10", "oneway": ""}}


@router.post("/devices/{device_id}/rpc", response_class=HTMLResponse, response_model=None)
def send_rpc(request: Request, session: SessionDep, user: CurrentUser,
             device_id: Annotated[int, Path(ge=1, le=MAX_ID)],
             method: Annotated[str, Form(max_length=200)] = "",
             params: Annotated[str, Form(max_length=200_000)] = "",
             timeout_s: Annotated[str, Form(max_length=10)] = "10",
             oneway: Annotated[str, Form(max_length=10)] = "") -> Response:
    """Send a command from the device page (devices.manage); its outcome shows in the table below."""
    form = {"method": method, "params": params, "timeout_s": timeout_s, "oneway": oneway}
    try:
        try:
            values = json.loads(params) if params.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"params: not valid JSON ({exc.msg}, line {exc.lineno})",
                                   field="params") from None
        try:
            timeout_ms = int(float(timeout_s) * 1000)
        except ValueError:
            raise ValidationFailed("timeout: a number of seconds", field="timeout_s") from None
        data = RpcCreate(method=method, params=values, timeout_ms=timeout_ms, oneway=bool(oneway))
        service.create_rpc(session, actor=user, device_id=device_id, data=data)
    except (CityopsError, ValidationError) as exc:
        message, status = form_refusal(session, exc, record_page=True)
        return _device_page(request, session, user, device_id, error=message, status_code=status,
                            rpc_form=form)
    session.commit()  # before waking a device's HTTP poll in this process, so that it finds the command
    wakeups(request.app.state).notify(f"device:{device_id}")
    return RedirectResponse(f"/devices/{device_id}#rpc", status_code=303)


# --- attributes (client, shared, server) ---------------------------------------------------------

SCOPE_LABELS = {"client": N_("Client attributes"), "shared": N_("Shared attributes"),
                "server": N_("Server attributes")}
SCOPE_HELP = {"client": N_("Sent by the device."),
              "shared": N_("Set here; the device gets them over MQTT, or reads or polls them over HTTP."),
              "server": N_("Kept by the platform; the device does not see them.")}
VALUE_TYPES = {"string": N_("Text value"), "number": N_("Numeric value"), "boolean": N_("true / false"),
               "json": N_("JSON value")}


def _attributes_context(session: SessionDep, user: CurrentUser, device_id: int,
                        form: dict[str, str] | None) -> dict[str, object]:
    return {"attributes": service.device_attributes(session, viewer=user, device_id=device_id),
            "scope_labels": SCOPE_LABELS, "scope_help": SCOPE_HELP, "value_types": VALUE_TYPES,
            "attribute_form": form or {"key": "", "value": "", "value_type": "string"}}


def _attribute_value(text: str, value_type: str) -> object:
    """The value typed in the form, as the chosen type."""
    if value_type == "string":
        return text
    if value_type == "boolean":
        word = text.strip().lower()
        if word not in ("true", "false"):
            raise ValidationFailed("value: true or false", field="value")
        return word == "true"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        what = "a number" if value_type == "number" else f"not valid JSON ({exc.msg}, line {exc.lineno})"
        raise ValidationFailed(f"value: {what}", field="value") from None
    if value_type == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValidationFailed("value: a number", field="value")
    return value


@router.post("/devices/{device_id}/attributes/shared", response_class=HTMLResponse, response_model=None)
def set_shared_attribute(request: Request, session: SessionDep, user: CurrentUser,
                         device_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                         key: Annotated[str, Form(max_length=200)] = "",
                         value: Annotated[str, Form(max_length=65_536)] = "",
                         value_type: Annotated[str, Form(max_length=10)] = "string") -> Response:
    """Set one shared attribute from the device page (devices.manage): stored, pushed to the device
    over MQTT, handed to its HTTP long poll."""
    form = {"key": key, "value": value, "value_type": value_type}
    try:
        if value_type not in VALUE_TYPES:
            raise ValidationFailed(f"type: one of {', '.join(VALUE_TYPES)}", field="value_type")
        service.set_shared_attributes(session, actor=user, device_id=device_id,
                                      values={key.strip(): _attribute_value(value, value_type)})
    except (CityopsError, ValidationError) as exc:
        message, status = form_refusal(session, exc, record_page=True)
        return _device_page(request, session, user, device_id, error=message, status_code=status,
                            attribute_form=form)
    session.commit()  # before waking a device's HTTP poll in this process, so that it finds the update
    wakeups(request.app.state).notify(f"attributes:{device_id}")
    return RedirectResponse(f"/devices/{device_id}#attributes", status_code=303)


# --- position (a provisioned device's, until a manager confirms it) ------------------------------


@router.post("/devices/{device_id}/position", response_class=HTMLResponse, response_model=None)
def set_position(request: Request, session: SessionDep, user: CurrentUser,
                 device_id: Annotated[int, Path(ge=1, le=MAX_ID)],
                 lon: Annotated[str, Form(max_length=40)] = "",
                 lat: Annotated[str, Form(max_length=40)] = "") -> Response:
    """Give the device's position from its page (devices.manage): placed in its grid and division as a
    new device is, and confirmed."""
    try:
        try:
            point = {"lon": float(lon), "lat": float(lat)}
        except ValueError:
            raise ValidationFailed("lon and lat: numbers (WGS84 degrees)", field="lon") from None
        index = places_service.cache_for(request.app.state).index(session)
        service.update_device(session, actor=user, device_id=device_id, data=DeviceUpdate(**point),
                              index=index, request=request)
    except (CityopsError, ValidationError) as exc:
        message, status = form_refusal(session, exc, record_page=True)
        return _device_page(request, session, user, device_id, error=message, status_code=status)
    return RedirectResponse(f"/devices/{device_id}", status_code=303)
