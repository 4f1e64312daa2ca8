"""The entity register: credit codes checked, entities saved (idempotent on the code), imported from
the market-regulation register with a report per line, listed and read in scope.

Services flush, never commit: the request or the caller's unit of work commits. An entity is scoped by
its division (grid, village, township or county, as precisely as its place is known); the legal
representative's name and ID number are personal information, masked without pii.view, and an
unmasked read is audited."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from fastapi import Request
from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlalchemy.orm import Session

from cityops.accounts import service as accounts_service
from cityops.cases import service as cases_service
from cityops.core.auth import audit
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.pii import mask_id_number
from cityops.core.auth.roles import can_view_pii, has_permission
from cityops.core.auth.scope import authorize, can_access, scope_filter, scope_prefix
from cityops.core.db import utcnow
from cityops.core.errors import CityopsError, Conflict, Forbidden, NotFound, ValidationFailed
from cityops.core.i18n import N_, gettext_for
from cityops.core.tables import read_table
from cityops.credit import codes, industries
from cityops.credit import repository as repo
from cityops.credit.models import KINDS, STATUSES, Entity
from cityops.credit.schemas import (
    CodeCheck,
    DepartmentRef,
    EntityPage,
    EntityRead,
    EntitySummary,
    ImportProblem,
    ImportResult,
    IndustryRef,
)
from cityops.places import addresses
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

MAX_EXPORT = 200_000  # more than the city's 178,000 entities
BATCH = 5_000
MAX_IMPORT_BYTES = 64 * 2**20
WAN = 10_000  # registered capital is written in 万 (ten thousands) of its currency
# Who supervises an entity of a kind by default (besides its industry's departments), by the code's
# registration authority for "other" entities (N: rural collective economic organisations).
KIND_DEPARTMENTS = {
    "enterprise": ("market",),
    "individual": ("market",),
    "cooperative": ("market", "agriculture"),
    "social_org": ("civil-affairs",),
}
AUTHORITY_DEPARTMENTS = {"N": ("agriculture",), "5": ("civil-affairs",)}
KIND_LABELS = {
    "enterprise": N_("Enterprise"),
    "individual": N_("Individual business"),
    "cooperative": N_("Farmers' cooperative"),
    "social_org": N_("Social organisation"),
    "other": N_("Other entity"),
}
STATUS_LABELS = {
    "active": N_("In business"),
    "revoked": N_("Licence revoked"),
    "cancelled": N_("Deregistered"),
    "moved_out": N_("Moved out"),
}


# --- the credit code ----------------------------------------------------------------------------


def check_code(raw: str) -> CodeCheck:
    """Whether a text is a valid unified social credit code, what it says, or why it is not one."""
    try:
        found = codes.check(raw)
    except codes.InvalidCode as exc:
        return CodeCheck(code=codes.compact(raw or ""), valid=False, reason=exc.reason, message=exc.message)
    return CodeCheck(
        code=found.code,
        valid=True,
        authority=found.authority.name_zh,
        entity_type=found.type_names[0],
        kind=found.kind,
        division=found.division,
    )


# --- what is saved --------------------------------------------------------------------------------


@dataclass
class EntityIn:
    """An entity as a register row gives it. None: not given (a new entity gets the default, an
    existing one keeps what it has)."""

    code: str
    name: str | None = None
    kind: str | None = None
    industry: str | None = None  # GB/T 4754-2017 division, 2 digits
    capital: int | None = None
    capital_currency: str | None = None
    established_on: date | None = None
    status: str | None = None
    address: str | None = None
    lon: float | None = None
    lat: float | None = None
    legal_rep_name: str | None = None
    legal_rep_id_number: str | None = None
    departments: tuple[str, ...] | None = None  # org unit codes or names
    # Filled by save_entities: where the entity lies.
    place: dict[str, Any] = field(default_factory=dict, repr=False)


FIELDS = (
    "name",
    "kind",
    "industry",
    "capital",
    "capital_currency",
    "established_on",
    "status",
    "address",
    "lon",
    "lat",
    "legal_rep_name",
    "legal_rep_id_number",
)
COLUMN_OF = {"industry": "industry_code"}


def _check_manage(actor: User | None) -> None:
    if actor is not None and not has_permission(actor, "credit.manage"):
        raise Forbidden("your role may not change the entity register (needs permission 'credit.manage')")


def _check_view(viewer: User | None) -> None:
    if viewer is not None and not has_permission(viewer, "credit.view"):
        raise Forbidden("your role may not see the entity register (needs permission 'credit.view')")


def _place_by_point(items: Sequence[EntityIn], index: PlaceIndex) -> dict[int, CityopsError]:
    """Grid, village and division of every item with a point (one vectorised lookup); errors by item."""
    errors: dict[int, CityopsError] = {}
    pointed = [
        (i, item.lon, item.lat)
        for i, item in enumerate(items)
        if item.lon is not None and item.lat is not None
    ]
    if not pointed:
        return errors
    hits = places_service.lookup_points(index, lon=[p[1] for p in pointed], lat=[p[2] for p in pointed])
    for n, (i, _lon, _lat) in enumerate(pointed):
        grid, village = hits.grid[n], hits.village[n]
        if village is None:
            errors[i] = ValidationFailed(
                f"point ({items[i].lon}, {items[i].lat}) lies outside the city (WGS84 longitude, latitude)",
                field="lon",
            )
            continue
        items[i].place = {
            "grid_code": grid,
            "village_code": village,
            "division_code": grid or village,
            "located_by": "point",
        }
    return errors


def _place_by_address(item: EntityIn, index: PlaceIndex) -> None:
    found = addresses.match_address(index, item.address or "")
    if found is not None:
        item.place = {
            "grid_code": found.grid_code,
            "village_code": found.village_code,
            "division_code": found.grid_code or found.division_code,
            "located_by": "address",
            "lon": None,
            "lat": None,
        }


@lru_cache(maxsize=1024)
def _default_departments(kind: str, authority: str, industry: str | None) -> tuple[str, ...]:
    """The org unit codes of the departments that supervise a new entity unless told otherwise."""
    slugs = (
        *KIND_DEPARTMENTS.get(kind, ()),
        *AUTHORITY_DEPARTMENTS.get(authority, ()),
        *industries.registry().departments(industry),
    )
    return tuple(f"dept-{s}" for s in dict.fromkeys(slugs))


def _values(item: EntityIn) -> dict[str, Any]:
    """The columns an item gives (not None), by column name."""
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(item, name)
        if value is not None:
            out[COLUMN_OF.get(name, name)] = value
    if item.industry is not None:
        out["industry_section"] = industries.registry().division(item.industry).section
    out.update(item.place)
    return out


@dataclass
class _Writes:
    """What a batch of items writes: new rows with their departments, changes, department sets replaced."""

    created: list[tuple[dict[str, Any], list[int]]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    relinked: dict[int, list[int]] = field(default_factory=dict)

    def write(self, session: Session) -> None:
        if self.created:
            ids = repo.insert_entities(session, [_full_row(values) for values, _units in self.created])
            links = {ids[values["code"]]: units for values, units in self.created if units}
            repo.replace_departments(session, links, fresh=True)
        repo.update_entities(session, self.changed)
        repo.replace_departments(session, self.relinked)


def _department_ids(item: EntityIn, old: Entity | None, units: dict[str, OrgUnit]) -> list[int] | None:
    """The org units that are to supervise the entity: those the item names, a new entity's defaults,
    or None (an existing entity keeps its own)."""
    if item.departments is not None:
        unknown = [d for d in item.departments if d not in units]
        if unknown:
            raise ValidationFailed(
                f"unknown department {unknown[0]!r} (give a department's code, e.g. dept-market, or its full "
                "name)",
                field="departments",
            )
        return [units[d].id for d in item.departments]
    if old is not None:
        return None
    defaults = _default_departments(codes.kind_of(item.code), item.code[0], item.industry)
    return [units[d].id for d in defaults if d in units]


def _plan_item(
    session: Session,
    item: EntityIn,
    old: Entity | None,
    units: dict[str, OrgUnit],
    writes: _Writes,
    *,
    actor: User | None,
    synthetic: bool,
    now: datetime,
) -> str:
    """Add what one item writes to `writes`; its outcome, or the error refusing it (nothing added)."""
    values = _values(item)
    if old is None and "division_code" not in values:
        values.update(division_code=item.code[2:8], located_by="code")  # the registration division
    if actor is not None:
        if old is not None:
            authorize(
                actor, division_code=old.division_code, resource="entity", resource_id=item.code, hide=False
            )
        division = values.get("division_code", old.division_code if old else None)
        authorize(actor, division_code=division, resource="division", resource_id=division, hide=False)
    unit_ids = _department_ids(item, old, units)
    if old is None:
        if not item.name:
            raise ValidationFailed("a new entity needs its name", field="name")
        values.update(
            code=item.code, kind=codes.kind_of(item.code), synthetic=synthetic, created_at=now, updated_at=now
        )
        writes.created.append((values, unit_ids or []))
        return "created"
    diff = {k: v for k, v in values.items() if getattr(old, k) != v}
    relinked = unit_ids is not None and set(unit_ids) != {
        u.id for u in repo.departments_of(session, [old.id])[old.id]
    }
    if relinked and unit_ids is not None:
        writes.relinked[old.id] = unit_ids
    if diff:
        writes.changed.append({"id": old.id, **diff, "updated_at": now})
    return "updated" if diff or relinked else "unchanged"


def save_entities(
    session: Session,
    *,
    items: Sequence[EntityIn],
    index: PlaceIndex,
    actor: User | None,
    synthetic: bool = False,
    now: datetime | None = None,
) -> list[str | CityopsError]:
    """Create or update the entities of the items, keyed by their credit code (each already checked).
    Per item "created", "updated", "unchanged" or the error refusing it (the others are saved): a code
    given twice, a point outside the city, a division outside the actor's scope, an unknown
    department. The place comes from the point, else from the address's divisions, else (a new entity)
    from the code's registration division."""
    _check_manage(actor)
    now = now or utcnow()
    errors = _place_by_point(items, index)
    existing = repo.by_codes(session, (item.code for item in items))
    wanted_units: set[str] = set()
    for i, item in enumerate(items):
        old = existing.get(item.code)
        if (
            i not in errors
            and not item.place
            and item.address
            and (old is None or item.address != old.address)
        ):
            _place_by_address(item, index)
        if item.departments is not None:
            wanted_units.update(item.departments)
        elif old is None:
            wanted_units.update(_default_departments(codes.kind_of(item.code), item.code[0], item.industry))
    units = repo.departments_by_code_or_name(session, wanted_units)
    writes = _Writes()
    seen: set[str] = set()
    outcomes: list[str | CityopsError] = []
    for i, item in enumerate(items):
        try:
            if i in errors:
                raise errors[i]
            if item.code in seen:
                raise Conflict(f"code {item.code} is given twice", field="code")
            seen.add(item.code)
            outcomes.append(
                _plan_item(
                    session,
                    item,
                    existing.get(item.code),
                    units,
                    writes,
                    actor=actor,
                    synthetic=synthetic,
                    now=now,
                )
            )
        except CityopsError as exc:
            outcomes.append(exc)
    writes.write(session)
    return outcomes


