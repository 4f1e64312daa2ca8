"""Payloads of the ThingsBoard device API, parsed and checked before anything is stored.

Telemetry comes as `{"key": value}` (timed by the server), `{"ts": ms, "values": {...}}`, or a list
of either; attributes as `{"key": value}`. A payload that cannot be stored whole is refused whole
with the reason, so a device never learns half of it was kept."""

from __future__ import annotations

import json
import math
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
REASONS = ("too_large", "malformed_json", "bad_shape", "bad_value", "ts_out_of_range", "unknown_token")


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
        kind = type(value)  # the common cases first: a plain float or a small whole number
        if ((kind is float and math.isfinite(value)) or (kind is int and -MAX_INT <= value <= MAX_INT)) and (
                0 < len(key) <= KEY_MAX and key.isprintable()):
            out.append((key, ts, float(value), None))
            continue
        num, text = _value(_key(key), value)
        out.append((key, ts, num, text))


def parse_telemetry(body: bytes, *, now_ms: int, keep_ms: int) -> list[Point]:
    """The points of a telemetry payload, or IngestRejected with the reason."""
    data = _load(body)
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
    data = _load(body)
    if not isinstance(data, dict) or not data:
        raise IngestRejected("bad_shape", 'expected {"key": value, ...}')
    for key, value in data.items():
        _key(key)
        if value is None:
            raise IngestRejected("bad_value", f"{key}: null is not a value", field=key)
        if len(json.dumps(value)) > MAX_TEXT:
            raise IngestRejected("bad_value", f"{key}: at most {MAX_TEXT} characters of JSON", field=key)
    return data
