"""JSON routes: the ThingsBoard device API under /api/v1/{token} and device management under
/api/perception."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.db import Database
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError
from cityops.core.longpoll import long_poll, wakeups
from cityops.perception import ingest, service
from cityops.perception.schemas import (
    AlarmPage,
    AlarmRead,
    AttributesRead,
    DeviceAttributesRead,
    DeviceCreate,
    DevicePage,
    DeviceRead,
    DeviceUpdate,
    ProvisioningRead,
    ProvisioningWrite,
    ProvisionRequest,
    RejectionsRead,
    RpcCreate,
    RpcPage,
    RpcRead,
    RulesRead,
    RulesWrite,
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


@router.get("/rules", response_model=RulesRead)
def get_rules(session: SessionDep, user: Viewer,
              version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> RulesRead:
    """The alarm rules in force (or a saved version), as YAML and as parsed rules, with the versions."""
    return service.rules_read(session, version=version)


@router.put("/rules", response_model=RulesRead, responses={422: {"description": "A rule is wrong; "
                                                                 "the message names the line and field"}})
def put_rules(data: RulesWrite, session: SessionDep, user: Manager) -> RulesRead:
    """Save a new version of the whole rules document; it is in force within a second everywhere."""
    return service.save_rules(session, actor=user, data=data)


# --- server-side RPC and shared attributes ------------------------------------------------------

RpcId = Annotated[int, Path(ge=1, le=MAX_ID)]
MAX_POLL_MS = 300_000  # ThingsBoard's longest device long poll
DEVICE_POLL_S = 0.5  # how often a waiting device's poll asks the database (commands from elsewhere)
WAIT_POLL_S = 0.25  # how often a caller waiting for an answer asks (answers come from the MQTT worker)
RPC_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such device in your scope"},
    422: {"description": "Bad method name, params or timeout; the field is named"},
    429: {"description": "Too many commands waiting for the device"}}


@devices_api.get("/{access_token}/rpc", responses={
    200: {"description": 'The next command: {"id": 1, "method": "...", "params": {...}}'},
    401: DEVICE_ERRORS[401], 408: {"description": "No command came within the timeout; ask again"}})
async def poll_rpc(access_token: DeviceToken, request: Request,
                   timeout: Annotated[int, Query(ge=0, le=MAX_POLL_MS, description="ms to wait")] = 60_000,
                   ) -> Response:
    """ThingsBoard's RPC long poll: the device's next command, waiting for one up to `timeout`.
    A two-way command is then answered with POST /api/v1/{token}/rpc/{id}."""
    db: Database = request.app.state.db

    def device_id() -> int:
        with db.sessions() as session:
            return service.device_by_token(session, token=access_token)

    device = await run_in_threadpool(device_id)

    def take() -> dict[str, Any] | None:
        with db.session() as session:
            return service.rpc_for_http(session, device_id=device)

    command = await long_poll(request, f"device:{device}", take, wait_s=timeout / 1000, every_s=DEVICE_POLL_S)
    return JSONResponse(command) if command is not None else Response(status_code=408)


@devices_api.post("/{access_token}/rpc/{rpc_id}", responses={
    401: DEVICE_ERRORS[401], 404: {"description": "Not a command of this device"},
    409: {"description": "One-way, or ended already (answered, timed out)"}})
async def answer_rpc(access_token: DeviceToken, rpc_id: RpcId, request: Request) -> Response:
    """The device's answer to a two-way command (any JSON; other text is kept as text)."""
    body = await request.body()
    db: Database = request.app.state.db

    def answer() -> CityopsError | None:
        with db.session() as session:
            device = service.device_by_token(session, token=access_token)
            return service.answer_rpc(session, device_id=device, rpc_id=rpc_id, body=body)

    refused = await run_in_threadpool(answer)
    if refused is not None:
        raise refused
    wakeups(request.app.state).notify(f"rpc:{rpc_id}")
    return Response(status_code=200)


@router.post("/devices/{device_id}/rpc", response_model=RpcRead, status_code=201, responses=RPC_ERRORS)
async def create_rpc(device_id: DeviceId, body: RpcCreate, request: Request, user: Manager,
                     wait: Annotated[bool, Query(description="Answer once the command has ended (answered, "
                                                             "sent if one-way, or timed out)")] = False,
                     ) -> RpcRead:
    """Send a command to the device (ThingsBoard's server-side RPC): over MQTT when it is connected
    there, or to its HTTP long poll. Two-way commands end with the device's answer (SUCCESSFUL),
    one-way ones once sent; either ends TIMEOUT (EXPIRED if never sent) after `timeout_ms`."""
    db: Database = request.app.state.db

    def create() -> RpcRead:
        with db.session() as session:
            return service.create_rpc(session, actor=user, device_id=device_id, data=body)

    rpc = await run_in_threadpool(create)
    wakeups(request.app.state).notify(f"device:{device_id}")  # a device polling here takes it at once
    if not wait:
        return rpc
    # Until a moment past the deadline, when the last look stores and returns its end.
    ended = await long_poll(request, f"rpc:{rpc.id}", lambda: service.rpc_outcome(db, rpc_id=rpc.id),
                            wait_s=rpc.timeout_ms / 1000 + WAIT_POLL_S, every_s=WAIT_POLL_S)
    return ended or rpc


