"""Credit records from departments' systems (公共信用信息归集): licences, administrative penalties,
abnormal-operation listings, serious dishonesty lists, court enforcement, tax credit grades, arrears,
honours and credit commitments.

A department's system sends a batch of records under its own record ids; the batch is idempotent on
(source, source_record_id): a retry updates what changed instead of adding a record twice, and the
answer says which records were created, updated or unchanged.

A batch is all or nothing: every record is checked first (its kind's rules, the entity, the department)
and if any is refused, the answer lists each refused record with its index (the file's line for an
import) and field, and nothing of the batch is stored. A sender then fixes those records and sends the
same batch again, which is safe because of the idempotency.

Publication ends by itself: `end_publicity` (a scheduled job) turns active records whose publicity
period is over into `ended`. Services flush, never commit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityops.core.auth import audit
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.roles import has_permission
from cityops.core.db import Database, table_of, utcnow
from cityops.core.errors import CityopsError, Conflict, Forbidden, ValidationFailed
from cityops.core.i18n import N_
from cityops.core.scheduler import Job
from cityops.core.tables import read_table
from cityops.credit import codes, service
from cityops.credit import repository as repo
from cityops.credit.models import PENALTY_SEVERITIES, RECORD_KINDS, RECORD_STATUSES, CreditRecord, Entity

# Decisions and publicity periods are dates in China: "today" is the date in Beijing, not in UTC.
CHINA = ZoneInfo("Asia/Shanghai")
MAX_BATCH = 5_000  # records per API call; an import file is cut into batches of this size
CHUNK = 2_000  # keys per IN (...) list
MAX_DETAILS = 4_000  # characters of a record's details as JSON
TAX_GRADES = ("A", "B", "M", "C", "D")  # 纳税信用级别
SOURCE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
# The longest publicity of a penalty by severity (national rules on credit repair): a minor one may stay
# unpublished and at most 3 months, a general one 3 months to a year, a serious one 1 to 3 years.
PUBLICITY = {
    "minor": (None, 92),
    "general": (90, 366),
    "serious": (365, 3 * 366),
}
# Listings and other records: a publicity period longer than this is surely a typing error.
MAX_PUBLICITY_DAYS = 10 * 366
KIND_LABELS = {
    "licence": N_("Licence"),
    "penalty": N_("Administrative penalty"),
    "abnormal": N_("Abnormal operations listing"),
    "dishonest": N_("Serious dishonesty list"),
    "enforcement": N_("Court enforcement"),
    "tax_grade": N_("Tax credit grade"),
    "arrears": N_("Arrears"),
    "honour": N_("Honour"),
    "commitment": N_("Credit commitment"),
}
SEVERITY_LABELS = {
    "minor": N_("Minor offence"),
    "general": N_("General offence"),
    "serious": N_("Serious offence"),
}
RECORD_STATUS_LABELS = {
    "active": N_("In force"),
    "ended": N_("Publication ended"),
    "repaired": N_("Repaired"),
    "revoked": N_("Withdrawn by its department"),
}
# What the public page shows: kinds that are public information, each while it is in force and (for
# penalties) within its publicity period; never personal information, the score or the risk class.
PUBLIC_KINDS = ("licence", "penalty", "abnormal", "commitment", "honour")


def today_of(now: datetime) -> date:
    return now.astimezone(CHINA).date()


# --- what a department sends --------------------------------------------------------------------


class RecordIn(BaseModel):
    """One record as a department's system sends it."""

    entity_code: str
    kind: str
    source_record_id: str
    title: str
    decided_on: date
    severity: str | None = None
    grade: str | None = None
    amount: int | None = None
    valid_until: date | None = None
    publicity_until: date | None = None
    status: str = "active"
    # The responsible department's org unit code or name; by default the sender's own department.
    department: str | None = None
    details: dict[str, Any] = {}


class RecordBatch(BaseModel):
    source: str
    records: list[RecordIn]


class RecordProblem(BaseModel):
    index: int  # the record's place in the batch (from 0), or the file's line for an import
    field: str
    reason: str


class RecordOutcome(BaseModel):
    index: int
    source_record_id: str
    id: int | None
    outcome: str  # created, updated or unchanged