def _full_row(values: dict[str, Any]) -> dict[str, Any]:
    """A new entity's row with every column (one executemany needs the same keys in every row)."""
    defaults: dict[str, Any] = {
        "industry_code": None,
        "industry_section": None,
        "capital": None,
        "capital_currency": "CNY",
        "established_on": None,
        "status": "active",
        "address": "",
        "lon": None,
        "lat": None,
        "grid_code": None,
        "village_code": None,
        "legal_rep_name": "",
        "legal_rep_id_number": None,
    }
    return {**defaults, **values}


# --- import from the market-regulation register --------------------------------------------------------

IMPORT_COLUMNS = {
    "统一社会信用代码": "code",
    "社会信用代码": "code",
    "信用代码": "code",
    "名称": "name",
    "主体名称": "name",
    "企业名称": "name",
    "市场主体名称": "name",
    "单位名称": "name",
    "类型": "kind",
    "主体类型": "kind",
    "市场主体类型": "kind",
    "企业类型": "kind",
    "行业": "industry",
    "行业代码": "industry",
    "所属行业": "industry",
    "国民经济行业": "industry",
    "注册资本": "capital",
    "注册资本（万元）": "capital",
    "注册资金": "capital",
    "资金数额": "capital",
    "成立日期": "established",
    "注册日期": "established",
    "登记状态": "status",
    "经营状态": "status",
    "状态": "status",
    "住所": "address",
    "经营场所": "address",
    "住所（经营场所）": "address",
    "地址": "address",
    "经度": "lon",
    "纬度": "lat",
    "法定代表人": "legal_rep",
    "负责人": "legal_rep",
    "经营者": "legal_rep",
    "法定代表人（负责人、经营者）": "legal_rep",
    "证件号码": "legal_rep_id",
    "身份证号码": "legal_rep_id",
    "法定代表人证件号码": "legal_rep_id",
    "监管部门": "departments",
    "主管部门": "departments",
}
# Words of the register's type column, most specific first: 民办非企业单位 is no 企业, 股份经济合作社 (a
# rural collective, code N) no 农民专业合作社, 吊销未注销 is revoked.
KIND_WORDS = (
    ("个体", "individual"),
    ("经济合作社", "other"),
    ("集体经济", "other"),
    ("合作社", "cooperative"),
    ("民办非企业", "social_org"),
    ("社会团体", "social_org"),
    ("基金会", "social_org"),
    ("社会组织", "social_org"),
    ("公司", "enterprise"),
    ("企业", "enterprise"),
    ("合伙", "enterprise"),
    ("其他", "other"),
)
STATUS_WORDS = (
    ("吊销", "revoked"),
    ("注销", "cancelled"),
    ("迁出", "moved_out"),
    ("存续", "active"),
    ("在业", "active"),
    ("开业", "active"),
    ("在营", "active"),
    ("正常", "active"),
)
CURRENCIES = {
    "": "CNY",
    "人民币": "CNY",
    "美元": "USD",
    "港元": "HKD",
    "港币": "HKD",
    "欧元": "EUR",
    "日元": "JPY",
}
CAPITAL = re.compile(
    r"^(?P<amount>\d+(?:\.\d+)?)(?P<wan>万)?(?P<yuan>元)?(?P<currency>人民币|美元|港元|港币|欧元|日元)?$"
)
DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$|^(\d{4})(\d{2})(\d{2})$")
SPLIT = re.compile(r"[,，、;；\n]+")


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _by_words(value: str, known: Sequence[str], words: Sequence[tuple[str, str]]) -> str | None:
    """A code as given, or the code of the first word the text contains."""
    if value in known:
        return value
    return next((code for word, code in words if word in value), None)


