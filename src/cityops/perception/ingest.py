"""Payloads of the ThingsBoard device API, parsed and checked before anything is stored.

Telemetry comes as `{"key": value}` (timed by the server), `{"ts": ms, "values": {...}}`, or a list
of either; attributes as `{"key": value}`. A payload that cannot be stored whole is refused whole
with the reason, so a device never learns half of it was kept."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cityops.core.errors import CityopsError

MAX_BODY_BYTES = 1 << 20
MAX_POINTS = 50_000
MAX_TEXT = 2000
KEY_MAX = 64
# A device clock may run a little fast; a point further ahead is refused, as is one older than the
# raw history keeps (it would be deleted at once).
MAX_AHEAD_MS = 3_600_000
MAX_INT = 2**53  # whole numbers a float holds exactly

# Why a message was not stored: the reasons counted on the rejections page.
REASONS = ("too_large", "malformed_json", "bad_shape", "bad_value", "ts_out_of_range", "unknown_token",
           # a gateway's message (perception/mqtt.py): a device it may not speak for, or that it never
           # connected with a type, and a message naming too many devices or one gateway too many
           "forbidden", "unknown_device", "too_many_devices")


class IngestRejected(CityopsError):
    status = 400
    code = "ingest_rejected"

    def __init__(self, reason: str, message: str, *, status: int | None = None, field: str | None = None):
        super().__init__(message, status=status, field=field, detail={"reason": reason})
        self.reason = reason


# (key, ts, num, text): a plain tuple, as a gateway's batch holds tens of thousands of them.
Point = tuple[str, int, float | None, str | None]


def _load(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise IngestRejected("too_large", f"payload of {len(body)} bytes; at most {MAX_BODY_BYTES}",
                             status=413)
    try:  # orjson: a third of json's time on small payloads, and strict (no NaN, depth and size limits)
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise IngestRejected("malformed_json", f"not valid JSON: {exc}") from None


def _key(key: str) -> str:
    if not key or len(key) > KEY_MAX or not key.isprintable():
        raise IngestRejected("bad_value", f"key {key[:KEY_MAX]!r}: 1 to {KEY_MAX} printable characters",
                             field=key[:KEY_MAX])
    return key


# Key names already found good: devices send the same few keys in every message. Bounded, as a device
# could send a new name each time.
_CHECKED_KEYS: set[str] = set()
_CHECKED_KEYS_MAX = 100_000


def _remember(key: str) -> None:
    if len(_CHECKED_KEYS) >= _CHECKED_KEYS_MAX:
        _CHECKED_KEYS.clear()
    _CHECKED_KEYS.add(key)


def _value(key: str, value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None
    if isinstance(value, int | float):
        if isinstance(value, int) and abs(value) > MAX_INT:  # beyond a float, or an overflow
            raise IngestRejected("bad_value", f"{key}: a whole number beyond ±2^53", field=key)
        if not math.isfinite(value):
            raise IngestRejected("bad_value", f"{key}: numbers must be finite", field=key)
        return float(value), None
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise IngestRejected("bad_value", f"{key}: text of at most {MAX_TEXT} characters", field=key)
        return None, value
    if value is None:
        raise IngestRejected("bad_value", f"{key}: null is not a value", field=key)
    text = json.dumps(value, ensure_ascii=False)  # ThingsBoard keeps objects and lists as JSON
    if len(text) > MAX_TEXT:
        raise IngestRejected("bad_value", f"{key}: JSON of at most {MAX_TEXT} characters", field=key)
    return None, text


def _entry(item: Any, now_ms: int, oldest_ms: int, out: list[Point]) -> None:
    if not isinstance(item, dict) or not item:
        raise IngestRejected("bad_shape",
                             'expected {"key": value}, {"ts": ms, "values": {...}} or a list of them')
    if "ts" in item and "values" in item and len(item) == 2:
        ts, values = item["ts"], item["values"]
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise IngestRejected("bad_value", "ts: milliseconds since 1970 as a whole number", field="ts")
        if not oldest_ms <= ts <= now_ms + MAX_AHEAD_MS:
            raise IngestRejected("ts_out_of_range", f"ts {ts} is more than an hour ahead or older than the "
                                 "raw history keeps", field="ts")
        if not isinstance(values, dict) or not values:
            raise IngestRejected("bad_shape", "values: an object of at least one key", field="values")
    else:
        ts, values = now_ms, item
    for key, value in values.items():
        if key not in _CHECKED_KEYS:
            _remember(_key(key))
        kind = type(value)  # the common cases first, checked inline (this runs for every value)
        if kind is float:  # finite: orjson refuses NaN and infinities
            out.append((key, ts, value, None))
        elif kind is int and -MAX_INT <= value <= MAX_INT:
            out.append((key, ts, float(value), None))
        elif kind is bool:
            out.append((key, ts, 1.0 if value else 0.0, None))
        else:
            num, text = _value(key, value)
            out.append((key, ts, num, text))


def parse_telemetry(body: bytes, *, now_ms: int, keep_ms: int) -> list[Point]:
    """The points of a telemetry payload, or IngestRejected with the reason."""
    return telemetry_points(_load(body), now_ms=now_ms, keep_ms=keep_ms)


def telemetry_points(data: Any, *, now_ms: int, keep_ms: int) -> list[Point]:
    """The points of a telemetry payload's JSON (one device's part of a gateway's message)."""
    points: list[Point] = []
    for item in data if isinstance(data, list) else [data]:
        _entry(item, now_ms, now_ms - keep_ms, points)
        if len(points) > MAX_POINTS:
            raise IngestRejected("too_large", f"more than {MAX_POINTS} values in one payload", status=413)
    if not points:
        raise IngestRejected("bad_shape", "no values")
    return points


