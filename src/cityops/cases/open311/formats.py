"""GeoReport v2 wire formats: the same documents as JSON or XML, errors as the spec's error list,
and the spec's parameter rules (comma lists, empty parameter = absent)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from xml.etree import ElementTree as ET

from fastapi.responses import Response

Format = Literal["json", "xml"]
# XML names of the repeated children of list-valued fields.
SINGULAR = {"values": "value", "attributes": "attribute", "keywords": "keyword", "endpoints": "endpoint",
            "formats": "format"}
FORMATS: tuple[Format, ...] = ("json", "xml")
MEDIA_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}


def w3c_datetime(value: datetime | None) -> str | None:
    """W3C / ISO 8601 with an explicit offset, as the spec asks (we answer in UTC)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _xml_value(parent: ET.Element, name: str, value: Any) -> None:
    child = ET.SubElement(parent, name)
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _xml_value(child, key, inner)
    elif isinstance(value, list | tuple):
        # Lists inside a document (keywords, attribute values) repeat a singular child element.
        item_name = SINGULAR.get(name, "item")
        for inner in value:
            _xml_value(child, item_name, inner)
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    elif value is not None:
        child.text = str(value)


def to_xml(root: str, item: str | None, payload: Any) -> bytes:
    """A list under <root><item>…</item></root>, or one mapping as <root>…</root>."""
    element = ET.Element(root)
    if item is None:
        for key, value in payload.items():
            _xml_value(element, key, value)
    else:
        for entry in payload:
            _xml_value(element, item, entry)
    body: bytes = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    return body


def respond(fmt: Format, payload: Any, *, root: str, item: str | None, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, item, payload), status_code=status, media_type=MEDIA_TYPES["xml"])
    body = json.dumps(payload, ensure_ascii=False)
    return Response(body, status_code=status, media_type=MEDIA_TYPES["json"])


def error_response(fmt: Format, status: int, description: str) -> Response:
    """The spec's error list: [{"code": 400, "description": "..."}] / <errors><error>…</error></errors>."""
    return respond(fmt, [{"code": status, "description": description}], root="errors", item="error",
                   status=status)


def split_path_format(name: str) -> tuple[str, Format]:
    """'services.json' -> ('services', 'json'); an unknown extension raises ValueError."""
    stem, dot, ext = name.rpartition(".")
    if not dot or ext not in FORMATS:
        raise ValueError(f"format must be .json or .xml, not {name!r}")
    return stem, ext


def present(params: Mapping[str, str], name: str) -> str | None:
    """The spec treats an empty parameter as absent."""
    value = params.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def comma_list(value: str | None) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()] if value else []


def parse_datetime(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be a W3C datetime such as 2024-09-27T08:00:00+08:00") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{name} needs a time zone offset, e.g. 2024-09-27T08:00:00+08:00")
    return parsed.astimezone(UTC)


def merged_params(query: Mapping[str, str], form: Mapping[str, Any] | None) -> dict[str, str]:
    """Query-string and form parameters together (form wins), as GeoReport clients send both."""
    merged = {k: v for k, v in query.items()}
    if form:
        merged.update({k: v for k, v in form.items() if isinstance(v, str)})
    return merged


def attributes_from(params: Mapping[str, str]) -> dict[str, str]:
    """attribute[code]=value pairs of a POST request."""
    found: dict[str, str] = {}
    for key, value in params.items():
        if key.startswith("attribute[") and key.endswith("]"):
            found[key[len("attribute["):-1]] = value
    return found


def discovery_document(base_url: str, *, changeset: datetime, contact: str) -> dict[str, Any]:
    return {
        "changeset": w3c_datetime(changeset),
        "contact": contact,
        "key_service": "API keys are issued by the city's governance centre (cityops tokens create).",
        "endpoints": [
            {"specification": "http://wiki.open311.org/GeoReport_v2", "url": base_url,
             "changeset": w3c_datetime(changeset), "type": "production", "formats": list(_FORMATS_MIME)},
        ],
    }


_FORMATS_MIME: Sequence[str] = ("application/json", "text/xml")