def parse_kind(value: str) -> str:
    found = _by_words(value, KINDS, KIND_WORDS)
    if found is None:
        raise ValidationFailed(
            f"unknown entity type {value!r} (e.g. 有限责任公司, 个体工商户, 农民专业合作社, 社会团体)",
            field="kind",
        )
    return found


def parse_status(value: str) -> str:
    found = _by_words(value, STATUSES, STATUS_WORDS)
    if found is None:
        raise ValidationFailed(f"unknown status {value!r}: 存续（在业）, 吊销, 注销 or 迁出", field="status")
    return found


def parse_capital(value: Any) -> tuple[int, str]:
    """Registered capital in units of its currency: 100 (万元, as registers write it), "100万元",
    "50万美元", "300000元"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        amount, wan, currency = float(value), True, "CNY"
    else:
        text = cell_text(value).replace(",", "").replace(" ", "")
        match = CAPITAL.match(text)
        if not match:
            raise ValidationFailed(
                f"{text!r} is not an amount (e.g. 100, 100万元, 50万美元)", field="capital"
            )
        amount, currency = float(match["amount"]), CURRENCIES[match["currency"] or ""]
        wan = bool(match["wan"]) or not match["yuan"]
    units = round(amount * (WAN if wan else 1))
    if units > 10**15:
        raise ValidationFailed(f"{cell_text(value)!r} is too large for a registered capital", field="capital")
    return units, currency


def parse_date(value: Any, *, today: date) -> date:
    if isinstance(value, datetime):
        found = value.date()
    elif isinstance(value, date):
        found = value
    else:
        text = cell_text(value)
        match = DATE.match(text)
        try:
            if not match:
                raise ValueError
            year, month, day = (int(g) for g in (match.groups()[:3] if match[1] else match.groups()[3:]))
            found = date(year, month, day)
        except ValueError:
            raise ValidationFailed(
                f"{text!r} is not a date (e.g. 2015-03-02 or 2015年3月2日)", field="established"
            ) from None
    if found > today or found.year < 1900:
        raise ValidationFailed(f"{found.isoformat()} cannot be an establishment date", field="established")
    return found


def parse_row(row: dict[str, Any], *, today: date) -> EntityIn:
    """An EntityIn from a register row (columns as IMPORT_COLUMNS names them); ValidationFailed naming
    the field otherwise. Empty cells are not given."""
    text = {k: cell_text(v) for k, v in row.items()}
    found = codes.check(text.get("code", ""))
    item = EntityIn(code=found.code)
    name = text.get("name", "")
    if len(name) > 200:
        raise ValidationFailed("the name is longer than 200 characters", field="name")
    item.name = name or None
    if text.get("kind"):
        kind = parse_kind(text["kind"])
        if kind != found.kind:
            raise ValidationFailed(
                f"type {text['kind']!r} does not agree with the code, whose characters 1-2 "
                f"({found.code[:2]}) make it {found.type_names[0]}",
                field="kind",
            )
        item.kind = kind
    if text.get("industry"):
        item.industry = industries.registry().parse(text["industry"]).code
    if text.get("capital"):
        item.capital, item.capital_currency = parse_capital(row["capital"])
    if text.get("established"):
        item.established_on = parse_date(row["established"], today=today)
    if text.get("status"):
        item.status = parse_status(text["status"])
    if text.get("address"):
        if len(text["address"]) > 300:
            raise ValidationFailed("the address is longer than 300 characters", field="address")
        item.address = text["address"]
    if text.get("lon") or text.get("lat"):
        try:
            item.lon, item.lat = float(text.get("lon", "")), float(text.get("lat", ""))
        except ValueError:
            raise ValidationFailed("lon and lat must both be numbers (WGS84 degrees)", field="lon") from None
        places_service.validate_coordinates(item.lon, item.lat)
    if text.get("legal_rep"):
        if len(text["legal_rep"]) > 60:
            raise ValidationFailed(
                "the legal representative's name is longer than 60 characters", field="legal_rep"
            )
        item.legal_rep_name = text["legal_rep"]
    if text.get("legal_rep_id"):
        try:
            item.legal_rep_id_number = accounts_service.validate_id_number(text["legal_rep_id"])
        except ValidationFailed as exc:
            raise ValidationFailed(
                exc.message.replace("id_number", "the legal representative's ID number"), field="legal_rep_id"
            ) from None
    if text.get("departments"):
        item.departments = tuple(d.strip() for d in SPLIT.split(text["departments"]) if d.strip())
    return item


def import_entities(
    session: Session,
    *,
    data: bytes,
    filename: str,
    index: PlaceIndex,
    actor: User | None,
    request: Request | None = None,
    today: date | None = None,
) -> ImportResult:
    """Create or update the entities of a CSV or Excel export of the market-regulation register (see
    IMPORT_COLUMNS; the code is required, the name for a new entity). A row is saved whole or not at
    all: a refused row is reported with its line, field and reason, the others are saved. The same
    file again changes nothing."""
    _check_manage(actor)
    today = today or utcnow().date()
    problems: list[tuple[int, str, str]] = []
    parsed: list[tuple[int, EntityIn]] = []
    first_line: dict[str, int] = {}
    for line, row in read_table(data, filename, aliases=IMPORT_COLUMNS):
        try:
            item = parse_row(row, today=today)
        except CityopsError as exc:
            problems.append((line, exc.field or "", exc.message))
            continue
        if item.code in first_line:
            problems.append((line, "code", f"code {item.code} is already on line {first_line[item.code]}"))
            continue
        first_line[item.code] = line
        parsed.append((line, item))
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for start in range(0, len(parsed), BATCH):
        part = parsed[start : start + BATCH]
        outcomes = save_entities(session, items=[item for _line, item in part], index=index, actor=actor)
        for (line, _item), outcome in zip(part, outcomes, strict=True):
            if isinstance(outcome, CityopsError):
                problems.append((line, outcome.field or "", outcome.message))
            else:
                counts[outcome] += 1
    session.flush()
    if actor is not None:
        audit.record(
            session,
            actor,
            "update",
            "credit_entities",
            None,
            request=request,
            detail={"import": filename[:100], **counts, "rejected": len(problems)},
        )
    return ImportResult(
        **counts,
        rejected=[ImportProblem(line=line, field=f, reason=reason) for line, f, reason in sorted(problems)],
    )


# --- reading --------------------------------------------------------------------------------------


def industry_ref(entity: Entity, locale: str) -> IndustryRef | None:
    if entity.industry_code is None:
        return None
    registry = industries.registry()
    division = registry.division(entity.industry_code)
    return IndustryRef(
        code=division.code,
        section=division.section,
        name=division.name(locale),
        section_name=registry.sections[division.section].name(locale),
    )


def _summary_values(entity: Entity, *, pii_visible: bool, locale: str) -> dict[str, Any]:
    return {
        "id": entity.id,
        "code": entity.code,
        "name": entity.name,
        "kind": entity.kind,
        "industry": industry_ref(entity, locale),
        "status": entity.status,
        "capital": entity.capital,
        "capital_currency": entity.capital_currency,
        "established_on": entity.established_on,
        "division_code": entity.division_code,
        "grid_code": entity.grid_code,
        "legal_rep_name": entity.legal_rep_name
        if pii_visible
        else cases_service.mask_name(entity.legal_rep_name) or "",
        "synthetic": entity.synthetic,
    }


def _scope(viewer: User) -> ColumnElement[bool]:
    """The entities a user may see: those in the user's divisions, and those the user's department
    supervises (a department's staff work city-wide, without a division scope)."""
    division = scope_filter(viewer, Entity.division_code)
    if viewer.org_unit_id is None or not viewer.is_active:
        return division
    if viewer.scope_code:
        # Most rows pass on their division (an index range); the department is asked for the others only.
        return or_(division, repo.supervised_exists(viewer.org_unit_id))
    # Without a division scope the department's entities drive the query (a short list by its index).
    return or_(division, Entity.id.in_(repo.supervised_by(viewer.org_unit_id)))


def visible_entity(session: Session, *, viewer: User | None, entity_id: int) -> Entity:
    """The entity if the viewer may see it; outside the scope it answers 404 like a missing one."""
    _check_view(viewer)
    entity = session.get(Entity, entity_id)
    if entity is None or (
        viewer is not None
        and not can_access(viewer, division_code=entity.division_code)
        and not (
            viewer.is_active
            and viewer.org_unit_id is not None
            and repo.supervises(session, viewer.org_unit_id, entity_id)
        )
    ):
        raise NotFound(f"entity {entity_id} not found")
    return entity


def get_entity(
    session: Session,
    *,
    viewer: User | None,
    entity_id: int,
    index: PlaceIndex | None = None,
    locale: str = "zh",
    request: Request | None = None,
) -> EntityRead:
    """One entity in the viewer's scope (404 outside it), its legal representative masked without
    pii.view; an unmasked read of them is audited."""
    entity = visible_entity(session, viewer=viewer, entity_id=entity_id)
    visible = viewer is None or can_view_pii(viewer)
    if viewer is not None and visible and (entity.legal_rep_name or entity.legal_rep_id_number):
        audit.record(
            session,
            viewer,
            "pii_read",
            "credit_entity",
            entity.id,
            division_code=entity.division_code,
            request=request,
            detail={"fields": ["legal_rep_name", "legal_rep_id_number"]},
        )
    units = repo.departments_of(session, [entity.id])[entity.id]
    return EntityRead(
        **_summary_values(entity, pii_visible=visible, locale=locale),
        address=entity.address,
        lon=entity.lon,
        lat=entity.lat,
        village_code=entity.village_code,
        located_by=entity.located_by,
        division_name=index.names.get(entity.division_code) if index is not None else None,
        legal_rep_id_number=entity.legal_rep_id_number
        if visible
        else mask_id_number(entity.legal_rep_id_number),
        pii_visible=visible,
        departments=[DepartmentRef(id=u.id, code=u.code, name=u.name) for u in units],
        code_check=check_code(entity.code),
        created_at=entity.created_at,
        updated_at=entity.updated_at,
    )


@dataclass(frozen=True)
class Filters:
    """The list's filters (None: any)."""

    kind: str | None = None
    section: str | None = None
    industry: str | None = None
    status: str | None = None
    division: str | None = None
    q: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def visibility_condition(viewer: User | None, filters: Filters) -> ColumnElement[bool]:
    _check_view(viewer)
    conditions = [_scope(viewer) if viewer is not None else true()]
    if filters.kind:
        if filters.kind not in KINDS:
            raise ValidationFailed(f"unknown kind {filters.kind!r}; known: {', '.join(KINDS)}", field="kind")
        conditions.append(Entity.kind == filters.kind)
    if filters.section:
        if filters.section not in industries.registry().sections:
            raise ValidationFailed(f"unknown industry section {filters.section!r} (A-T)", field="section")
        conditions.append(Entity.industry_section == filters.section)
    if filters.industry:
        if filters.industry not in industries.registry().divisions:
            raise ValidationFailed(
                f"unknown industry division {filters.industry!r} (01-97)", field="industry"
            )
        conditions.append(Entity.industry_code == filters.industry)
    if filters.status:
        if filters.status not in STATUSES:
            raise ValidationFailed(
                f"unknown status {filters.status!r}; known: {', '.join(STATUSES)}", field="status"
            )
        conditions.append(Entity.status == filters.status)
    if filters.division:
        try:
            prefix = scope_prefix(filters.division)
        except ValueError:
            raise ValidationFailed(
                f"{filters.division!r} is not a division or grid code", field="division"
            ) from None
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        conditions.append(and_(Entity.division_code >= prefix, Entity.division_code < upper))
    if filters.q is not None:
        q = filters.q.strip()
        conditions.append(
            or_(Entity.name.contains(q, autoescape=True), Entity.code == codes.compact(q)) if q else false()
        )
    return and_(*conditions)


def list_entities(
    session: Session,
    *,
    viewer: User | None,
    filters: Filters = Filters(),
    limit: int = 50,
    offset: int = 0,
    locale: str = "zh",
) -> EntityPage:
    """Entities in the viewer's scope, newest registrations first; legal representatives masked."""
    condition = visibility_condition(viewer, filters)
    rows = repo.page(session, condition, limit=limit, offset=offset)
    return EntityPage(
        items=[EntitySummary(**_summary_values(e, pii_visible=False, locale=locale)) for e in rows],
        total=repo.count(session, condition),
        limit=limit,
        offset=offset,
    )


EXPORT_HEADERS = (
    N_("Credit code"),
    N_("Entity name"),
    N_("Entity kind"),
    N_("Industry section"),
    N_("Industry"),
    N_("Registered capital (10,000)"),
    N_("Currency"),
    N_("Established"),
    N_("Registration status"),
    N_("Registered address"),
    N_("Division"),
    N_("Grid"),
    N_("Legal representative"),
)


def export_headers(locale: str) -> list[str]:
    translate = gettext_for(locale).gettext
    return [translate(h) for h in EXPORT_HEADERS]


def export_rows(
    session: Session, *, viewer: User | None, filters: Filters = Filters(), locale: str = "zh"
) -> Iterator[list[Any]]:
    """Every entity of the filtered list (masked like the list), for the Excel export, with kinds,
    statuses and industries named in the reader's language."""
    condition = visibility_condition(viewer, filters)
    translate = gettext_for(locale).gettext
    labels = {code: translate(label) for code, label in (*KIND_LABELS.items(), *STATUS_LABELS.items())}
    registry = industries.registry()
    for e in repo.stream(session, condition, limit=MAX_EXPORT):
        division = registry.divisions.get(e.industry_code or "")
        yield [
            e.code,
            e.name,
            labels.get(e.kind, e.kind),
            e.industry_section or "",
            f"{division.code} {division.name(locale)}" if division else "",
            e.capital / WAN if e.capital is not None else None,
            e.capital_currency,
            e.established_on,
            labels.get(e.status, e.status),
            e.address,
            e.division_code,
            e.grid_code or "",
            cases_service.mask_name(e.legal_rep_name) or "",
        ]
