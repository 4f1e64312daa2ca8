"""OASIS Common Alerting Protocol 1.2: writing messages, and reading them safely with errors that say
what is wrong, where.

Every message written here is validated against the official schema (data/cap/CAP-v1.2.xsd) before it
leaves. Input is parsed with entities, DTDs and network access off (a DOCTYPE is refused outright),
validated against the schema, then checked for what the schema cannot say: expiry after sending,
closed polygons of at least four points, references in `sender,identifier,sent` form, a severity or
level that names one of the four warning levels. Each problem names the line and the element
(`/alert/info[1]/area[1]/polygon[1]`).

Times are written in China Standard Time with a numeric offset (`2026-07-20T08:00:00+08:00`): the
schema's pattern refuses `Z`, and CAP reserves `-00:00` for UTC."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

from cityops.core.errors import ValidationFailed
from cityops.warning.hazards import BY_SEVERITY, LEVELS, Level

XSD_PATH = Path(__file__).resolve().parent / "data" / "cap" / "CAP-v1.2.xsd"
NS = "urn:oasis:names:tc:emergency:cap:1.2"
Q = f"{{{NS}}}"
CHINA = timezone(timedelta(hours=8))
MAX_BYTES = 1_000_000
MAX_PROBLEMS = 20
# Without <expires> CAP leaves the end to the recipient: an imported warning then ends this long
# after its onset (or sending), unless its sender updates or cancels it first.
DEFAULT_VALIDITY = timedelta(hours=24)

# The native level in <parameter>: `level` (machine-readable, every language) and 预警级别 (zh-CN).
LEVEL_PARAMETER = "level"
LEVEL_PARAMETER_ZH = "预警级别"
LEVEL_PARAMETERS = frozenset({"level", "预警级别", "预警等级", "warning level", "warninglevel"})
# The hazard as cityops names it, in <eventCode>, so a warning exported here imports back as itself.
HAZARD_EVENT_CODE = "cityops.hazard"
# Geocodes of Chinese divisions: 6-digit GB/T 2260 codes (city, county), 9 and 12-digit NBS codes
# (township, village).
GEOCODE_GB2260 = "GB/T 2260"
GEOCODE_NBS = "NBS"
DIVISION_GEOCODES = frozenset(
    {"gb/t 2260", "gb2260", "gb/t2260", "nbs", "行政区划代码", "adcode", "区划代码"}
)
DIVISION_CODE = re.compile(r"^\d{6}(\d{3}(\d{3})?)?$")
CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
# CAP 1.2: identifier and sender "MUST NOT include spaces, commas or restricted characters (< and &)".
BAD_ID_CHARS = re.compile(r"[\s,<&]")

Ring = tuple[tuple[float, float], ...]  # (lon, lat) points, first == last


class CapError(ValidationFailed):
    """A CAP document that cannot be used; `detail.errors` lists each problem with line and path."""

    code = "invalid_cap"

    def __init__(self, problems: Sequence[Problem]) -> None:
        shown = "; ".join(p.text() for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(
            f"invalid CAP: {shown}{more}", detail={"errors": [p.as_dict() for p in problems[:MAX_PROBLEMS]]}
        )
        self.problems = list(problems)


@dataclass(frozen=True)
class Problem:
    message: str
    line: int | None = None
    path: str | None = None

    def text(self) -> str:
        where = " ".join(x for x in (f"line {self.line}" if self.line else "", self.path or "") if x)
        return f"{where}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "path": self.path, "message": self.message}


@dataclass(frozen=True)
class Reference:
    sender: str
    identifier: str
    sent: str

    def text(self) -> str:
        return f"{self.sender},{self.identifier},{self.sent}"


@dataclass(frozen=True)
class Area:
    desc: str
    polygons: tuple[Ring, ...] = ()
    circles: tuple[str, ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Info:
    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    response_types: tuple[str, ...] = ()
    event_codes: tuple[tuple[str, str], ...] = ()
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[Area, ...] = ()

    def parameter(self, names: Iterable[str]) -> str | None:
        wanted = {n.lower() for n in names}
        return next((value for name, value in self.parameters if name.strip().lower() in wanted), None)

    def event_code(self, name: str) -> str | None:
        return next((value for key, value in self.event_codes if key == name), None)


@dataclass(frozen=True)
class Alert:
    identifier: str
    sender: str
    sent: str  # as written, with its offset
    msg_type: str
    status: str = "Actual"
    scope: str = "Public"
    source: str | None = None
    note: str | None = None
    references: tuple[Reference, ...] = ()
    infos: tuple[Info, ...] = ()
    codes: tuple[str, ...] = field(default=())

    @property
    def sent_at(self) -> datetime:
        return datetime.fromisoformat(self.sent)

    def info_in(self, language: str) -> Info | None:
        """The first info in the language (`zh` matches zh-CN, zh-Hans...)."""
        prefix = language.lower()
        return next((i for i in self.infos if i.language.lower().split("-")[0] == prefix), None)

    @property
    def main_info(self) -> Info | None:
        """The Chinese info if there is one, else the first."""
        return self.info_in("zh") or (self.infos[0] if self.infos else None)


# --- times and levels -----------------------------------------------------------------------------


def cap_time(moment: datetime) -> str:
    """A CAP dateTime in China Standard Time, to the second, with its numeric offset."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; use timezone-aware timestamps")
    return moment.astimezone(CHINA).replace(microsecond=0).isoformat()


