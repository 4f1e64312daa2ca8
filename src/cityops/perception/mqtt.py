"""Devices over MQTT, ThingsBoard's device API through Mosquitto.

Devices connect with their access token as the MQTT user name and publish on ThingsBoard's topics
(`v1/devices/me/telemetry`, ...). cityops' Mosquitto plugin (perception/mosquitto/) checks the token
against the credentials file written here, keeps each device to its own topics, and rewrites `me` to
the device's id and the broker's receipt time (`v1/devices/<id>/<ms>/telemetry`), so the platform
learns who sent each message without trusting the message. Answers go back through the plugin's
downlink (`down/<id>/<device topic>`), which reaches that device's connection only, and so do the
platform's commands: the worker polls for queued server-side RPCs and shared attribute pushes, sends
them on ThingsBoard's topics (`v1/devices/me/rpc/request/<id>`, `v1/devices/me/attributes`) and stores
the device's answer (`v1/devices/me/rpc/response/<id>`) with the batch it came in.

A gateway (a device of a gateway profile) speaks for the devices behind it on ThingsBoard's gateway
topics (`v1/gateway/connect`, `disconnect`, `telemetry`, `attributes`, `attributes/request`, `rpc`),
which the plugin rewrites to `v1/gateway/<id>/<ms>/<rest>` as it does a device's. The devices a
message names are looked up (and created on connecting) in a short transaction of their own before
the batch is stored (service.gateway_children has the rules); then each device's part is stored as
its own message would be, and one part refused does not refuse the others. Commands and shared
attribute pushes for a device behind a gateway go out through the gateway's connection, on
`v1/gateway/rpc` and `v1/gateway/attributes`, naming the device; the gateway answers a command on
`v1/gateway/rpc`.

The ingest worker subscribes at QoS 1 on a shared subscription (several workers split the load) with
a persistent session, stores what arrived in one transaction per batch, and only then acknowledges
it: the broker keeps and redelivers what a crash interrupted, and a point stored twice is stored once
(its key is device, key and time)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import getpass
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError

from cityops.config import Settings
from cityops.core.db import Database
from cityops.core.mqtt import Message, MqttClient, MqttError
from cityops.perception import service
from cityops.perception.ingest import (
    MAX_BODY_BYTES,
    NAME_MAX,
    GatewayPart,
    IngestRejected,
    parse_attributes,
    parse_gateway,
    parse_telemetry,
)
from cityops.perception.models import Device
from cityops.perception.repository import RpcToSend

log = logging.getLogger(__name__)

SHARE_GROUP = "cityops"
TOPICS = ("v1/devices/+/+/telemetry", "v1/devices/+/+/attributes", "v1/devices/+/+/attributes/request/+",
          "v1/devices/+/+/rpc/request/+", "v1/devices/+/+/rpc/response/+",
          # All of a gateway's: a topic cityops does not take (claim) is counted as refused, not lost.
          "v1/gateway/+/+/#")
# ThingsBoard's topics to a gateway for the devices behind it (subscribed to by its SDK on connecting).
GATEWAY_RPC = "v1/gateway/rpc"
GATEWAY_ATTRIBUTES = "v1/gateway/attributes"
GATEWAY_ATTRIBUTES_RESPONSE = "v1/gateway/attributes/response"
# The broker closes a connection that sends a larger packet; payloads between MAX_BODY_BYTES and this
# reach the platform and are counted as too large, like over HTTP.
MAX_PACKET_BYTES = 4 * MAX_BODY_BYTES
BATCH = 5000
# How often a worker looks for RPCs and attribute pushes to send: they are made by the API processes,
# which cannot reach the worker otherwise; one indexed read each, writes only when something waits.
DOWNLINK_POLL_S = 0.25


# --- the broker ---------------------------------------------------------------------------------


def broker_config(settings: Settings, *, plugin: Path, port: int | None = None,
                  bind: str = "0.0.0.0") -> str:
    """A mosquitto.conf for cityops: devices authenticate through the plugin, no anonymous access,
    a persistent queue large enough to hold what arrives while the ingest workers restart."""
    home = settings.mqtt_broker_dir.resolve()
    credentials = settings.mqtt_credentials_file
    assert credentials is not None
    lines = [
        "# Written by `cityops mqtt broker`; changes are overwritten.",
        "per_listener_settings false",
        # Started as root, Mosquitto would become the user `mosquitto` and lose the files cityops
        # writes for it (the credentials are readable by their owner only).
        f"user {getpass.getuser()}",
        f"listener {port or settings.mqtt_port} {bind}",
        "allow_anonymous false",
        f"plugin {plugin.resolve()}",
        f"plugin_opt_credentials_file {credentials.resolve()}",
        f"plugin_opt_platform_user {settings.mqtt_user}",
        f"plugin_opt_platform_password {settings.mqtt_secret}",
        "persistence true",
        f"persistence_location {home}/",
        "autosave_interval 30",
        # The workers acknowledge a whole batch once it is stored: the broker must let thousands of
        # messages be in flight to one of them (the default is 20), and queue, not drop, while a
        # worker restarts (the default drops after 1,000).
        "max_inflight_messages 10000",
        "max_queued_messages 2000000",
        f"max_packet_size {MAX_PACKET_BYTES}",
        "set_tcp_nodelay true",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages false",
    ]
    return "\n".join(lines) + "\n"


class BrokerUnavailable(Exception):
    """Mosquitto or the plugin is missing; the message says how to get it."""


def prepare_broker(settings: Settings, db: Database, *, port: int | None = None,
                   bind: str = "0.0.0.0") -> list[str]:
    """Write mosquitto.conf and the credentials file; the command that starts the broker."""
    plugin = settings.mqtt_plugin
    if not plugin.is_file():
        raise BrokerUnavailable(f"the Mosquitto plugin {plugin} is not built: run ./run test, or "
                                f"make -C src/cityops/perception/mosquitto OUT={plugin.parent}")
    executable = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if executable is None:
        raise BrokerUnavailable("mosquitto is not installed (Debian: apt-get install mosquitto)")
    if settings.mqtt_credentials_file is None:
        raise BrokerUnavailable("CITYOPS_MQTT_CREDENTIALS_FILE is empty: no device credentials to use")
    settings.mqtt_broker_dir.mkdir(parents=True, exist_ok=True)
    conf = settings.mqtt_broker_dir / "mosquitto.conf"
    _atomic_write(conf, broker_config(settings, plugin=plugin, port=port, bind=bind))  # holds a password
    write_credentials(db, settings.mqtt_credentials_file)
    return [executable, "-c", str(conf)]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def write_credentials(db: Database, path: Path) -> int:
    """Write the `token device_id` lines of every device with a token, atomically (the broker
    reloads the file when it changes); returns how many. Writers take turns, each writing what it
    read under the lock, so an older picture never replaces a newer one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with db.sessions() as session:
            rows = session.execute(select(Device.access_token, Device.id)
                                   .where(Device.access_token.is_not(None)).order_by(Device.id)).all()
        _atomic_write(path, "".join(f"{token} {device_id}\n" for token, device_id in rows))
    return len(rows)