@router.get("/devices/{device_id}/rpc", response_model=RpcPage)
def list_rpcs(device_id: DeviceId, session: SessionDep, user: Viewer,
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0) -> RpcPage:
    """The device's commands, newest first, with their status and answers."""
    return service.list_rpcs(session, viewer=user, device_id=device_id, limit=limit, offset=offset)


@router.get("/rpc/{rpc_id}", response_model=RpcRead, responses={404: {"description": "Not in your scope"}})
def get_rpc(rpc_id: RpcId, session: SessionDep, user: Viewer) -> RpcRead:
    return service.get_rpc(session, viewer=user, rpc_id=rpc_id)


@router.post("/devices/{device_id}/attributes/shared", response_model=AttributesRead, responses={
    422: {"description": "A key or value the device API would refuse; the key is named"}})
def set_shared_attributes(device_id: DeviceId, values: Annotated[dict[str, Any], Body()], session: SessionDep,
                          user: Manager, request: Request) -> AttributesRead:
    """Set shared attributes `{"key": value}`: stored, and pushed to the device over MQTT on
    `v1/devices/me/attributes` if it is connected (otherwise it reads them when it asks), or handed
    to its HTTP long poll (GET /api/v1/{token}/attributes/updates). Answers the device's client and
    shared attributes."""
    answer = service.set_shared_attributes(session, actor=user, device_id=device_id, values=values)
    session.commit()  # before waking a device's HTTP poll in this process, so that it finds them
    wakeups(request.app.state).notify(f"attributes:{device_id}")
    return answer


# --- HTTP device API: shared attribute updates, client-side RPC, attributes by scope ------------

UPDATES_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": 'The shared attributes set during the wait: {"key": value}'},
    401: DEVICE_ERRORS[401], 408: {"description": "None was set within the timeout; ask again"},
    422: {"description": "Bad timeout (0 to 300000 ms)"}}
PollTimeout = Annotated[int, Query(ge=0, le=MAX_POLL_MS, description="ms to wait")]
CLIENT_RPC_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": 'getCurrentTime: {"currentTime": ms}; getSessionLimits: {"maxPayloadSize": ...}'},
    400: {"description": 'Not {"method": "...", "params": ...}; the reason is in detail.reason'},
    401: DEVICE_ERRORS[401], 404: {"description": "A method cityops does not answer; the message lists those "
                                                  "it does"},
    413: {"description": f"Request larger than {service.MAX_CLIENT_RPC_BYTES} bytes"}}