def level_named(text: str) -> Level | None:
    """The level a parameter value names: orange, 橙色, 橙色预警, Ⅱ级, II, 严重..."""
    value = text.strip()
    for candidate in LEVELS.values():
        ascii_roman = {1: "IV", 2: "III", 3: "II", 4: "I"}[candidate.rank]
        names = {
            candidate.code,
            candidate.roman,
            ascii_roman.lower(),
            candidate.colour_zh,
            candidate.colour_zh[0],
            candidate.grade_zh,
            f"{candidate.roman}级",
            f"{ascii_roman.lower()}级",
            f"{candidate.colour_zh}预警",
            candidate.label.lower(),
        }
        if value in names or value.lower() in names:
            return candidate
    return None


def level_of(info: Info) -> Level | None:
    """The warning level an info gives: its level parameter, else its severity (None: neither)."""
    named = info.parameter(LEVEL_PARAMETERS)
    if named is not None:
        found = level_named(named)
        if found is not None:
            return found
    return BY_SEVERITY.get(info.severity)


# --- writing ---------------------------------------------------------------------------------------


def _num(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def polygon_text(ring: Ring) -> str:
    """CAP polygon: space-separated `lat,lon` pairs (WGS84), closed."""
    points = list(ring)
    if points and points[0] != points[-1]:
        points.append(points[0])
    return " ".join(f"{_num(lat)},{_num(lon)}" for lon, lat in points)


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, Q + tag)
    if text is not None:
        child.text = text
    return child


def _pairs(parent: etree._Element, tag: str, pairs: Iterable[tuple[str, str]]) -> None:
    for name, value in pairs:
        holder = _sub(parent, tag)
        _sub(holder, "valueName", name)
        _sub(holder, "value", value)


def to_xml(alert: Alert) -> str:
    """The message as CAP 1.2 XML (UTF-8 declared); raises CapError if it breaks the schema, which
    would be a bug here, never something to send."""
    root = etree.Element(Q + "alert", nsmap={None: NS})
    for tag, value in (
        ("identifier", alert.identifier),
        ("sender", alert.sender),
        ("sent", alert.sent),
        ("status", alert.status),
        ("msgType", alert.msg_type),
        ("source", alert.source),
        ("scope", alert.scope),
    ):
        if value is not None:
            _sub(root, tag, value)
    for code in alert.codes:
        _sub(root, "code", code)
    if alert.note:
        _sub(root, "note", alert.note)
    if alert.references:
        _sub(root, "references", " ".join(r.text() for r in alert.references))
    for info in alert.infos:
        element = _sub(root, "info")
        _sub(element, "language", info.language)
        for category in info.categories:
            _sub(element, "category", category)
        _sub(element, "event", info.event)
        for response in info.response_types:
            _sub(element, "responseType", response)
        for tag, value in (
            ("urgency", info.urgency),
            ("severity", info.severity),
            ("certainty", info.certainty),
        ):
            _sub(element, tag, value)
        _pairs(element, "eventCode", info.event_codes)
        for tag, moment in (("effective", info.effective), ("onset", info.onset), ("expires", info.expires)):
            if moment is not None:
                _sub(element, tag, cap_time(moment))
        for tag, text in (
            ("senderName", info.sender_name),
            ("headline", info.headline),
            ("description", info.description),
            ("instruction", info.instruction),
            ("web", info.web),
            ("contact", info.contact),
        ):
            if text:
                _sub(element, tag, text)
        _pairs(element, "parameter", info.parameters)
        for area in info.areas:
            area_element = _sub(element, "area")
            _sub(area_element, "areaDesc", area.desc)
            for ring in area.polygons:
                _sub(area_element, "polygon", polygon_text(ring))
            for circle in area.circles:
                _sub(area_element, "circle", circle)
            _pairs(area_element, "geocode", area.geocodes)
    body: str = etree.tostring(root, encoding="unicode", pretty_print=True)
    xml = '<?xml version="1.0" encoding="UTF-8"?>\n' + body
    validate(xml.encode())
    return xml