class CredentialsSync:
    """Rewrites the credentials file when a token was issued, rotated or revoked, or a device went:
    each call compares a cheap fingerprint of the devices table with the last one written."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db, self.path = db, path
        self.written: tuple[Any, ...] | None = None

    def __call__(self) -> bool:
        with self.db.sessions() as session:
            fingerprint = tuple(session.execute(select(func.count(), func.max(Device.token_changed_at))
                                                .where(Device.access_token.is_not(None))).one())
        if fingerprint == self.written and self.path.exists():
            return False
        write_credentials(self.db, self.path)
        self.written = fingerprint
        return True


# --- from messages to uploads -------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Something to send back to one device, on its own topic."""

    device_id: int
    topic: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class RpcAnswer:
    """A device's answer to a server-side RPC, to store with the batch."""

    device_id: int
    rpc_id: int
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class GatewayMessage:
    """A gateway's message, read: one part per device it names, which are resolved to its children
    before the batch is stored (from_gateways)."""

    gateway_id: int
    kind: str  # the topic below v1/gateway/: connect, telemetry, attributes/request, ...
    parts: list[GatewayPart]
    received_at: datetime
    excerpt: str


@dataclass(frozen=True)
class ChildAttributesRequest:
    """A gateway asking for attributes of a device behind it; answered once the batch is stored."""

    gateway_id: int
    device_id: int
    request: GatewayPart


