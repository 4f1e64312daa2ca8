"""Payloads of the ThingsBoard device API: the three telemetry forms and every refusal reason."""

from __future__ import annotations

import json

import pytest

from cityops.perception.ingest import MAX_BODY_BYTES, IngestRejected, Point, parse_attributes, parse_telemetry

NOW = 1_733_000_000_000
KEEP = 30 * 86_400_000


def parse(payload: object) -> list[Point]:
    return parse_telemetry(json.dumps(payload).encode(), now_ms=NOW, keep_ms=KEEP)


def test_the_three_forms_of_thingsboard_telemetry() -> None:
    assert parse({"temperature": 21.5, "alarm": True, "state": "ok"}) == [
        ("temperature", NOW, 21.5, None), ("alarm", NOW, 1.0, None),
        ("state", NOW, None, "ok")]
    assert parse({"ts": NOW - 1000, "values": {"smoke": 0.2}}) == [("smoke", NOW - 1000, 0.2, None)]
    assert parse([{"ts": NOW - 2000, "values": {"level": 1}}, {"level": 2}]) == [
        ("level", NOW - 2000, 1.0, None), ("level", NOW, 2.0, None)]
    # Objects and lists are kept as their JSON, as ThingsBoard keeps them.
    assert parse({"box": {"a": [1, 2]}}) == [("box", NOW, None, '{"a": [1, 2]}')]


@pytest.mark.parametrize(("body", "reason", "status"), [
    (b"{not json", "malformed_json", 400),
    (b"\xff\xfe", "malformed_json", 400),
    (b"42", "bad_shape", 400),
    (b"[]", "bad_shape", 400),
    (b"{}", "bad_shape", 400),
    (json.dumps({"ts": NOW, "values": []}).encode(), "bad_shape", 400),
    (b'{"ts": "soon", "values": {"a": 1}}', "bad_value", 400),
    (json.dumps({"ts": NOW + 7_200_000, "values": {"a": 1}}).encode(), "ts_out_of_range", 400),
    (json.dumps({"ts": NOW - KEEP - 1, "values": {"a": 1}}).encode(), "ts_out_of_range", 400),
    (b'{"a": null}', "bad_value", 400),
    (b'{"a": "' + b"x" * 3000 + b'"}', "bad_value", 400),
    (b'{"": 1}', "bad_value", 400),
    (b"[" + b'{"a": 1},' * (MAX_BODY_BYTES // 9) + b'{"a": 1}]', "too_large", 413),
])
def test_refusals_name_their_reason(body: bytes, reason: str, status: int) -> None:
    with pytest.raises(IngestRejected) as refused:
        parse_telemetry(body, now_ms=NOW, keep_ms=KEEP)
    assert refused.value.reason == reason
    assert refused.value.status == status
    assert refused.value.to_dict()["detail"]["reason"] == reason


def test_attributes_are_kept_as_json_values() -> None:
    assert parse_attributes(b'{"firmware": "1.2", "config": {"interval": 60}}') == {
        "firmware": "1.2", "config": {"interval": 60}}
    with pytest.raises(IngestRejected) as refused:
        parse_attributes(b'[{"a": 1}]')
    assert refused.value.reason == "bad_shape"