# --- reading ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    """The official CAP 1.2 schema, shipped with the package (no network)."""
    return etree.XMLSchema(etree.parse(str(XSD_PATH), _parser()))


def _parser() -> etree.XMLParser:
    # No entity expansion, no DTD loading, no network, no huge-document mode: XXE and entity bombs
    # find nothing to work with.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _path(element: etree._Element) -> str:
    """/alert/info[1]/area[2]/polygon[1]: local names, 1-based among same-named siblings."""
    parts: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is None:
            parts.append(name)
        else:
            same = [c for c in parent if isinstance(c.tag, str) and c.tag == node.tag]
            parts.append(f"{name}[{same.index(node) + 1}]")
        node = parent
    return "/" + "/".join(reversed(parts))


def _problem(element: etree._Element, message: str) -> Problem:
    return Problem(message, element.sourceline, _path(element))


def parse_xml(data: bytes | str) -> etree._ElementTree:
    """Parse safely; CapError with the line for what is not well-formed XML or carries a DOCTYPE."""
    raw = data.encode() if isinstance(data, str) else data
    if not raw.strip():
        raise CapError([Problem("the document is empty")])
    if len(raw) > MAX_BYTES:
        raise CapError([Problem(f"the document is {len(raw):,} bytes; at most {MAX_BYTES:,} are accepted")])
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        raise CapError([Problem(f"not well-formed XML: {exc.msg}", exc.lineno)]) from None
    tree = root.getroottree()
    if tree.docinfo.doctype:
        raise CapError([Problem("a DOCTYPE is not allowed in a CAP message (no entities, no DTD)", 1)])
    return tree


def validate(data: bytes | str) -> etree._ElementTree:
    """Parse and validate against the official schema; the tree, or CapError naming each problem."""
    tree = parse_xml(data)
    root = tree.getroot()
    if root.tag != Q + "alert":
        raise CapError(
            [
                Problem(
                    f"the root element is <{etree.QName(root).localname}> in namespace "
                    f"{etree.QName(root).namespace or '(none)'}; a CAP 1.2 message is <alert> "
                    f"in {NS}",
                    root.sourceline,
                    "/" + etree.QName(root).localname,
                )
            ]
        )
    checker = schema()
    if checker.validate(tree):
        return tree
    problems: list[Problem] = []
    seen: set[tuple[int, str | None]] = set()
    for entry in checker.error_log:
        found = tree.xpath(entry.path) if entry.path else []
        element = (
            found[0] if isinstance(found, list) and found and isinstance(found[0], etree._Element) else None
        )
        path = _path(element) if element is not None else None
        if (entry.line, path) in seen:  # libxml2 may say the same of one element twice
            continue
        seen.add((entry.line, path))
        problems.append(Problem(entry.message.replace(Q, ""), entry.line, path))
    raise CapError(problems)


def _text(element: etree._Element, tag: str) -> str | None:
    child = element.find(Q + tag)
    return child.text.strip() if child is not None and child.text is not None else None