Request = Reply | RpcAnswer | ChildAttributesRequest


def _excerpt(message: Message) -> str:
    return f"{message.topic} {message.payload[:400].decode('utf-8', 'replace')}"


def _keys(value: Any) -> list[str]:
    return [k for k in value.split(",") if k] if isinstance(value, str) else []


@lru_cache(maxsize=1024)
def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)  # messages of a batch mostly share a few


def read_message(message: Message, *,
                 keep_ms: int) -> tuple[service.Upload | None, Reply | RpcAnswer | GatewayMessage | None]:
    """What a message from the broker asks for: an upload to store, a reply to send, an RPC answer
    to store, or a gateway's message to resolve."""
    parts = message.topic.split("/", 4)
    try:
        device_id, received_ms, rest = int(parts[2]), int(parts[3]), parts[4]
    except (IndexError, ValueError):
        return service.Upload("", "mqtt", rejected=IngestRejected(
            "bad_shape", f"not a device topic: {message.topic[:80]}"), excerpt=_excerpt(message)), None
    received_at = _moment(received_ms)
    try:
        if parts[1] == "gateway":
            return None, GatewayMessage(device_id, rest, parse_gateway(
                rest, message.payload, now_ms=received_ms, keep_ms=keep_ms), received_at, _excerpt(message))
        if rest == "telemetry":
            points = parse_telemetry(message.payload, now_ms=received_ms, keep_ms=keep_ms)
            return service.Upload("", "mqtt", points=points, received_at=received_at,
                                  device_id=device_id), None
        if rest == "attributes":
            return service.Upload("", "mqtt", attributes=parse_attributes(message.payload),
                                  received_at=received_at, device_id=device_id), None
        kind, _, request_id = rest.rpartition("/")
        if kind == "rpc/response":  # any payload: ThingsBoard keeps an answer that is not JSON as text
            if not request_id.isdigit() or len(request_id) > 18:
                raise IngestRejected("bad_shape", f"not an RPC id: {request_id[:40]!r}")
            return None, RpcAnswer(device_id, int(request_id), message.payload, received_at)
        request = json.loads(message.payload) if message.payload else {}
        if kind == "attributes/request" and isinstance(request, dict):
            keys = {name: _keys(request.get(name)) for name in ("clientKeys", "sharedKeys")}
            return None, Reply(device_id, f"v1/devices/me/attributes/response/{request_id}", keys)
        if kind == "rpc/request" and isinstance(request, dict):
            answer = service.client_rpc_reply(request)  # the same answers as over HTTP
            return None, Reply(device_id, f"v1/devices/me/rpc/response/{request_id}", answer)
        raise IngestRejected("bad_shape", f"not a request cityops answers: {rest[:80]}")
    except IngestRejected as exc:
        return service.Upload("", "mqtt", rejected=exc, excerpt=_excerpt(message), received_at=received_at,
                              device_id=device_id), None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return service.Upload("", "mqtt", rejected=IngestRejected("malformed_json", f"not valid JSON: {exc}"),
                              excerpt=_excerpt(message), received_at=received_at, device_id=device_id), None


