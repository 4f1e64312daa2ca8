"""Open311 GeoReport v2 over the case engine: public case types and their categories are the
services, cases of public types are the requests. Reporters' personal information never leaves
through this public interface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from cityops.cases import service as case_service
from cityops.cases import types as case_types
from cityops.cases.models import Case
from cityops.cases.open311.formats import w3c_datetime
from cityops.cases.schemas import CaseCreate
from cityops.cases.types import CaseType, Category, CustomField
from cityops.cases.workflow import STATES
from cityops.core.auth.models import OrgUnit, User
from cityops.core.db import utcnow
from cityops.core.errors import NotFound, ValidationFailed
from cityops.places.index import PlaceIndex

# Citizens see a request as closed once it is handled (办结) or ended otherwise.
CLOSED_STATES = frozenset({"resolved", "verified", "closed", "rejected", "merged"})
OPEN_STATES = frozenset(STATES) - CLOSED_STATES
DEFAULT_LIMIT = 1000
# Case fields by their GeoReport parameter names, for error messages.
OPEN311_NAMES = {"lon": "long", "lat": "lat", "description": "description", "reporter_phone": "phone",
                 "reporter_name": "last_name", "title": "description"}
WINDOW = timedelta(days=90)
SEPARATOR = "-"  # service_code = "<type>-<category>", e.g. "urban-garbage"

# Case custom field types as GeoReport attribute datatypes.
DATATYPES = {"string": "string", "text": "text", "integer": "number", "number": "number",
             "boolean": "singlevaluelist", "date": "datetime", "choice": "singlevaluelist"}
STATE_NOTES = {
    "reported": "已上报", "accepted": "已受理", "dispatched": "已派遣", "in_progress": "处置中",
    "resolved": "已办结", "verified": "已核查", "closed": "已结案", "returned": "已退回",
    "escalated": "已上报上级", "delegated": "已下派", "rejected": "不予受理", "merged": "已合并",
    "reopened": "已重新办理",
}
LEVEL_NOTES = {"village": "村（社区）", "township": "乡镇（街道）", "county": "县（区）", "city": "市"}


@dataclass(frozen=True)
class Service:
    code: str
    case_type: CaseType
    category: Category


def public_services() -> list[Service]:
    return [Service(f"{t.code}{SEPARATOR}{c.code}", t, c)
            for t in case_types.registry().types if t.public for c in t.all_categories()]


def find_service(code: str) -> Service:
    for svc in public_services():
        if svc.code == code:
            return svc
    raise NotFound(f"service_code {code!r} is not provided")


def service_entry(svc: Service) -> dict[str, Any]:
    return {
        "service_code": svc.code,
        "service_name": svc.category.name_zh,
        "description": f"{svc.case_type.name_zh}：{svc.category.name_zh} ({svc.category.name_en})",
        "metadata": bool(svc.case_type.fields),
        "type": "realtime",
        "keywords": [svc.case_type.code, svc.category.code],
        "group": svc.case_type.name_zh,
    }


def _attribute(field: CustomField, order: int) -> dict[str, Any]:
    values: list[dict[str, str]] = []
    if field.type == "boolean":
        values = [{"key": "true", "name": "是"}, {"key": "false", "name": "否"}]
    elif field.type == "choice" and field.options:
        values = [{"key": option, "name": option} for option in field.options]
    entry: dict[str, Any] = {
        "variable": True, "code": field.name, "datatype": DATATYPES[field.type], "required": field.required,
        "datatype_description": "YYYY-MM-DD" if field.type == "date" else "", "order": order,
        "description": f"{field.name_zh} ({field.name_en})",
    }
    if values:
        entry["values"] = values
    return entry


def service_definition(code: str) -> dict[str, Any]:
    svc = find_service(code)
    return {"service_code": svc.code,
            "attributes": [_attribute(f, i) for i, f in enumerate(svc.case_type.fields, start=1)]}


def _coerce(field: CustomField, text: str) -> Any:
    """Attribute values arrive as text; turn them into the field's type before the type's checks."""
    if field.type == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValidationFailed(f"attribute[{field.name}] must be true or false",
                                   field=f"attribute[{field.name}]")
        return text.lower() == "true"
    if field.type in ("integer", "number"):
        try:
            return int(text) if field.type == "integer" else float(text)
        except ValueError:
            raise ValidationFailed(f"attribute[{field.name}] must be a number",
                                   field=f"attribute[{field.name}]") from None
    return text


def _float(params: Mapping[str, str], name: str) -> float:
    try:
        return float(params[name])
    except (KeyError, ValueError):
        raise ValidationFailed(f"{name} must be a number of degrees (WGS84)", field=name) from None


def create_request(session: Session, *, index: PlaceIndex, params: Mapping[str, str],
                   attributes: Mapping[str, str], client: User) -> Case:
    """POST requests: a citizen report from a GeoReport client, taken in as a case."""
    code = params.get("service_code")
    if not code:
        raise ValidationFailed("service_code is required", field="service_code")
    svc = find_service(code)
    if "lat" not in params or "long" not in params:
        raise ValidationFailed("lat and long are required (this city geocodes no address_string)",
                               field="lat")
    declared = {f.name: f for f in svc.case_type.fields}
    unknown = sorted(set(attributes) - set(declared))
    if unknown:
        raise ValidationFailed(f"unknown attribute {unknown[0]!r} for service {code!r}",
                               field=f"attribute[{unknown[0]}]")
    fields = {name: _coerce(declared[name], value) for name, value in attributes.items()}
    description = params.get("description", "")
    name = " ".join(p for p in (params.get("last_name"), params.get("first_name")) if p) or None
    try:
        data = CaseCreate(type_code=svc.case_type.code, category=svc.category.code,
                          title=(description.strip()[:40] or svc.category.name_zh),
                          description=description, lon=_float(params, "long"), lat=_float(params, "lat"),
                          reporter_name=name, reporter_phone=params.get("phone") or None, source="open311",
                          fields=fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = OPEN311_NAMES.get(str(first["loc"][0]), str(first["loc"][0])) if first["loc"] else "request"
        raise ValidationFailed(f"{name}: {first['msg']}", field=name) from None
    return case_service.report_case(session, data=data, index=index, reporter=client)


def _request_entry(case: Case, svc_names: Mapping[str, str], units: Mapping[int, OrgUnit]) -> dict[str, Any]:
    unit = units.get(case.org_unit_id) if case.org_unit_id else None
    code = f"{case.type_code}{SEPARATOR}{case.category}"
    return {
        "service_request_id": case.number,
        "status": "closed" if case.status in CLOSED_STATES else "open",
        "status_notes": f"{STATE_NOTES.get(case.status, case.status)}"
                        f"（{LEVEL_NOTES.get(case.level, case.level)}）",
        "service_name": svc_names.get(code, case.category),
        "service_code": code,
        "description": case.description,
        "agency_responsible": unit.name if unit else None,
        "service_notice": None,
        "requested_datetime": w3c_datetime(case.created_at),
        "updated_datetime": w3c_datetime(case.updated_at),
        "expected_datetime": w3c_datetime(case.deadline_at),
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": case.lat,
        "long": case.lon,
        "media_url": None,
    }


def _entries(session: Session, cases: Sequence[Case]) -> list[dict[str, Any]]:
    names = {s.code: s.category.name_zh for s in public_services()}
    unit_ids = {c.org_unit_id for c in cases if c.org_unit_id}
    units = {u.id: u for u in session.scalars(select(OrgUnit).where(OrgUnit.id.in_(unit_ids)))}
    return [_request_entry(c, names, units) for c in cases]


def _public_types() -> list[str]:
    return [t.code for t in case_types.registry().types if t.public]


def get_request(session: Session, *, number: str) -> list[dict[str, Any]]:
    case = session.scalar(select(Case).where(Case.number == number, Case.public.is_(True)))
    if case is None:
        raise NotFound("no public service request has that service_request_id")
    return _entries(session, [case])


def list_requests(session: Session, *, ids: Sequence[str] = (), service_codes: Sequence[str] = (),
                  start: datetime | None = None, end: datetime | None = None, statuses: Sequence[str] = (),
                  limit: int = DEFAULT_LIMIT, now: datetime | None = None) -> list[dict[str, Any]]:
    """GET requests with the spec's filters; ids override every other filter."""
    query: Select[Case] = select(Case).where(Case.public.is_(True),
                                             Case.type_code.in_(_public_types()))
    if ids:
        query = query.where(Case.number.in_(list(ids)))
        return _entries(session, session.scalars(query.order_by(Case.id)).all())
    for status in statuses:
        if status not in ("open", "closed"):
            raise ValidationFailed(f"status must be open or closed, not {status!r}", field="status")
    if service_codes:
        pairs = [c.split(SEPARATOR, 1) for c in service_codes]
        for code, pair in zip(service_codes, pairs, strict=True):
            if len(pair) != 2:
                raise ValidationFailed(f"unknown service_code {code!r}", field="service_code")
        query = query.where(or_(*(and_(Case.type_code == t, Case.category == c) for t, c in pairs)))
    if set(statuses) == {"open"}:
        query = query.where(Case.status.in_(sorted(OPEN_STATES)))
    elif set(statuses) == {"closed"}:
        query = query.where(Case.status.in_(sorted(CLOSED_STATES)))
    # The spec's default window is the last 90 days, and no window may be longer.
    end = end or (start + WINDOW if start else (now or utcnow()))
    start = start or end - WINDOW
    if end < start:
        raise ValidationFailed("end_date is before start_date", field="end_date")
    if end - start > WINDOW:
        raise ValidationFailed("start_date and end_date may be at most 90 days apart", field="start_date")
    query = query.where(Case.created_at >= start, Case.created_at <= end)
    rows = session.scalars(query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)).all()
    return _entries(session, rows)