def parse_attributes(body: bytes) -> dict[str, Any]:
    """Client attributes `{"key": value}`; values are kept as the JSON they are."""
    return checked_attributes(_load(body))


def checked_attributes(data: Any) -> dict[str, Any]:
    """Client attributes from a payload's JSON (one device's part of a gateway's message)."""
    if not isinstance(data, dict) or not data:
        raise IngestRejected("bad_shape", 'expected {"key": value, ...}')
    for key, value in data.items():
        _key(key)
        if value is None:
            raise IngestRejected("bad_value", f"{key}: null is not a value", field=key)
        if len(json.dumps(value)) > MAX_TEXT:
            raise IngestRejected("bad_value", f"{key}: at most {MAX_TEXT} characters of JSON", field=key)
    return data


# --- ThingsBoard's gateway API ------------------------------------------------------------------

MAX_GATEWAY_DEVICES = 1000  # devices named in one gateway message
NAME_MAX = 120  # a device's name (devices.name)
# The topics a gateway publishes on (below v1/gateway/), and what each payload is.
GATEWAY_PAYLOADS = {
    "connect": '{"device": name, "type": profile}',
    "disconnect": '{"device": name}',
    "telemetry": '{name: [{"ts": ms, "values": {...}}, ...] or {"key": value}, ...}',
    "attributes": '{name: {"key": value}, ...}',
    "attributes/request": '{"id": n, "device": name, "client": true or false, "key": k or "keys": [...]}',
    "rpc": '{"device": name, "id": rpc id, "data": answer}',
}


@dataclass(frozen=True, slots=True)
class GatewayPart:
    """What a gateway's message says for one device behind it, named as the gateway names it. A part
    that is wrong is refused on its own (`rejected`): the other devices' parts are still stored."""

    device: str
    profile: str | None = None  # connect: the device's type, a profile code; None when not given
    points: Sequence[Point] = ()  # telemetry
    attributes: dict[str, Any] | None = None  # client attributes
    request_id: int | None = None  # attributes/request: echoed in the answer; rpc: the RPC answered
    client: bool = False  # attributes/request: client attributes, else shared ones
    keys: tuple[str, ...] = ()  # attributes/request
    single: bool = False  # attributes/request asked with "key": answered with "value", not "values"
    answer: bytes = b""  # rpc: the answer's data, as JSON
    rejected: IngestRejected | None = None