def from_gateways(messages: Sequence[GatewayMessage], children: dict[tuple[int, str], int | IngestRejected]
                  ) -> tuple[list[service.Upload], list[RpcAnswer | ChildAttributesRequest]]:
    """The gateways' messages as their devices' own: uploads to store (a device's points, attributes,
    or its connecting, which counts as activity; the refused parts, recorded against the gateway with
    the device's name; the gateway's activity when it spoke for any device), RPC answers to store and
    attribute requests to answer. `children` is service.gateway_children's answer."""
    uploads: list[service.Upload] = []
    requests: list[RpcAnswer | ChildAttributesRequest] = []
    for message in messages:
        spoke = False
        for part in message.parts:
            found: int | IngestRejected
            if part.rejected is not None:
                found = IngestRejected(part.rejected.reason, f"device {part.device[:NAME_MAX]!r}: "
                                       f"{part.rejected.message}", status=part.rejected.status)
            else:
                found = children[(message.gateway_id, part.device)]
            if isinstance(found, IngestRejected):
                uploads.append(service.Upload("", "mqtt", rejected=found, excerpt=message.excerpt,
                                              received_at=message.received_at, device_id=message.gateway_id))
                continue
            spoke = True
            if message.kind == "rpc":
                assert part.request_id is not None
                requests.append(RpcAnswer(found, part.request_id, part.answer, message.received_at))
            elif message.kind == "attributes/request":
                requests.append(ChildAttributesRequest(message.gateway_id, found, part))
            elif message.kind != "disconnect":
                uploads.append(service.Upload("", "mqtt", points=part.points, attributes=part.attributes,
                                              received_at=message.received_at, device_id=found))
        if spoke:
            uploads.append(service.Upload("", "mqtt", received_at=message.received_at,
                                          device_id=message.gateway_id))
    return uploads, requests


def addressed(device_id: int, topic: str, payload: Any, routes: dict[int, tuple[int, str]]
              ) -> tuple[int, str, Any]:
    """Where a message for a device goes, as (connection's device id, topic, payload): to the device,
    or, behind a gateway (`routes`, service.gateway_routes), to the gateway on its topic, naming the
    device, as ThingsBoard sends it: `{"device": name, "data": {"id": rpc id, "method", "params"}}` on
    v1/gateway/rpc, `{"device": name, "data": {...}}` on v1/gateway/attributes."""
    via = routes.get(device_id)
    if via is None:
        return device_id, topic, payload
    gateway_id, name = via
    if topic.startswith("v1/devices/me/rpc/request/"):
        rpc_id = int(topic.rsplit("/", 1)[1])
        return gateway_id, GATEWAY_RPC, {"device": name, "data": {"id": rpc_id, **payload}}
    if topic == service.ATTRIBUTES_TOPIC:
        return gateway_id, GATEWAY_ATTRIBUTES, {"device": name, "data": payload}
    return device_id, topic, payload


# --- the worker ---------------------------------------------------------------------------------


