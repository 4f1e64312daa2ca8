"""JSON routes: the ThingsBoard device API under /api/v1/{token} and device management under
/api/perception."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.perception import ingest, service
from cityops.perception.schemas import (
    AlarmPage,
    AlarmRead,
    AttributesRead,
    DeviceCreate,
    DevicePage,
    DeviceRead,
    RejectionsRead,
    SeriesRead,
)
from cityops.places import service as places_service

MAX_ID = 2**31 - 1
DeviceToken = Annotated[str, Path(min_length=1, max_length=64, description="The device's access token")]
DeviceId = Annotated[int, Path(ge=1, le=MAX_ID)]
Viewer = Annotated[User, Depends(require_permission("devices.view"))]
Manager = Annotated[User, Depends(require_permission("devices.manage"))]
STATUS_HELP = "online, offline or inactive"
DEVICE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Payload refused; the reason is in detail.reason (kept in the dead-letter list)"},
    401: {"description": "Unknown or revoked access token"},
    413: {"description": "Payload too large"}}

devices_api = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/v1", tags=["device API (ThingsBoard)"])
router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/perception", tags=["perception"])


async def _upload(request: Request, token: str, *, attributes: bool) -> Response:
    body = await request.body()
    settings = request.app.state.settings
    now_ms = int(time.time() * 1000)
    try:
        upload = (service.Upload(token, "http", attributes=ingest.parse_attributes(body)) if attributes else
                  service.Upload(token, "http", points=ingest.parse_telemetry(
                      body, now_ms=now_ms, keep_ms=settings.telemetry_raw_days * 86_400_000)))
    except ingest.IngestRejected as exc:
        upload = service.Upload(token, "http", rejected=exc, excerpt=body[:500].decode("utf-8", "replace"))
    await service.ingest_queue(request.app.state).submit(upload)
    return Response(status_code=200)


@devices_api.post("/{access_token}/telemetry", responses=DEVICE_ERRORS)
async def post_telemetry(access_token: DeviceToken, request: Request) -> Response:
    """Telemetry as ThingsBoard devices send it: `{"key": value}`, `{"ts": ms, "values": {...}}` or a
    list of those."""
    return await _upload(request, access_token, attributes=False)


@devices_api.post("/{access_token}/attributes", responses=DEVICE_ERRORS)
async def post_attributes(access_token: DeviceToken, request: Request) -> Response:
    """Client attributes `{"key": value}`."""
    return await _upload(request, access_token, attributes=True)


@devices_api.get("/{access_token}/attributes", response_model=AttributesRead, responses=DEVICE_ERRORS)
def get_attributes(access_token: DeviceToken, session: SessionDep,
                   clientKeys: Annotated[str, Query(max_length=2000)] = "",
                   sharedKeys: Annotated[str, Query(max_length=2000)] = "",
                   ) -> AttributesRead:
    """The device's client and shared attributes (the named keys, or all)."""
    return service.attributes_for(session, token=access_token,
                                  client_keys=[k for k in clientKeys.split(",") if k],
                                  shared_keys=[k for k in sharedKeys.split(",") if k])


@router.get("/devices", response_model=DevicePage)
def list_devices(session: SessionDep, user: Viewer,
                 profile: Annotated[str | None, Query(max_length=40)] = None,
                 status: Annotated[str | None, Query(max_length=10, description=STATUS_HELP)] = None,
                 q: Annotated[str | None, Query(max_length=60, description="Part of the name")] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0) -> DevicePage:
    """Devices in your scope (owned by your unit or placed in your divisions)."""
    return service.list_devices(session, viewer=user, profile=profile or None, status=status or None, q=q,
                                limit=limit, offset=offset)


@router.post("/devices", response_model=DeviceRead, status_code=201)
def create_device(body: DeviceCreate, request: Request, session: SessionDep, user: Manager) -> DeviceRead:
    """Register a device; the answer carries its access token."""
    index = places_service.cache_for(request.app.state).index(session)
    device = service.create_device(session, data=body, index=index, actor=user)
    return service.get_device(session, viewer=user, device_id=device.id)


@router.get("/devices/{device_id}", response_model=DeviceRead)
def get_device(device_id: DeviceId, session: SessionDep, user: Viewer) -> DeviceRead:
    return service.get_device(session, viewer=user, device_id=device_id)


@router.get("/devices/{device_id}/series", response_model=SeriesRead)
def series(device_id: DeviceId, session: SessionDep, user: Viewer,
           # Required, but checked after the scope: a device outside it answers 404 whatever is asked.
           key: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
           start: Annotated[datetime | None, Query()] = None, end: Annotated[datetime | None, Query()] = None,
           limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
           every: Annotated[str, Query(pattern="^(raw|1m|1h)$",
                                       description="raw points, or the average per minute or hour")] = "raw",
           ) -> SeriesRead:
    """The points of one key (default the last 24 hours), oldest first."""
    return service.series(session, viewer=user, device_id=device_id, key=key, start=start, end=end,
                          limit=limit, every=every)


@router.post("/devices/{device_id}/token", response_model=DeviceRead)
def rotate_token(device_id: DeviceId, session: SessionDep, user: Manager) -> DeviceRead:
    """A new access token; the old one is refused from now on."""
    service.rotate_token(session, actor=user, device_id=device_id)
    return service.get_device(session, viewer=user, device_id=device_id)


@router.delete("/devices/{device_id}/token", response_model=DeviceRead)
def revoke_token(device_id: DeviceId, session: SessionDep, user: Manager) -> DeviceRead:
    service.revoke_token(session, actor=user, device_id=device_id)
    return service.get_device(session, viewer=user, device_id=device_id)


@router.get("/rejections", response_model=RejectionsRead)
def rejections(session: SessionDep, user: Manager,
               reason: Annotated[str | None, Query(max_length=24)] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> RejectionsRead:
    """Messages that were not stored: counts by reason and the newest ones."""
    return service.rejections(session, viewer=user, reason=reason or None, limit=limit)




AlarmId = Annotated[int, Path(ge=1, le=MAX_ID)]
SEVERITY_PATTERN = "^(CRITICAL|MAJOR|MINOR|WARNING)?$"


@router.get("/alarms", response_model=AlarmPage)
def alarms(session: SessionDep, user: Viewer,
           active: Annotated[bool, Query(description="Only alarms not cleared")] = True,
           severity: Annotated[str | None, Query(pattern=SEVERITY_PATTERN)] = None,
           alarm_type: Annotated[str | None, Query(alias="type", max_length=40)] = None,
           device: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
           limit: Annotated[int, Query(ge=1, le=500)] = 100,
           offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0) -> AlarmPage:
    """Alarms of the devices in your scope, newest first; by severity, type and device."""
    return service.list_alarms(session, viewer=user, active_only=active, severity=severity or None,
                               alarm_type=alarm_type or None, device_id=device, limit=limit, offset=offset)


@router.post("/alarms/{alarm_id}/ack", response_model=AlarmRead)
def acknowledge(alarm_id: AlarmId, session: SessionDep, user: Viewer) -> AlarmRead:
    return service.acknowledge(session, actor=user, alarm_id=alarm_id)


@router.post("/alarms/{alarm_id}/clear", response_model=AlarmRead)
def clear(alarm_id: AlarmId, session: SessionDep, user: Manager) -> AlarmRead:
    """Clear an active alarm by hand (ACTIVE_UNACK -> CLEARED_UNACK, ACTIVE_ACK -> CLEARED_ACK); its
    rules start over on the device, so the next breach raises a new alarm."""
    return service.clear_by_hand(session, actor=user, alarm_id=alarm_id)