async def _limited_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) as soon as it passes `limit` bytes rather than read whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ingest.IngestRejected("too_large", f"request of {int(declared)} bytes; at most {limit}",
                                    status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ingest.IngestRejected("too_large", f"request of more than {limit} bytes; at most {limit}",
                                        status=413)
        chunks.append(chunk)
    return b"".join(chunks)


@devices_api.get("/{access_token}/attributes/updates", responses=UPDATES_ERRORS)
async def poll_attribute_updates(access_token: DeviceToken, request: Request, timeout: PollTimeout = 60_000,
                                 ) -> Response:
    """ThingsBoard's long poll for shared attribute updates: the shared attributes set while the
    request waits (up to `timeout`), as `{"key": value}`; 408 if none was. As in ThingsBoard, what was
    set before the request came is not sent: a device reads its attributes with GET
    /api/v1/{token}/attributes (on start) and then polls here again and again."""
    db: Database = request.app.state.db

    def start() -> tuple[int, dict[str, datetime]]:
        with db.sessions() as session:
            device = service.device_by_token(session, token=access_token)
            return device, service.shared_attribute_marks(session, device_id=device)

    device, marks = await run_in_threadpool(start)

    def look() -> dict[str, Any] | None:
        with db.sessions() as session:
            return service.shared_attribute_updates(session, device_id=device, since=marks)

    # Set in another process, an update is found at the next look (every DEVICE_POLL_S); in this one,
    # its notify wakes the poll at once.
    updates = await long_poll(request, f"attributes:{device}", look, wait_s=timeout / 1000,
                              every_s=DEVICE_POLL_S)
    return JSONResponse(updates) if updates is not None else Response(status_code=408)


@devices_api.post("/{access_token}/rpc", responses=CLIENT_RPC_ERRORS)
async def client_rpc(access_token: DeviceToken, request: Request) -> Response:
    """ThingsBoard's client-side RPC: the device asks `{"method": "...", "params": {...}}` and gets the
    answer at once. cityops answers `getCurrentTime` (`{"currentTime": ms}`) and `getSessionLimits`
    (what ThingsBoard's SDK asks on connecting); another method is answered 404, naming these."""
    body = await _limited_body(request, service.MAX_CLIENT_RPC_BYTES)
    db: Database = request.app.state.db

    def known() -> int:
        with db.sessions() as session:
            return service.device_by_token(session, token=access_token)

    await run_in_threadpool(known)
    method, params = service.parse_client_rpc(body)
    return JSONResponse(service.client_rpc(method, params))


@router.get("/devices/{device_id}/attributes", response_model=DeviceAttributesRead)
def device_attributes(device_id: DeviceId, session: SessionDep, user: Viewer) -> DeviceAttributesRead:
    """The device's client, shared and server attributes with when each was set."""
    return service.device_attributes(session, viewer=user, device_id=device_id)


# --- provisioning -------------------------------------------------------------------------------

ProfileCode = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="A device profile's code")]
PROVISION_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": 'As ThingsBoard answers, the outcome in "status": SUCCESS with {"credentialsType": '
                         '"ACCESS_TOKEN", "credentialsValue": token}; NOT_FOUND (a wrong key or secret, or '
                         'provisioning disabled); FAILURE (the name or token is taken, the limit is reached; '
                         'the reason in "reason")'},
    400: {"description": "Not ThingsBoard's request: not JSON, or a field missing or of the wrong type "
                         "(named in field)"},
    413: {"description": f"Request larger than {service.MAX_PROVISION_BYTES} bytes"}}


@devices_api.post("/provision", responses=PROVISION_ANSWERS, openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": ProvisionRequest.model_json_schema()}}}})
async def provision(request: Request) -> Response:
    """ThingsBoard's device provisioning: a device presenting its profile's provision key and secret
    registers itself and gets its access token (see `cityops devices provisioning`)."""
    body = await _limited_body(request, service.MAX_PROVISION_BYTES)
    data = service.parse_provision_request(body)
    db: Database = request.app.state.db

    def run() -> dict[str, Any]:
        with db.session() as session:
            index = places_service.cache_for(request.app.state).index(session)
            return service.provision(session, data=data, index=index, settings=request.app.state.settings,
                                     request=request)

    return JSONResponse(await run_in_threadpool(run))


@router.get("/provisioning", response_model=list[ProvisioningRead])
def list_provisioning(session: SessionDep, user: Manager) -> list[ProvisioningRead]:
    """Provisioning of every profile it was enabled for, with the keys; never a secret."""
    return service.list_provisioning(session, viewer=user)


@router.get("/provisioning/{profile}", response_model=ProvisioningRead,
            responses={404: {"description": "Never enabled for the profile, or outside your scope"}})
def get_provisioning(profile: ProfileCode, session: SessionDep, user: Manager) -> ProvisioningRead:
    """A profile's provisioning with its key and counts; never its secret."""
    return service.get_provisioning(session, viewer=user, profile=profile)


@router.put("/provisioning/{profile}", response_model=ProvisioningRead, responses={
    422: {"description": "An unknown profile, division or department; the field is named"}})
def put_provisioning(profile: ProfileCode, body: ProvisioningWrite, request: Request, session: SessionDep,
                     user: Manager) -> ProvisioningRead:
    """Enable, change or disable a profile's provisioning; fields left out keep their value. The answer
    carries the secret only when it is new (the first time, or with rotate_secret): keep it then."""
    index = places_service.cache_for(request.app.state).index(session)
    return service.configure_provisioning(session, actor=user, profile=profile, data=body, index=index,
                                          settings=request.app.state.settings, request=request)


@router.patch("/devices/{device_id}", response_model=DeviceRead, responses={
    409: {"description": "The name is taken"},
    422: {"description": "A point outside the city; the field is named"}})
def update_device(device_id: DeviceId, body: DeviceUpdate, request: Request, session: SessionDep,
                  user: Manager) -> DeviceRead:
    """Rename a device or give its position (lon and lat), placed as a new device is; a provisioned
    device's position is confirmed by it."""
    index = places_service.cache_for(request.app.state).index(session)
    service.update_device(session, actor=user, device_id=device_id, data=body, index=index, request=request)
    return service.get_device(session, viewer=user, device_id=device_id)