def _name(name: Any) -> str:
    if (not isinstance(name, str) or not 0 < len(name) <= NAME_MAX or not name.isprintable()
            or name.strip() != name):
        shown = repr(name)[:NAME_MAX + 2]
        raise IngestRejected("bad_value", f"device name {shown}: 1 to {NAME_MAX} printable characters, "
                             "without spaces around them", field="device")
    return name


def _number(data: dict[str, Any], field: str) -> int:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise IngestRejected("bad_value", f"{field}: a whole number from 0 to 2^53", field=field)
    return value


def parse_gateway(kind: str, body: bytes, *, now_ms: int, keep_ms: int) -> list[GatewayPart]:
    """The parts of a gateway's message on `v1/gateway/<kind>`, one per device it names (a single
    part for connect, disconnect, attribute requests and RPC answers); IngestRejected when the
    message as a whole cannot be read."""
    expected = GATEWAY_PAYLOADS.get(kind)
    if expected is None:
        raise IngestRejected("bad_shape", f"not a gateway request cityops takes: {kind[:80]}; it takes "
                             f"{', '.join(GATEWAY_PAYLOADS)}")
    data = _load(body)
    if not isinstance(data, dict) or not data:
        raise IngestRejected("bad_shape", f"expected {expected}")
    if kind in ("telemetry", "attributes"):
        return _per_device(kind, data, now_ms=now_ms, keep_ms=keep_ms)
    name = _name(data.get("device"))
    if kind == "connect":
        profile = data.get("type")
        if profile is not None and not isinstance(profile, str):
            raise IngestRejected("bad_value", "type: the device's profile code, as text", field="type")
        # ThingsBoard's SDK sends "default" when the caller names no type: none was given.
        return [GatewayPart(name, profile=profile if profile not in ("", "default") else None)]
    if kind == "disconnect":
        return [GatewayPart(name)]
    if kind == "rpc":
        return [GatewayPart(name, request_id=_number(data, "id"), answer=orjson.dumps(data.get("data")))]
    client = data.get("client")
    if not isinstance(client, bool):
        raise IngestRejected("bad_value", "client: true for client attributes, false for shared ones",
                             field="client")
    keys: tuple[str, ...]
    if isinstance(data.get("key"), str):
        keys, single = (_key(data["key"]),), True
    elif isinstance(many := data.get("keys"), list) and many and all(isinstance(k, str) for k in many):
        keys, single = tuple(_key(k) for k in many), False
    else:
        raise IngestRejected("bad_shape", 'name the attributes: "key": name, or "keys": [name, ...]',
                             field="keys")
    return [GatewayPart(name, request_id=_number(data, "id"), client=client, keys=keys, single=single)]


def _per_device(kind: str, data: dict[str, Any], *, now_ms: int, keep_ms: int) -> list[GatewayPart]:
    if len(data) > MAX_GATEWAY_DEVICES:
        raise IngestRejected("too_many_devices", f"{len(data)} devices in one message; at most "
                             f"{MAX_GATEWAY_DEVICES}", status=413)
    parts: list[GatewayPart] = []
    total = 0
    for name, value in data.items():
        try:
            if kind == "attributes":
                parts.append(GatewayPart(_name(name), attributes=checked_attributes(value)))
                continue
            points = telemetry_points(value, now_ms=now_ms, keep_ms=keep_ms)
            parts.append(GatewayPart(_name(name), points=points))
        except IngestRejected as exc:
            parts.append(GatewayPart(name, rejected=exc))
            continue
        total += len(points)
        if total > MAX_POINTS:
            raise IngestRejected("too_large", f"more than {MAX_POINTS} values in one payload", status=413)
    return parts