class RecordsResult(BaseModel):
    source: str
    created: int
    updated: int
    unchanged: int
    items: list[RecordOutcome]


class RecordRead(BaseModel):
    id: int
    kind: str
    source: str
    source_record_id: str
    department: str | None
    title: str
    severity: str | None
    grade: str | None
    amount: int | None
    decided_on: date
    valid_until: date | None
    publicity_until: date | None
    status: str
    public: bool  # shown on the entity's public page today
    details: dict[str, Any]
    synthetic: bool


class RecordList(BaseModel):
    entity_code: str
    items: list[RecordRead]


class BatchRefused(ValidationFailed):
    """Records of a batch refused: nothing of the batch was stored. `problems` names each one."""

    def __init__(self, problems: Sequence[RecordProblem], *, what: str = "record") -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"{len(problems)} {what}{'s' if len(problems) > 1 else ''} refused, nothing of the batch was "
            f"stored: {what} {first.index}: {first.field}: {first.reason}{more}",
            field=first.field,
            detail={"errors": [p.model_dump() for p in problems]},
        )
        self.problems = list(problems)


# --- checks ---------------------------------------------------------------------------------------


def _fail(message: str, field: str) -> ValidationFailed:
    return ValidationFailed(message, field=field)


def check_source(source: str) -> str:
    source = (source or "").strip()
    if not SOURCE.match(source):
        raise _fail(
            f"source {source!r} must be 1-40 lowercase letters, digits, '.', '_' or '-' naming the sending "
            "system (e.g. hebi-samr-penalty)",
            "source",
        )
    return source


def _check_publicity(item: RecordIn) -> None:
    until = item.publicity_until
    if item.kind == "penalty":
        assert item.severity is not None
        least, most = PUBLICITY[item.severity]
        if until is None:
            if least is not None:
                raise _fail(
                    f"a {item.severity} penalty needs its publicity_until (publicity period)",
                    "publicity_until",
                )
            return
        days = (until - item.decided_on).days
        if days < 0:
            raise _fail("publicity_until is before decided_on", "publicity_until")
        if days > most:
            raise _fail(
                f"a {item.severity} penalty is published at most {most // 30} months ({days} days given)",
                "publicity_until",
            )
        if least is not None and days < least:
            raise _fail(
                f"a {item.severity} penalty is published at least {least // 30} months ({days} days given)",
                "publicity_until",
            )
        return
    if until is not None:
        if until < item.decided_on:
            raise _fail("publicity_until is before decided_on", "publicity_until")
        if (until - item.decided_on).days > MAX_PUBLICITY_DAYS:
            raise _fail("publicity_until is more than 10 years after decided_on", "publicity_until")


def check_record(item: RecordIn, *, today: date) -> RecordIn:
    """The record cleaned (codes compacted, text stripped) or ValidationFailed naming its field."""
    item = item.model_copy()
    try:
        item.entity_code = codes.check(item.entity_code).code
    except codes.InvalidCode as exc:
        raise _fail(exc.message, "entity_code") from None
    if item.kind not in RECORD_KINDS:
        raise _fail(f"unknown kind {item.kind!r}; known: {', '.join(RECORD_KINDS)}", "kind")
    item.source_record_id = item.source_record_id.strip()
    if not 1 <= len(item.source_record_id) <= 80:
        raise _fail("source_record_id must have 1-80 characters", "source_record_id")
    item.title = item.title.strip()
    if not 1 <= len(item.title) <= 200:
        raise _fail("title must have 1-200 characters", "title")
    if item.decided_on > today:
        raise _fail(f"decided_on {item.decided_on.isoformat()} is in the future", "decided_on")
    if item.decided_on.year < 1949:
        raise _fail(f"decided_on {item.decided_on.isoformat()} is too early", "decided_on")
    if item.kind == "penalty":
        if item.severity not in PENALTY_SEVERITIES:
            raise _fail(f"a penalty needs its severity: {', '.join(PENALTY_SEVERITIES)}", "severity")
    elif item.severity is not None:
        raise _fail("only a penalty has a severity", "severity")
    if item.kind == "tax_grade":
        item.grade = (item.grade or "").strip().upper() or None
        if item.grade not in TAX_GRADES:
            raise _fail(f"a tax_grade record needs its grade: {', '.join(TAX_GRADES)}", "grade")
    elif item.grade is not None:
        raise _fail("only a tax_grade record has a grade", "grade")
    if item.amount is not None and not 0 <= item.amount <= 10**15:
        raise _fail("amount must be 0 or more yuan", "amount")
    if item.valid_until is not None and item.valid_until < item.decided_on:
        raise _fail("valid_until is before decided_on", "valid_until")
    _check_publicity(item)
    if item.status not in RECORD_STATUSES:
        raise _fail(f"unknown status {item.status!r}; known: {', '.join(RECORD_STATUSES)}", "status")
    if len(json.dumps(item.details, ensure_ascii=False, default=str)) > MAX_DETAILS:
        raise _fail(f"details are longer than {MAX_DETAILS} characters as JSON", "details")
    if item.department is not None:
        item.department = item.department.strip() or None
    return item