def _all(element: etree._Element, tag: str) -> list[etree._Element]:
    return list(element.iterfind(Q + tag))


def _value_pairs(element: etree._Element, tag: str) -> tuple[tuple[str, str], ...]:
    return tuple(((_text(e, "valueName") or ""), (_text(e, "value") or "")) for e in _all(element, tag))


def _time(element: etree._Element, tag: str) -> datetime | None:
    text = _text(element, tag)
    return datetime.fromisoformat(text) if text else None


def _ring(element: etree._Element, problems: list[Problem]) -> Ring | None:
    tokens = (element.text or "").split()
    points: list[tuple[float, float]] = []
    for n, token in enumerate(tokens, start=1):
        parts = token.split(",")
        try:
            lat, lon = (float(parts[0]), float(parts[1])) if len(parts) == 2 else (float("nan"), 0.0)
        except ValueError:
            lat, lon = float("nan"), 0.0
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            problems.append(_problem(element, f"point {n} {token!r} is not a WGS84 'lat,lon' pair"))
            return None
        points.append((lon, lat))
    if len(points) < 4:
        problems.append(
            _problem(
                element,
                f"a polygon needs at least 4 points (the first repeated last); this one has {len(points)}",
            )
        )
        return None
    if points[0] != points[-1]:
        problems.append(
            _problem(
                element,
                "the polygon is not closed: its last point must repeat the first "
                f"({tokens[0]}), not {tokens[-1]}",
            )
        )
        return None
    return tuple(points)


def _circle(element: etree._Element, problems: list[Problem]) -> str | None:
    text = " ".join((element.text or "").split())
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?) (\d+(?:\.\d+)?)", text)
    if match is None or not (-90 <= float(match[1]) <= 90 and -180 <= float(match[2]) <= 180):
        problems.append(_problem(element, f"a circle is 'lat,lon radius_km', not {text!r}"))
        return None
    return text


def _info(element: etree._Element, sent: datetime, problems: list[Problem]) -> Info:
    onset, effective, expires = (
        _time(element, "onset"),
        _time(element, "effective"),
        _time(element, "expires"),
    )
    expires_element = element.find(Q + "expires")
    if expires is not None and expires_element is not None:
        # One problem per <expires>: the first moment it fails to follow.
        starts = (("the message was sent", sent), ("onset", onset), ("effective", effective))
        late = next(((name, start) for name, start in starts if start is not None and expires <= start), None)
        if late is not None:
            problems.append(
                _problem(
                    expires_element,
                    f"expires ({cap_time(expires)}) is not after {late[0]} ({cap_time(late[1])})",
                )
            )
    areas: list[Area] = []
    for area in _all(element, "area"):
        rings = [_ring(p, problems) for p in _all(area, "polygon")]
        circles = [_circle(c, problems) for c in _all(area, "circle")]
        areas.append(
            Area(
                _text(area, "areaDesc") or "",
                tuple(r for r in rings if r is not None),
                tuple(c for c in circles if c is not None),
                _value_pairs(area, "geocode"),
            )
        )
    info = Info(
        language=_text(element, "language") or "en-US",
        categories=tuple(c.text.strip() for c in _all(element, "category") if c.text),
        event=_text(element, "event") or "",
        urgency=_text(element, "urgency") or "",
        severity=_text(element, "severity") or "",
        certainty=_text(element, "certainty") or "",
        response_types=tuple(r.text.strip() for r in _all(element, "responseType") if r.text),
        event_codes=_value_pairs(element, "eventCode"),
        effective=effective,
        onset=onset,
        expires=expires,
        sender_name=_text(element, "senderName"),
        headline=_text(element, "headline"),
        description=_text(element, "description"),
        instruction=_text(element, "instruction"),
        web=_text(element, "web"),
        contact=_text(element, "contact"),
        parameters=_value_pairs(element, "parameter"),
        areas=tuple(areas),
    )
    severity_element = element.find(Q + "severity")
    named = info.parameter(LEVEL_PARAMETERS)
    by_parameter = level_named(named) if named is not None else None
    by_severity = BY_SEVERITY.get(info.severity)
    assert severity_element is not None  # the schema requires it
    if named is not None and by_parameter is None:
        problems.append(
            _problem(
                severity_element,
                f"the level parameter {named!r} names none of "
                f"{', '.join(LEVELS)} (or 蓝色, 黄色, 橙色, 红色)",
            )
        )
    elif by_parameter is None and by_severity is None:
        problems.append(
            _problem(
                severity_element,
                f"severity {info.severity} names no warning level and no "
                f"level parameter does; use Minor, Moderate, Severe or "
                f"Extreme",
            )
        )
    elif by_parameter is not None and by_severity is not None and by_parameter != by_severity:
        problems.append(
            _problem(
                severity_element,
                f"severity {info.severity} contradicts the level "
                f"parameter {named!r} ({by_parameter.severity})",
            )
        )
    return info