def _transient(exc: Exception) -> bool:
    """The database is away (restart, network): wait and try the same batch again."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class IngestWorker:
    """Consumes device messages from the broker into the database; see the module's docstring."""

    def __init__(self, db: Database, settings: Settings, *, client_id: str, batch: int = BATCH,
                 host: str | None = None, port: int | None = None) -> None:
        self.db, self.settings, self.client_id, self.batch = db, settings, client_id, batch
        self.host, self.port = host or settings.mqtt_host, port or settings.mqtt_port
        self.keep_ms = settings.telemetry_raw_days * 86_400_000
        self.stored = 0  # messages stored (or recorded as refused) and acknowledged
        self.connected = asyncio.Event()
        path = settings.mqtt_credentials_file
        self.sync: Callable[[], bool] | None = CredentialsSync(db, path) if path is not None else None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, reconnecting whenever the broker goes away."""
        tasks = [asyncio.create_task(self._keep_credentials(stop))] if self.sync else []
        backoff = 0.2
        try:
            while not stop.is_set():
                try:
                    client = await MqttClient.connect(
                        self.host, self.port, client_id=self.client_id, username=self.settings.mqtt_user,
                        password=self.settings.mqtt_secret, clean_session=False)
                except MqttError as exc:
                    log.warning("%s; retrying in %.1f s", exc, backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.2
                try:
                    granted = await client.subscribe([(f"$share/{SHARE_GROUP}/{t}", 1) for t in TOPICS])
                    if any(g > 1 for g in granted):
                        raise MqttError("the broker refused the platform's subscriptions")
                    self.connected.set()
                    halt = asyncio.Event()
                    sending = asyncio.create_task(self._send_downlinks(client, halt))
                    try:
                        await self._consume(client, stop)
                    finally:
                        # Let a pass in progress finish (a broken connection fails its publishes at
                        # once and they are queued again) rather than cancel it between claiming and
                        # publishing, which would leave its RPCs SENT without being sent.
                        halt.set()
                        _done, pending = await asyncio.wait({sending}, timeout=15)
                        for task in pending:
                            task.cancel()
                except MqttError as exc:
                    log.warning("MQTT connection lost: %s", exc)
                except Exception:  # nothing unacknowledged is lost: the broker sends it again
                    log.exception("the ingest worker failed; reconnecting")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
                finally:
                    self.connected.clear()
                    await client.close()
        finally:
            for task in tasks:
                task.cancel()

    async def _keep_credentials(self, stop: asyncio.Event) -> None:
        assert self.sync is not None
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.sync)
            except Exception:  # a database hiccup: the broker keeps the last file meanwhile
                log.exception("writing the MQTT credentials file failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)

    async def _consume(self, client: MqttClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                messages = await asyncio.wait_for(client.receive(most=self.batch), 0.5)
            except TimeoutError:
                continue
            replies = await self._store_retrying(messages)
            client.acknowledge(messages)
            self.stored += len(messages)
            for reply in replies:
                await client.publish(f"down/{reply.device_id}/{reply.topic}",
                                     json.dumps(reply.payload, ensure_ascii=False).encode())
            await client.drain()

    async def _send_downlinks(self, client: MqttClient, halt: asyncio.Event) -> None:
        """Publish what waits for devices (queued RPCs, shared attribute pushes) through the plugin's
        downlink until `halt`, polling for it: it is made by other processes."""
        while not halt.is_set():
            try:
                await self.send_downlinks(client)
            except MqttError:
                return  # the consuming loop finds the connection gone too, and reconnects
            except Exception as exc:  # the database is away: try again at the next poll
                if not _transient(exc):
                    log.exception("sending to devices failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(halt.wait(), DOWNLINK_POLL_S)

    async def send_downlinks(self, client: MqttClient) -> int:
        """One pass: claim what waits (each RPC and push is taken by one worker), publish it at QoS 1 and
        mark the RPCs the broker acknowledged DELIVERED (see service.rpcs_delivered for what that
        promises). What the broken connection left unacknowledged is queued again. How many went out."""
        rpcs, pushes, routes = await asyncio.to_thread(self._take_downlinks)
        if not rpcs and not pushes:
            return 0
        out = [addressed(device_id, f"v1/devices/me/rpc/request/{rpc_id}",
                         {"method": method, "params": params}, routes)
               for rpc_id, device_id, method, params, _oneway in rpcs]
        out += [addressed(device_id, topic, payload, routes) for _id, device_id, topic, payload in pushes]
        # The packets go out in this order; their PUBACKs are awaited together.
        outcomes = await asyncio.gather(*(
            client.publish(f"down/{device_id}/{topic}", json.dumps(payload, ensure_ascii=False).encode(),
                           qos=1) for device_id, topic, payload in out), return_exceptions=True)
        rpc_outcomes, push_outcomes = outcomes[:len(rpcs)], outcomes[len(rpcs):]
        acked = [rpc[0] for rpc, outcome in zip(rpcs, rpc_outcomes, strict=True) if outcome is None]
        unsent = [rpc[0] for rpc, outcome in zip(rpcs, rpc_outcomes, strict=True) if outcome is not None]
        await asyncio.to_thread(self._after_sending, acked, unsent)
        lost = sum(outcome is not None for outcome in push_outcomes)
        if lost:
            log.warning("%d attribute pushes lost with the broker connection (devices read them on asking)",
                        lost)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return len(outcomes)

    def _take_downlinks(self) -> tuple[list[RpcToSend], list[tuple[int, int, str, Any]],
                                       dict[int, tuple[int, str]]]:
        with self.db.session() as session:
            rpcs, pushes = service.claim_rpcs(session), service.take_downlinks(session)
            ids = sorted({rpc[1] for rpc in rpcs} | {push[1] for push in pushes})
            return rpcs, pushes, service.gateway_routes(session, device_ids=ids) if ids else {}

    def _after_sending(self, acked: Sequence[int], unsent: Sequence[int]) -> None:
        if acked or unsent:
            with self.db.session() as session:
                service.rpcs_delivered(session, rpc_ids=acked)
                service.rpcs_unsent(session, rpc_ids=unsent)

    async def _store_retrying(self, messages: Sequence[Message]) -> list[Reply]:
        """Store the batch, waiting out a database that is away. Stored on this thread, not handed to
        another: the two would only take turns at the interpreter, and each turn costs (measured:
        a third less throughput); the broker holds what arrives meanwhile."""
        delay = 0.5
        while True:
            try:
                return self._store(messages)
            except Exception as exc:
                if not _transient(exc):
                    raise
                log.warning("the database is unavailable (%s); retrying the batch in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _store(self, messages: Sequence[Message]) -> list[Reply]:
        read = [read_message(m, keep_ms=self.keep_ms) for m in messages]
        uploads = [u for u, _ in read if u is not None]
        requests: list[Request] = [r for _, r in read if r is not None and not isinstance(r, GatewayMessage)]
        gateway = [r for _, r in read if isinstance(r, GatewayMessage)]
        if gateway:
            more_uploads, more_requests = from_gateways(gateway, self._children(gateway))
            uploads += more_uploads
            requests += more_requests
        try:
            return self._write(uploads, requests)
        except Exception as exc:
            if _transient(exc):
                raise
            return self._write_one_by_one(uploads, requests, exc)

    def _children(self, messages: Sequence[GatewayMessage]) -> dict[tuple[int, str], int | IngestRejected]:
        """The devices the gateways name, created on connecting, in a transaction before the batch's:
        a batch the database refuses is then stored one by one with its devices known."""
        wanted = [(m.gateway_id, p.device, p.profile)
                  for m in messages for p in m.parts if p.rejected is None]
        if not wanted:
            return {}
        try:
            with self.db.session() as session:
                return service.gateway_children(session, wanted)
        except Exception as exc:
            if _transient(exc):
                raise
            log.exception("looking up the devices behind gateways failed")
            refused = IngestRejected("bad_value", f"the database refused it: {exc.__class__.__name__}")
            return {(gateway_id, name): refused for gateway_id, name, _profile in wanted}

    def _write(self, uploads: Sequence[service.Upload], requests: Sequence[Request]) -> list[Reply]:
        with self.db.session() as session:
            if uploads:
                service.store_uploads(session, uploads)
            replies = []
            for request in requests:
                if isinstance(request, RpcAnswer):
                    refused = service.answer_rpc(session, device_id=request.device_id, rpc_id=request.rpc_id,
                                                 body=request.body, now=request.received_at)
                    if refused is not None:  # a late or stray answer: the device is not told
                        log.info("RPC answer of device %d not taken: %s", request.device_id, refused.message)
                elif isinstance(request, ChildAttributesRequest):
                    answer = service.child_attributes(session, device_id=request.device_id,
                                                      request=request.request)
                    replies.append(Reply(request.gateway_id, GATEWAY_ATTRIBUTES_RESPONSE, answer))
                elif request.topic.startswith("v1/devices/me/attributes/"):
                    try:
                        found = service.attributes_for(
                            session, device_id=request.device_id, client_keys=request.payload["clientKeys"],
                            shared_keys=request.payload["sharedKeys"]).model_dump()
                    except IngestRejected as exc:
                        found = {"error": exc.message}
                    replies.append(Reply(request.device_id, request.topic, found))
                else:
                    replies.append(request)
            return replies

    def _write_one_by_one(self, uploads: Sequence[service.Upload], requests: Sequence[Request],
                          error: Exception) -> list[Reply]:
        """A batch the database refused for a reason other than being away: store each upload on its
        own, so one bad message is recorded as refused and the others are kept."""
        log.error("storing a batch of %d failed (%r); storing one by one", len(uploads), error)
        for upload in uploads:
            try:
                self._write([upload], [])
            except Exception as exc:
                if _transient(exc):
                    raise
                log.exception("device message refused by the database")
                refused = IngestRejected("bad_value", f"the database refused it: {exc.__class__.__name__}")
                self._write([service.Upload(upload.token, upload.transport, device_id=upload.device_id,
                                            received_at=upload.received_at, rejected=refused,
                                            excerpt=str(upload.points[:5])[:400])], [])
        return self._write([], requests)