# --- saving ---------------------------------------------------------------------------------------

COLUMNS = (
    "entity_id",
    "kind",
    "org_unit_id",
    "title",
    "severity",
    "grade",
    "amount",
    "decided_on",
    "valid_until",
    "publicity_until",
    "status",
    "details",
)


@dataclass
class _Plan:
    new: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    changed: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    same: list[tuple[int, int]] = field(default_factory=list)


def _check_report(actor: User | None) -> None:
    if actor is not None and not has_permission(actor, "credit.report"):
        raise Forbidden("your role may not report credit records (needs permission 'credit.report')")


def entity_ids(session: Session, codes_: Iterable[str]) -> dict[str, int]:
    wanted = list(dict.fromkeys(codes_))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start : start + CHUNK]
        found.update(
            (c, i) for c, i in session.execute(select(Entity.code, Entity.id).where(Entity.code.in_(part)))
        )
    return found


def _existing(session: Session, source: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    table = table_of(CreditRecord)
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        query = select(table.c.id, table.c.source_record_id, *(table.c[c] for c in COLUMNS)).where(
            table.c.source == source, table.c.source_record_id.in_(part)
        )
        for row in session.execute(query).mappings():
            out[row["source_record_id"]] = dict(row)
    return out


def _resolve(
    session: Session, items: Sequence[RecordIn], actor: User | None, problems: list[RecordProblem]
) -> tuple[dict[str, int], dict[str, OrgUnit]]:
    """Entity ids by code and departments by code or name; unknown ones added to the problems."""
    ids = entity_ids(session, (i.entity_code for i in items))
    units = repo.departments_by_code_or_name(session, {i.department for i in items if i.department})
    for n, item in enumerate(items):
        if item.entity_code not in ids:
            problems.append(
                RecordProblem(
                    index=n,
                    field="entity_code",
                    reason=f"no entity with credit code {item.entity_code} in the register",
                )
            )
        elif item.department is not None and item.department not in units:
            problems.append(
                RecordProblem(
                    index=n,
                    field="department",
                    reason=f"unknown department {item.department!r} (give its code, e.g. "
                    "dept-market, or its full name)",
                )
            )
        elif (
            item.department is not None
            and actor is not None
            and actor.org_unit_id is not None
            and not has_permission(actor, "credit.manage")
            and units[item.department].id != actor.org_unit_id
        ):
            problems.append(
                RecordProblem(
                    index=n,
                    field="department",
                    reason="a department's system reports its own department's records only",
                )
            )
    return ids, units


def _row(item: RecordIn, entity_id: int, unit_id: int | None) -> dict[str, Any]:
    return {
        "entity_id": entity_id,
        "kind": item.kind,
        "org_unit_id": unit_id,
        "title": item.title,
        "severity": item.severity,
        "grade": item.grade,
        "amount": item.amount,
        "decided_on": item.decided_on,
        "valid_until": item.valid_until,
        "publicity_until": item.publicity_until,
        "status": item.status,
        "details": item.details,
    }


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return all(_normal(old[c]) == _normal(new[c]) for c in COLUMNS)


def _normal(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 10 and value[4] == "-":  # a date read back as text
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    return value


def save_records(
    session: Session,
    *,
    source: str,
    items: Sequence[RecordIn],
    actor: User | None,
    today: date | None = None,
    now: datetime | None = None,
    synthetic: bool = False,
    request: Request | None = None,
    index_of: Sequence[int] | None = None,
) -> RecordsResult:
    """Create or update a batch of records of one sending system, keyed by (source, source_record_id);
    all or nothing: BatchRefused lists every refused record (by its index, or `index_of[i]`, e.g. the
    file's line) and nothing is stored."""
    _check_report(actor)
    source = check_source(source)
    now = now or utcnow()
    today = today or today_of(now)
    where = list(index_of) if index_of is not None else list(range(len(items)))
    problems: list[RecordProblem] = []
    cleaned: list[RecordIn] = []
    first: dict[str, int] = {}
    for n, raw in enumerate(items):
        try:
            item = check_record(raw, today=today)
        except CityopsError as exc:
            problems.append(RecordProblem(index=where[n], field=exc.field or "", reason=exc.message))
            cleaned.append(raw)
            continue
        if item.source_record_id in first:
            problems.append(
                RecordProblem(
                    index=where[n],
                    field="source_record_id",
                    reason=f"record id {item.source_record_id!r} is already at "
                    f"{first[item.source_record_id]}",
                )
            )
        first.setdefault(item.source_record_id, where[n])
        cleaned.append(item)
    bad = {p.index for p in problems}
    good = [(n, item) for n, item in enumerate(cleaned) if where[n] not in bad]
    resolve_problems: list[RecordProblem] = []
    ids, units = _resolve(session, [item for _n, item in good], actor, resolve_problems)
    problems += [
        RecordProblem(index=where[good[p.index][0]], field=p.field, reason=p.reason) for p in resolve_problems
    ]
    if problems:
        raise BatchRefused(sorted(problems, key=lambda p: p.index))
    own_unit = actor.org_unit_id if actor is not None else None
    existing = _existing(session, source, [item.source_record_id for item in cleaned])
    plan = _Plan()
    for n, item in enumerate(cleaned):
        unit = units[item.department].id if item.department else own_unit
        row = _row(item, ids[item.entity_code], unit)
        old = existing.get(item.source_record_id)
        if old is None:
            plan.new.append(
                (
                    n,
                    {
                        **row,
                        "source": source,
                        "source_record_id": item.source_record_id,
                        "synthetic": synthetic,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            )
        elif _same(old, row):
            plan.same.append((n, old["id"]))
        else:
            plan.changed.append((n, {"id": old["id"], **row, "updated_at": now}))
    try:
        if plan.new:
            session.connection().execute(insert(table_of(CreditRecord)), [r for _n, r in plan.new])
        if plan.changed:
            session.execute(update(CreditRecord), [r for _n, r in plan.changed])
    except IntegrityError:
        raise Conflict(
            "another request stored records of this batch at the same moment; send the batch again "
            "(it is idempotent)"
        ) from None
    new_ids = _existing(session, source, [r["source_record_id"] for _n, r in plan.new]) if plan.new else {}
    outcomes = [
        *(
            RecordOutcome(
                index=where[n],
                source_record_id=r["source_record_id"],
                id=new_ids[r["source_record_id"]]["id"],
                outcome="created",
            )
            for n, r in plan.new
        ),
        *(
            RecordOutcome(
                index=where[n], source_record_id=cleaned[n].source_record_id, id=r["id"], outcome="updated"
            )
            for n, r in plan.changed
        ),
        *(
            RecordOutcome(
                index=where[n], source_record_id=cleaned[n].source_record_id, id=i, outcome="unchanged"
            )
            for n, i in plan.same
        ),
    ]
    session.flush()
    result = RecordsResult(
        source=source,
        created=len(plan.new),
        updated=len(plan.changed),
        unchanged=len(plan.same),
        items=sorted(outcomes, key=lambda o: o.index),
    )
    if actor is not None:
        audit.record(
            session,
            actor,
            "create",
            "credit_records",
            None,
            request=request,
            detail={
                "source": source,
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
            },
        )
    return result


def insert_synthetic(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert demo records (already valid, as `check_record` would pass them) in one executemany; the
    demo makes millions and checks a sample of them through `check_record` itself."""
    if rows:
        session.connection().execute(insert(table_of(CreditRecord)), list(rows))


# --- import from a file -------------------------------------------------------------------------------

IMPORT_COLUMNS = {
    "统一社会信用代码": "entity_code",
    "信用代码": "entity_code",
    "类别": "kind",
    "信息类别": "kind",
    "记录编号": "source_record_id",
    "编号": "source_record_id",
    "决定书文号": "source_record_id",
    "标题": "title",
    "名称": "title",
    "事项": "title",
    "严重程度": "severity",
    "失信程度": "severity",
    "等级": "grade",
    "纳税信用级别": "grade",
    "金额": "amount",
    "金额（元）": "amount",
    "决定日期": "decided_on",
    "日期": "decided_on",
    "有效期至": "valid_until",
    "公示截止日期": "publicity_until",
    "公示期至": "publicity_until",
    "状态": "status",
    "部门": "department",
    "实施部门": "department",
}
KIND_WORDS = {
    "行政许可": "licence",
    "许可": "licence",
    "行政处罚": "penalty",
    "处罚": "penalty",
    "经营异常": "abnormal",
    "经营异常名录": "abnormal",
    "严重失信": "dishonest",
    "严重失信主体名单": "dishonest",
    "被执行人": "enforcement",
    "失信被执行人": "enforcement",
    "纳税信用": "tax_grade",
    "纳税信用级别": "tax_grade",
    "欠费": "arrears",
    "欠缴": "arrears",
    "荣誉": "honour",
    "表彰": "honour",
    "信用承诺": "commitment",
    "承诺": "commitment",
}
SEVERITY_WORDS = {"轻微": "minor", "一般": "general", "严重": "serious", "较重": "general"}
STATUS_WORDS = {
    "有效": "active",
    "公示中": "active",
    "已结束": "ended",
    "已修复": "repaired",
    "已撤销": "revoked",
}


def _date(value: Any, name: str) -> date | None:
    if value is None or service.cell_text(value) == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = service.cell_text(value)
    match = service.DATE.match(text)
    try:
        if not match:
            raise ValueError
        year, month, day = (int(g) for g in (match.groups()[:3] if match[1] else match.groups()[3:]))
        return date(year, month, day)
    except ValueError:
        raise _fail(f"{text!r} is not a date (e.g. 2024-03-02 or 2024年3月2日)", name) from None


def parse_row(row: dict[str, Any]) -> RecordIn:
    """A RecordIn from a file's row (columns as IMPORT_COLUMNS names them; Chinese words for kind,
    severity and status accepted); ValidationFailed naming the field otherwise."""
    text = {k: service.cell_text(v) for k, v in row.items()}
    kind = text.get("kind", "")
    severity = text.get("severity") or None
    status = text.get("status") or "active"
    amount: int | None = None
    if text.get("amount"):
        try:
            amount = round(float(text["amount"].replace(",", "")))
        except ValueError:
            raise _fail(f"{text['amount']!r} is not an amount in yuan", "amount") from None
    decided = _date(row.get("decided_on"), "decided_on")
    if decided is None:
        raise _fail("decided_on is required", "decided_on")
    return RecordIn(
        entity_code=text.get("entity_code", ""),
        kind=KIND_WORDS.get(kind, kind),
        source_record_id=text.get("source_record_id", ""),
        title=text.get("title", ""),
        decided_on=decided,
        severity=SEVERITY_WORDS.get(severity, severity) if severity else None,
        grade=text.get("grade") or None,
        amount=amount,
        valid_until=_date(row.get("valid_until"), "valid_until"),
        publicity_until=_date(row.get("publicity_until"), "publicity_until"),
        status=STATUS_WORDS.get(status, status),
        department=text.get("department") or None,
    )


def import_records(
    session: Session,
    *,
    data: bytes,
    filename: str,
    source: str,
    actor: User | None,
    today: date | None = None,
    request: Request | None = None,
) -> RecordsResult:
    """Create or update the records of a CSV or Excel file from one sending system, all or nothing like a
    batch: BatchRefused lists every refused row by its line and field, and nothing is stored."""
    _check_report(actor)
    source = check_source(source)
    problems: list[RecordProblem] = []
    parsed: list[RecordIn] = []
    lines: list[int] = []
    for line, row in read_table(data, filename, aliases=IMPORT_COLUMNS):
        try:
            parsed.append(parse_row(row))
            lines.append(line)
        except CityopsError as exc:
            problems.append(RecordProblem(index=line, field=exc.field or "", reason=exc.message))
    if not parsed and not problems:
        raise ValidationFailed(f"{filename}: no records in the file", field="file")
    try:
        result = save_records(
            session, source=source, items=parsed, actor=actor, today=today, request=request, index_of=lines
        )
    except BatchRefused as exc:
        problems += exc.problems
    if problems:
        raise BatchRefused(sorted(problems, key=lambda p: p.index), what="line")
    return result


# --- reading --------------------------------------------------------------------------------------


def is_public(record: CreditRecord, *, today: date) -> bool:
    """Whether the public page shows the record today."""
    if record.kind not in PUBLIC_KINDS or record.status != "active":
        return False
    if record.kind == "penalty":  # within its publicity period only (an unpublished minor one: never)
        return record.publicity_until is not None and record.publicity_until >= today
    if record.publicity_until is not None and record.publicity_until < today:
        return False
    return record.valid_until is None or record.valid_until >= today


def records_of(session: Session, entity_id: int) -> list[CreditRecord]:
    """An entity's records, newest decisions first."""
    return list(
        session.scalars(
            select(CreditRecord)
            .where(CreditRecord.entity_id == entity_id)
            .order_by(CreditRecord.decided_on.desc(), CreditRecord.id.desc())
        )
    )


def to_read(record: CreditRecord, units: dict[int, OrgUnit], *, today: date) -> RecordRead:
    unit = units.get(record.org_unit_id) if record.org_unit_id is not None else None
    return RecordRead(
        id=record.id,
        kind=record.kind,
        source=record.source,
        source_record_id=record.source_record_id,
        department=unit.name if unit is not None else None,
        title=record.title,
        severity=record.severity,
        grade=record.grade,
        amount=record.amount,
        decided_on=record.decided_on,
        valid_until=record.valid_until,
        publicity_until=record.publicity_until,
        status=record.status,
        public=is_public(record, today=today),
        details=dict(record.details or {}),
        synthetic=record.synthetic,
    )


def units_of(session: Session, records: Sequence[CreditRecord]) -> dict[int, OrgUnit]:
    ids = {r.org_unit_id for r in records if r.org_unit_id is not None}
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(OrgUnit).where(OrgUnit.id.in_(ids)))}


def entity_by_code(session: Session, *, viewer: User | None, code: str) -> Entity:
    """The entity of a credit code if the viewer may see it (404 otherwise, as for a missing one)."""
    found = entity_ids(session, [codes.compact(code)])
    return service.visible_entity(session, viewer=viewer, entity_id=found.get(codes.compact(code), 0))


def list_records(
    session: Session, *, viewer: User | None, code: str, today: date | None = None
) -> RecordList:
    """Every record of an entity in the viewer's scope, newest first."""
    entity = entity_by_code(session, viewer=viewer, code=code)
    rows = records_of(session, entity.id)
    today = today or today_of(utcnow())
    units = units_of(session, rows)
    return RecordList(entity_code=entity.code, items=[to_read(r, units, today=today) for r in rows])


# --- publication ends by itself -------------------------------------------------------------------------


def end_publicity(session: Session, *, today: date, now: datetime | None = None) -> int:
    """Turn every active record whose publicity period is over (publicity_until before today), or whose
    validity is (a licence's, a commitment's valid_until before today), into `ended`; how many."""
    result = session.execute(
        update(CreditRecord)
        .where(
            CreditRecord.status == "active",
            or_(CreditRecord.publicity_until < today, CreditRecord.valid_until < today),
        )
        .values(status="ended", updated_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def publicity_job(*, interval_s: int = 3600) -> Job:
    """'credit.publicity_end' for the scheduler: publication ends on the day after publicity_until."""

    def run(db: Database, now: datetime) -> int:
        with db.session() as session:
            return end_publicity(session, today=today_of(now), now=now)

    return Job("credit.publicity_end", interval_s, run)