def _references(element: etree._Element, problems: list[Problem]) -> tuple[Reference, ...]:
    found: list[Reference] = []
    for token in (element.text or "").split():
        parts = token.split(",")
        if len(parts) != 3 or not all(parts) or not CAP_TIME.match(parts[2]):
            problems.append(_problem(element, f"reference {token!r} is not 'sender,identifier,sent'"))
            continue
        found.append(Reference(*parts))
    return tuple(found)


def parse(data: bytes | str) -> Alert:
    """A CAP 1.2 warning message, validated against the schema and checked for sense; CapError with
    every problem found otherwise. Only Actual Alert, Update and Cancel messages carry warnings."""
    tree = validate(data)
    root = tree.getroot()
    problems: list[Problem] = []
    for tag in ("identifier", "sender"):
        element = root.find(Q + tag)
        assert element is not None  # required by the schema
        if not (element.text or "").strip() or BAD_ID_CHARS.search((element.text or "").strip()):
            problems.append(
                _problem(element, f"{tag} {element.text!r} must be non-empty with no spaces, commas, < or &")
            )
    status_element, type_element = root.find(Q + "status"), root.find(Q + "msgType")
    assert status_element is not None and type_element is not None
    msg_type = _text(root, "msgType") or ""
    if _text(root, "status") != "Actual":
        problems.append(
            _problem(status_element, f"status {_text(root, 'status')}: only Actual messages carry warnings")
        )
    if msg_type not in ("Alert", "Update", "Cancel"):
        problems.append(
            _problem(
                type_element, f"msgType {msg_type}: only Alert, Update and Cancel messages carry warnings"
            )
        )
    references_element = root.find(Q + "references")
    references = _references(references_element, problems) if references_element is not None else ()
    if msg_type in ("Update", "Cancel") and not references:
        problems.append(
            _problem(type_element, f"an {msg_type} must reference the message(s) it changes in <references>")
        )
    sent = _time(root, "sent")
    assert sent is not None
    infos = tuple(_info(element, sent, problems) for element in _all(root, "info"))
    if msg_type in ("Alert", "Update") and not infos:
        problems.append(_problem(type_element, f"an {msg_type} without <info> says nothing about a hazard"))
    if problems:
        raise CapError(problems)
    return Alert(
        identifier=_text(root, "identifier") or "",
        sender=_text(root, "sender") or "",
        sent=_text(root, "sent") or "",
        msg_type=msg_type,
        status="Actual",
        scope=_text(root, "scope") or "Public",
        source=_text(root, "source"),
        note=_text(root, "note"),
        references=references,
        infos=infos,
        codes=tuple(c.text.strip() for c in _all(root, "code") if c.text),
    )


def division_codes(areas: Iterable[Area]) -> list[str]:
    """The Chinese division codes among the areas' geocodes, in order, once each."""
    found: list[str] = []
    for area in areas:
        for name, value in area.geocodes:
            code = value.strip()
            if name.strip().lower() in DIVISION_GEOCODES and DIVISION_CODE.match(code) and code not in found:
                found.append(code)
    return found


def geocode_for(code: str) -> tuple[str, str]:
    return (GEOCODE_GB2260 if len(code) == 6 else GEOCODE_NBS, code)


def expiry_of(info: Info, sent: datetime) -> datetime:
    """When an info stops being in force: its expires, or DEFAULT_VALIDITY after its onset/sending."""
    return info.expires or (info.onset or info.effective or sent) + DEFAULT_VALIDITY
