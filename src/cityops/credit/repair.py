"""Credit repair (信用修复) of administrative penalties.

- Issuing a penalty creates its credit record with the publicity period of its severity
  (data/repair_rules.yaml) and serves the four documents together (四书同达): the penalty decision,
  the credit-repair notice, the credit commitment letter and the compliance guidance, rendered to PDF
  from templates/credit/repair/documents.yaml and stored with core/files. The documents are rendered
  before anything is written: if one fails, the error names it and nothing is stored.
- PDFs use reportlab's built-in CID font STSong-Light: no font file is needed to make them (a fresh
  machine, an intranet), and PDF readers draw it with their own Song typeface.
- Repair follows the national rules: a penalty may be repaired once its minimum publication has passed,
  the breach is corrected, its obligations fulfilled (the fine paid) and a public credit commitment made.
  An application is a credit_repair case with a deadline (cases' "repair" workflow); one missing
  materials is refused at once naming each of them (一次性告知). A granted repair sets the record
  repaired and ends its publication; publication ends by itself at the maximum period (credit/records.py's
  publicity job, which ends every record past its publicity_until).
- Reminders: a message to the entity's contact when its penalty becomes repairable, and a notice to the
  case unit's staff before an application's deadline.
- Cross-region exchange: results are signed with HMAC-SHA256 under a key per partner platform, derived
  from the installation's secret key and the partner's code (nothing secret is stored; the key is handed
  to the partner out of band with `cityops credit repair partner-key`). A partner's signed result is
  refused for an unknown partner, a bad signature, a stale signing time or a nonce seen before.

Services flush, never commit."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from xml.sax.saxutils import escape

import jinja2
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from cityops.cases import notify as case_notify
from cityops.cases import service as case_service
from cityops.cases.schemas import CaseCreate
from cityops.core import files, notifications
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.roles import has_permission
from cityops.core.calendar import add_working_time
from cityops.core.db import Database, utcnow
from cityops.core.errors import CityopsError, Conflict, Forbidden, NotFound, ValidationFailed
from cityops.core.i18n import N_
from cityops.core.scheduler import Job
from cityops.core.yaml_config import ConfigFileError, load_yaml_file
from cityops.credit import service as credit_service
from cityops.credit.models import (
    DOCUMENT_KINDS,
    PENALTY_SEVERITIES,
    CreditRecord,
    Entity,
    EntityMessage,
    ExchangePartner,
    ExchangeReceipt,
    PenaltyDocument,
    PenaltyServing,
    RepairApplication,
)
from cityops.credit.records import today_of
from cityops.places.index import PlaceIndex

log = logging.getLogger(__name__)
DATA = Path(__file__).resolve().parent / "data"
RULES_PATH = DATA / "repair_rules.yaml"
DOCUMENTS_PATH = Path(__file__).resolve().parent / "templates" / "credit" / "repair" / "documents.yaml"
SOURCE = "cityops-penalty"  # the source of penalties issued here (their id: the decision number)
COMMITMENT_SOURCE = "cityops-commitment"
CASE_TYPE = "credit_repair"
SEVERITY_ZH = {"minor": "轻微", "general": "一般", "serious": "严重"}
OPEN = ("submitted", "accepted")
FONT = "STSong-Light"
ELIGIBLE_MESSAGE = "repair_eligible"

ELIGIBLE_SUBJECT = "信用修复提醒"
DEADLINE_TITLE = N_("Credit repair application %(number)s is due %(deadline)s")
DEADLINE_BODY = N_("%(entity)s: decide the application before its deadline.")


# --- the rules ------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Strict):
    min_months: int = Field(ge=0, le=120)
    max_months: int = Field(ge=1, le=120)
    may_stay_unpublished: bool = False


class Material(_Strict):
    code: Literal["corrected", "obligations_fulfilled", "commitment"]
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=120)


class Rules(_Strict):
    severities: dict[Literal["minor", "general", "serious"], Period]
    materials: tuple[Material, ...] = Field(min_length=1)
    remind_hours_before_deadline: int = Field(ge=1, le=200)
    exchange_max_age_seconds: int = Field(ge=10, le=86_400)

    @field_validator("severities")
    @classmethod
    def _complete(cls, value: dict[str, Period]) -> dict[str, Period]:
        missing = [s for s in PENALTY_SEVERITIES if s not in value]
        if missing:
            raise ValueError(f"missing severities: {', '.join(missing)}")
        for name, period in value.items():
            if period.min_months > period.max_months:
                raise ValueError(f"{name}: min_months is more than max_months")
        return value

    def material(self, code: str) -> Material:
        return next(m for m in self.materials if m.code == code)


class RepairRulesError(ConfigFileError):
    """A repair rules file that cannot be used; the message names the line."""


@lru_cache(maxsize=4)
def rules(path: Path = RULES_PATH) -> Rules:
    return load_yaml_file(
        path, Rules, expected="a mapping with severities and materials", error=RepairRulesError
    )


def add_months(day: date, months: int) -> date:
    """The same day `months` later (earlier when negative), the month's last day when it has no such day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    next_first = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return min(
        day.replace(year=year, month=month + 1, day=1) + timedelta(days=day.day - 1),
        next_first - timedelta(days=1),
    )


def publicity_until(decided_on: date, severity: str, *, rules_: Rules | None = None) -> date:
    """The last day a penalty is published: its maximum period after the decision."""
    period = (rules_ or rules()).severities[severity]  # type: ignore[index]
    return add_months(decided_on, period.max_months) - timedelta(days=1)


def eligible_on(decided_on: date, severity: str, *, rules_: Rules | None = None) -> date:
    """The first day a repair may be applied for: the minimum publication passed."""
    period = (rules_ or rules()).severities[severity]  # type: ignore[index]
    return add_months(decided_on, period.min_months)


# --- the four documents ---------------------------------------------------------------------------


class DocumentFailed(CityopsError):
    """A document of a penalty could not be generated: nothing of the penalty is stored."""

    status = 500
    code = "document_failed"


class DocumentTemplate(_Strict):
    title: str = Field(min_length=1, max_length=40)
    filename: str = Field(min_length=1, max_length=60)
    paragraphs: tuple[str, ...] = Field(min_length=1)


class DocumentTemplates(_Strict):
    decision: DocumentTemplate
    repair_notice: DocumentTemplate
    commitment: DocumentTemplate
    guidance: DocumentTemplate


@dataclass(frozen=True)
class Rendered:
    kind: str
    filename: str
    data: bytes


_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


def _pdf(title: str, paragraphs: Sequence[str]) -> bytes:
    # Imported here: reportlab's modules take a moment to load, and only issuing a penalty needs them.
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    heading = ParagraphStyle("heading", fontName=FONT, fontSize=20, leading=30, alignment=TA_CENTER)
    body = ParagraphStyle("body", fontName=FONT, fontSize=12, leading=21, wordWrap="CJK", firstLineIndent=24)
    out = io.BytesIO()
    # invariant: no creation date in the file, so the same document is the same bytes (and hash); text
    # streams uncompressed so that the words can be found in the file.
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=title,
        author="cityops",
        invariant=1,
        pageCompression=0,
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=30 * mm,
        bottomMargin=25 * mm,
    )
    story: list[Any] = [Paragraph(escape(title), heading), Spacer(1, 8 * mm)]
    story += [Paragraph(escape(text), body) for text in paragraphs if text.strip()]
    doc.build(story)
    return out.getvalue()


@lru_cache(maxsize=4)
def document_templates(path: Path = DOCUMENTS_PATH) -> DocumentTemplates:
    """The four document templates, read once per path (a file that cannot be used is not cached)."""
    return load_yaml_file(path, DocumentTemplates, expected="the four document templates")


def render_documents(context: dict[str, Any], *, path: Path = DOCUMENTS_PATH) -> list[Rendered]:
    """The four documents as PDFs, in DOCUMENT_KINDS order; DocumentFailed naming the first that fails
    and why (a template that cannot be read, a name it uses that is not given, the PDF writer's error)."""
    try:
        templates = document_templates(path)
    except ConfigFileError as exc:
        raise DocumentFailed(f"the document templates cannot be used: {exc}") from None
    out = []
    for kind in DOCUMENT_KINDS:
        template: DocumentTemplate = getattr(templates, kind)
        try:
            paragraphs = [_JINJA.from_string(p).render(**context) for p in template.paragraphs]
            data = _pdf(template.title, paragraphs)
        except Exception as exc:  # any failure of a template or of the PDF writer names its document
            raise DocumentFailed(
                f"document {kind!r} ({template.title}) failed to generate: {type(exc).__name__}: {exc}",
                detail={"document": kind},
            ) from None
        out.append(Rendered(kind, f"{template.filename}-{context['penalty']['number']}.pdf", data))
    return out


# --- issuing a penalty ----------------------------------------------------------------------------


def printable(value: str) -> str:
    """Text as documents and databases can take it: no control characters (PostgreSQL refuses NUL) and no
    lone surrogates (no PDF or UTF-8 encoding has them)."""
    for ch in value:
        if (ord(ch) < 32 and ch not in "\n\t") or 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError(f"contains a character that cannot be printed (U+{ord(ch):04X})")
    return value


Text = Annotated[str, AfterValidator(printable)]


class PenaltyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_id: int = Field(ge=1, le=2**31 - 1)
    # The decision's document number (文书号), e.g. 鹤市监罚〔2026〕12号: unique, a retry is refused.
    decision_number: Text = Field(min_length=1, max_length=80)
    title: Text = Field(min_length=1, max_length=200)
    severity: Literal["minor", "general", "serious"]
    decided_on: date
    fine: int | None = Field(default=None, ge=0, le=10**12, description="Fine in yuan")
    facts: Text = Field(default="", max_length=2000)
    basis: Text = Field(default="", max_length=500)
    # Only a minor penalty may stay unpublished.
    publish: bool = True
    served_to: Text = Field(min_length=1, max_length=100, description="Who received the documents")
    channel: Literal["in_person", "mail", "electronic"] = "in_person"


class DocumentRead(BaseModel):
    kind: str
    filename: str
    sha256: str
    size: int
    url: str


class ServingRead(BaseModel):
    served_at: datetime
    served_to: str
    channel: str
    served_by_id: int | None


class PenaltyRead(BaseModel):
    record_id: int
    entity_id: int
    entity_name: str
    decision_number: str
    title: str
    severity: str
    decided_on: date
    fine: int | None
    status: str
    publicity_until: date | None
    eligible_on: date
    documents: list[DocumentRead]
    serving: ServingRead | None


def _check(actor: User | None, *permissions: str) -> None:
    if actor is not None and not any(has_permission(actor, p) for p in permissions):
        raise Forbidden(f"your role may not do this (needs permission {' or '.join(map(repr, permissions))})")


def _department(session: Session, actor: User | None) -> str:
    unit = session.get(OrgUnit, actor.org_unit_id) if actor and actor.org_unit_id else None
    return unit.name if unit is not None else "鹤壁市市场监督管理局"


def _entity_context(entity: Entity) -> dict[str, Any]:
    return {
        "name": entity.name,
        "code": entity.code,
        "address": entity.address,
        "legal_rep_name": entity.legal_rep_name,
    }


def penalty_read(session: Session, record: CreditRecord) -> PenaltyRead:
    entity = session.get(Entity, record.entity_id)
    assert entity is not None
    docs = session.scalars(select(PenaltyDocument).where(PenaltyDocument.record_id == record.id)).all()
    order = {k: i for i, k in enumerate(DOCUMENT_KINDS)}
    serving = session.get(PenaltyServing, record.id)
    return PenaltyRead(
        record_id=record.id,
        entity_id=record.entity_id,
        entity_name=entity.name,
        decision_number=record.source_record_id
        if record.source == SOURCE
        else str(record.details.get("decision_number", record.source_record_id)),
        title=record.title,
        severity=record.severity or "general",
        decided_on=record.decided_on,
        fine=record.amount,
        status=record.status,
        publicity_until=record.publicity_until,
        eligible_on=eligible_on(record.decided_on, record.severity or "general"),
        documents=[
            DocumentRead(
                kind=d.kind,
                filename=d.filename,
                sha256=d.sha256,
                size=d.size,
                url=f"/api/credit/penalties/{record.id}/documents/{d.kind}",
            )
            for d in sorted(docs, key=lambda d: order[d.kind])
        ],
        serving=ServingRead(
            served_at=serving.served_at,
            served_to=serving.served_to,
            channel=serving.channel,
            served_by_id=serving.served_by_id,
        )
        if serving
        else None,
    )


def issue_penalty(
    session: Session,
    *,
    actor: User | None,
    data: PenaltyCreate,
    files_root: Path,
    now: datetime | None = None,
    templates: Path = DOCUMENTS_PATH,
    synthetic: bool = False,
) -> PenaltyRead:
    """Record a penalty and serve its four documents together. The documents are rendered first: a
    failure raises DocumentFailed naming the document and stores nothing."""
    _check(actor, "credit.penalize", "credit.manage")
    now = now or utcnow()
    today = today_of(now)
    entity = credit_service.visible_entity(session, viewer=actor, entity_id=data.entity_id)
    if data.decided_on > today:
        raise ValidationFailed(f"decided_on {data.decided_on} is in the future", field="decided_on")
    period = rules().severities[data.severity]
    if not data.publish and not period.may_stay_unpublished:
        raise ValidationFailed(
            f"a {data.severity} penalty must be published; only minor ones may stay unpublished",
            field="publish",
        )
    number = data.decision_number.strip()
    existing = session.scalar(
        select(CreditRecord.id).where(CreditRecord.source == SOURCE, CreditRecord.source_record_id == number)
    )
    if existing is not None:
        raise Conflict(
            f"penalty {number!r} has already been issued (record {existing})",
            field="decision_number",
            detail={"record_id": existing},
        )
    until = publicity_until(data.decided_on, data.severity) if data.publish else None
    context = {
        "entity": _entity_context(entity),
        "penalty": {
            "number": number,
            "title": data.title,
            "severity_zh": SEVERITY_ZH[data.severity],
            "decided_on": data.decided_on.isoformat(),
            "amount": data.fine,
            "facts": data.facts,
            "basis": data.basis,
        },
        "department": _department(session, actor),
        "decided_on": data.decided_on.isoformat(),
        "publicity_until": until.isoformat() if until else None,
        "eligible_on": eligible_on(data.decided_on, data.severity).isoformat(),
        "min_months": period.min_months,
        "max_months": period.max_months,
        "served_on": today.isoformat(),
    }
    rendered = render_documents(context, path=templates)
    stored = [(doc, files.store(files_root, doc.data, media_type="application/pdf")) for doc in rendered]
    record = CreditRecord(
        entity_id=entity.id,
        kind="penalty",
        source=SOURCE,
        source_record_id=number,
        org_unit_id=actor.org_unit_id if actor else None,
        title=data.title,
        severity=data.severity,
        amount=data.fine,
        decided_on=data.decided_on,
        publicity_until=until,
        status="active" if until is None or until >= today else "ended",
        details={"facts": data.facts, "basis": data.basis, "published": data.publish},
        synthetic=synthetic,
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    session.flush()
    session.add_all(
        [
            PenaltyDocument(
                record_id=record.id,
                kind=doc.kind,
                filename=doc.filename,
                sha256=found.sha256,
                size=found.size,
                media_type=found.media_type,
                created_at=now,
            )
            for doc, found in stored
        ]
    )
    session.add(
        PenaltyServing(
            record_id=record.id,
            served_at=now,
            served_to=data.served_to.strip(),
            channel=data.channel,
            served_by_id=actor.id if actor else None,
        )
    )
    session.flush()
    return penalty_read(session, record)


def _penalty(session: Session, *, viewer: User | None, record_id: int) -> CreditRecord:
    record = session.get(CreditRecord, record_id)
    if record is None or record.kind != "penalty":
        raise NotFound(f"penalty record {record_id} not found")
    credit_service.visible_entity(session, viewer=viewer, entity_id=record.entity_id)  # 404 outside scope
    return record


def get_penalty(session: Session, *, viewer: User | None, record_id: int) -> PenaltyRead:
    return penalty_read(session, _penalty(session, viewer=viewer, record_id=record_id))


def document_file(
    session: Session, *, viewer: User | None, record_id: int, kind: str, files_root: Path
) -> tuple[Path, str]:
    """The stored PDF of one of a penalty's documents and its file name."""
    if kind not in DOCUMENT_KINDS:
        raise NotFound(f"no document {kind!r}; documents: {', '.join(DOCUMENT_KINDS)}")
    _penalty(session, viewer=viewer, record_id=record_id)
    doc = session.scalar(
        select(PenaltyDocument).where(PenaltyDocument.record_id == record_id, PenaltyDocument.kind == kind)
    )
    if doc is None:
        raise NotFound(f"penalty {record_id} has no {kind} document")
    return files.open_path(files_root, doc.sha256), doc.filename


# --- eligibility ----------------------------------------------------------------------------------


class Eligibility(BaseModel):
    record_id: int
    eligible: bool
    # The first day a repair may be applied for (the minimum publication passed).
    eligible_on: date
    publicity_until: date | None
    reasons: list[str]


def eligibility(
    session: Session, *, viewer: User | None, record_id: int, now: datetime | None = None
) -> Eligibility:
    record = _penalty(session, viewer=viewer, record_id=record_id)
    return _eligibility(record, (now or utcnow()).date())


def _eligibility(record: CreditRecord, today: date) -> Eligibility:
    severity = record.severity or "general"
    first = eligible_on(record.decided_on, severity)
    reasons = []
    if record.status != "active":
        reasons.append(f"the record is {record.status}: nothing to repair")
    elif record.publicity_until is None:
        reasons.append("the penalty is not published: nothing to repair")
    if today < first:
        months = rules().severities[severity].min_months  # type: ignore[index]
        reasons.append(
            f"the minimum publication of a {severity} penalty ({months} months) ends on "
            f"{first.isoformat()}: a repair may be applied for from then"
        )
    return Eligibility(
        record_id=record.id,
        eligible=not reasons,
        eligible_on=first,
        publicity_until=record.publicity_until,
        reasons=reasons,
    )


# --- applications ---------------------------------------------------------------------------------


class RepairApply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_id: int = Field(ge=1, le=2**31 - 1)
    corrected: bool = False
    obligations_fulfilled: bool = False
    fine_paid_on: date | None = None
    # A commitment already on the record (kind commitment), or its text to publish now.
    commitment_record_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    commitment_text: Text = Field(default="", max_length=2000)
    statement: Text = Field(default="", max_length=2000)


class RepairDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "refuse", "grant", "revoke"]
    reason: Text = Field(default="", max_length=500)


class RepairRead(BaseModel):
    id: int
    record_id: int
    entity_id: int
    entity_name: str
    penalty_title: str
    case_id: int | None
    status: str
    corrected: bool
    obligations_fulfilled: bool
    fine_paid_on: date | None
    commitment_record_id: int | None
    missing: list[str]
    missing_names: list[str]
    refusal_reason: str | None
    deadline_at: datetime | None
    submitted_at: datetime
    decided_at: datetime | None


def _read(session: Session, app: RepairApplication) -> RepairRead:
    record = session.get(CreditRecord, app.record_id)
    entity = session.get(Entity, app.entity_id)
    assert record is not None and entity is not None
    r = rules()
    return RepairRead(
        id=app.id,
        record_id=app.record_id,
        entity_id=app.entity_id,
        entity_name=entity.name,
        penalty_title=record.title,
        case_id=app.case_id,
        status=app.status,
        corrected=app.corrected,
        obligations_fulfilled=app.obligations_fulfilled,
        fine_paid_on=app.fine_paid_on,
        commitment_record_id=app.commitment_record_id,
        missing=list(app.missing),
        missing_names=[r.material(m).name_zh for m in app.missing],
        refusal_reason=app.refusal_reason,
        deadline_at=app.deadline_at,
        submitted_at=app.submitted_at,
        decided_at=app.decided_at,
    )


def _commitment(
    session: Session, entity: Entity, data: RepairApply, now: datetime, app_key: str
) -> int | None:
    """The commitment record the application rests on: the one named (of the entity, active), or a new
    public commitment made of the text given; None when there is neither."""
    if data.commitment_record_id is not None:
        found = session.get(CreditRecord, data.commitment_record_id)
        if found is None or found.entity_id != entity.id or found.kind != "commitment":
            raise ValidationFailed(
                f"record {data.commitment_record_id} is not a commitment of {entity.name}",
                field="commitment_record_id",
            )
        return found.id if found.status == "active" else None
    if not data.commitment_text.strip():
        return None
    record = CreditRecord(
        entity_id=entity.id,
        kind="commitment",
        source=COMMITMENT_SOURCE,
        source_record_id=app_key,
        title="信用修复承诺",
        decided_on=today_of(now),
        valid_until=add_months(today_of(now), 12),
        publicity_until=add_months(today_of(now), 12),
        status="active",
        details={"text": data.commitment_text.strip(), "public": True},
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    session.flush()
    return record.id


def _missing(record: CreditRecord, app: RepairApplication) -> list[str]:
    missing = []
    if not app.corrected:
        missing.append("corrected")
    if not app.obligations_fulfilled or (record.amount and app.fine_paid_on is None):
        missing.append("obligations_fulfilled")
    if app.commitment_record_id is None:
        missing.append("commitment")
    return missing


def _point(entity: Entity, index: PlaceIndex) -> tuple[float, float]:
    """Where the entity's case is placed: its point, or a point of the first grid of its division."""
    if entity.lon is not None and entity.lat is not None:
        return entity.lon, entity.lat
    for i, leaf in enumerate(index.leaves):
        if (leaf.grid_code or leaf.village_code or "").startswith(entity.division_code):
            centre = index.polygons[i].representative_point()
            return float(centre.x), float(centre.y)
    raise ValidationFailed(
        f"{entity.name} has no place in the city to route its application from", field="record_id"
    )


def apply_for_repair(
    session: Session,
    *,
    actor: User | None,
    data: RepairApply,
    index: PlaceIndex,
    now: datetime | None = None,
    synthetic: bool = False,
) -> RepairRead:
    """Take in a repair application as a credit_repair case. Before the minimum publication has passed it
    is refused (422) with the day a repair may be applied for; one missing materials is recorded as
    refused at once with each missing one named, so the entity can bring them all in one go."""
    _check(actor, "credit.repair")
    now = now or utcnow()
    record = _penalty(session, viewer=actor, record_id=data.record_id)
    found = _eligibility(record, today_of(now))
    if not found.eligible:
        raise ValidationFailed(
            "not eligible for repair: " + "; ".join(found.reasons),
            field="record_id",
            detail={"eligible_on": found.eligible_on.isoformat()},
        )
    open_app = session.scalar(
        select(RepairApplication.id).where(
            RepairApplication.record_id == record.id, RepairApplication.status.in_(OPEN)
        )
    )
    if open_app is not None:
        raise Conflict(
            f"application {open_app} for this penalty is still being examined",
            field="record_id",
            detail={"application_id": open_app},
        )
    entity = session.get(Entity, record.entity_id)
    assert entity is not None
    app = RepairApplication(
        record_id=record.id,
        entity_id=entity.id,
        corrected=data.corrected,
        obligations_fulfilled=data.obligations_fulfilled,
        fine_paid_on=data.fine_paid_on,
        statement=data.statement,
        applicant_id=actor.id if actor else None,
        submitted_at=now,
        synthetic=synthetic,
    )
    session.add(app)
    session.flush()
    app.commitment_record_id = _commitment(session, entity, data, now, f"repair-{app.id}")
    app.missing = _missing(record, app)
    lon, lat = _point(entity, index)
    case = case_service.report_case(
        session,
        index=index,
        now=now,
        data=CaseCreate(
            type_code=CASE_TYPE,
            category="penalty",
            title=f"信用修复申请：{entity.name}"[:200],
            description=f"{record.title}（{record.source_record_id}，"
            f"{SEVERITY_ZH.get(record.severity or '', '')}失信行为）"[:5000],
            lon=lon,
            lat=lat,
            source="credit",
            fields={"application_id": app.id, "entity_code": entity.code, "record_id": record.id},
        ),
    )
    app.case_id, app.deadline_at, app.org_unit_id = case.id, case.deadline_at, case.org_unit_id
    if app.missing:
        r = rules()
        reason = "材料不全，缺少：" + "；".join(r.material(m).name_zh for m in app.missing)
        _move(session, app, "reject", actor, now, reason=reason)
        app.status, app.refusal_reason, app.decided_at = "refused", reason, now
    session.flush()
    return _read(session, app)


def _move(
    session: Session,
    app: RepairApplication,
    action: str,
    actor: User | None,
    now: datetime,
    *,
    reason: str | None = None,
    result: str | None = None,
) -> None:
    """Move the application's case as the system (see cases.workflow.REPAIR), naming who decided."""
    if app.case_id is None:
        return
    who = actor.display_name if actor else None
    case_service.act_as_system(
        session,
        case_id=app.case_id,
        action=action,
        reason=reason,
        result=result,
        comment=f"决定人：{who}" if who else None,
        now=now,
    )


def _application(session: Session, *, viewer: User | None, application_id: int) -> RepairApplication:
    app = session.get(RepairApplication, application_id)
    if app is None:
        raise NotFound(f"repair application {application_id} not found")
    credit_service.visible_entity(session, viewer=viewer, entity_id=app.entity_id)
    return app


def get_application(session: Session, *, viewer: User | None, application_id: int) -> RepairRead:
    return _read(session, _application(session, viewer=viewer, application_id=application_id))


def list_applications(
    session: Session,
    *,
    viewer: User | None,
    status: str | None = None,
    entity_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[RepairRead]:
    """Applications of entities in the viewer's scope, newest first."""
    # The register's own condition: credit.view, and the entities in the viewer's scope.
    query = (
        select(RepairApplication)
        .join(Entity, Entity.id == RepairApplication.entity_id)
        .where(credit_service.visibility_condition(viewer, credit_service.Filters()))
    )
    if status is not None:
        if status not in ("submitted", "accepted", "refused", "repaired"):
            raise ValidationFailed(f"unknown status {status!r}", field="status")
        query = query.where(RepairApplication.status == status)
    if entity_id is not None:
        query = query.where(RepairApplication.entity_id == entity_id)
    rows = session.scalars(query.order_by(RepairApplication.id.desc()).limit(limit).offset(offset)).all()
    return [_read(session, a) for a in rows]


def decide(
    session: Session,
    *,
    actor: User | None,
    application_id: int,
    data: RepairDecision,
    now: datetime | None = None,
) -> RepairRead:
    """accept (submitted → accepted), refuse with a reason (either open state → refused), grant
    (accepted → repaired: the record is set repaired and its publication ends today), or revoke a repair
    obtained with false materials, with the reason (repaired → refused: the record is published again
    for what is left of its period)."""
    _check(actor, "credit.repair")
    now = now or utcnow()
    app = _application(session, viewer=actor, application_id=application_id)
    allowed = {
        "submitted": ("accept", "refuse"),
        "accepted": ("refuse", "grant"),
        "repaired": ("revoke",),
    }.get(app.status, ())
    if data.action not in allowed:
        raise Conflict(
            f"the application is {app.status}: it allows {', '.join(allowed) or 'no move'}, not "
            f"{data.action!r}",
            code="invalid_transition",
            field="action",
        )
    if data.action in ("refuse", "revoke") and not data.reason.strip():
        raise ValidationFailed(f"{data.action} needs its reason", field="reason")
    if data.action == "accept":
        _move(session, app, "accept", actor, now)
        app.status = "accepted"
    elif data.action == "refuse":
        _move(session, app, "reject", actor, now, reason=data.reason.strip())
        app.status, app.refusal_reason, app.decided_at = "refused", data.reason.strip(), now
    elif data.action == "revoke":
        record = session.get(CreditRecord, app.record_id)
        assert record is not None
        reason = f"撤销信用修复：{data.reason.strip()}"[:500]
        _move(session, app, "reopen", actor, now, reason=reason)
        _move(session, app, "reject", actor, now, reason=reason)
        if record.status == "repaired":
            until = record.publicity_until
            record.status = "active" if until is not None and until >= today_of(now) else "ended"
            record.details = {**record.details, "repair_revoked_on": today_of(now).isoformat()}
            record.updated_at = now
        app.status, app.refusal_reason, app.decided_at = "refused", reason, now
    else:
        record = session.get(CreditRecord, app.record_id)
        assert record is not None
        found = _eligibility(record, today_of(now))
        if not found.eligible:
            raise Conflict("cannot grant: " + "; ".join(found.reasons), field="action")
        _move(session, app, "resolve", actor, now, result="信用修复完成，停止公示")
        end_record(record, now, by="repair")
        app.status, app.decided_at = "repaired", now
    app.decided_by_id = actor.id if actor else None
    session.flush()
    return _read(session, app)


def end_record(record: CreditRecord, now: datetime, *, by: str) -> None:
    """A repaired record: no longer published from today (the rest of its period is not served)."""
    record.status = "repaired"
    repaired = {"repaired_on": today_of(now).isoformat(), "repaired_by": by}
    record.details = {**record.details, **repaired}
    record.updated_at = now


# --- the reminders ----------------------------------------------------------


def remind_eligible(session: Session, now: datetime) -> int:
    """A message to each entity one of whose active penalties has become repairable (once per penalty)."""
    today = today_of(now)
    r = rules()
    conditions = [
        and_(
            CreditRecord.severity == severity,
            # a few days' slack for months without the day; eligible_on decides below
            CreditRecord.decided_on <= add_months(today, -period.min_months) + timedelta(days=3),
        )
        for severity, period in r.severities.items()
    ]
    told = select(EntityMessage.record_id).where(
        EntityMessage.kind == ELIGIBLE_MESSAGE, EntityMessage.record_id.is_not(None)
    )
    rows = session.execute(
        select(CreditRecord, Entity)
        .join(Entity, Entity.id == CreditRecord.entity_id)
        .where(
            CreditRecord.kind == "penalty",
            CreditRecord.status == "active",
            CreditRecord.publicity_until.is_not(None),
            or_(*conditions),
            CreditRecord.id.not_in(told),
        )
    ).all()
    count = 0
    for record, entity in rows:
        first = eligible_on(record.decided_on, record.severity or "general")
        if first > today:
            continue
        session.add(
            EntityMessage(
                entity_id=entity.id,
                record_id=record.id,
                kind=ELIGIBLE_MESSAGE,
                addressed_to=f"{entity.name}（法定代表人 {entity.legal_rep_name or '未登记'}，"
                f"{entity.address}）"[:400],
                subject=ELIGIBLE_SUBJECT,
                body=(
                    f"{entity.name}：你单位{record.decided_on.isoformat()}受到的行政处罚（{record.title}）已于"
                    f"{first.isoformat()}满最短公示期。纠正失信行为、缴清罚款并作出信用承诺后，可申请信用修复。"
                )[:2000],
                created_at=now,
            )
        )
        count += 1
    session.flush()
    return count


def remind_deadlines(session: Session, now: datetime) -> int:
    """A notice to the staff of each open application's unit once its deadline is near (once each)."""
    soon = add_working_time(now, hours=rules().remind_hours_before_deadline)
    rows = session.execute(
        select(RepairApplication, Entity)
        .join(Entity, Entity.id == RepairApplication.entity_id)
        .where(
            RepairApplication.status.in_(OPEN),
            RepairApplication.reminded_at.is_(None),
            RepairApplication.deadline_at.is_not(None),
            RepairApplication.deadline_at <= soon,
        )
    ).all()
    for app, entity in rows:
        staff = [u for u in case_notify.unit_staff(session, app.org_unit_id)]
        notifications.notify(
            session,
            user_ids=staff,
            title=DEADLINE_TITLE,
            body=DEADLINE_BODY,
            link=f"/credit/repair/applications/{app.id}",
            now=now,
            params={
                "number": app.id,
                "entity": entity.name,
                "deadline": app.deadline_at.isoformat() if app.deadline_at else "",
            },
        )
        app.reminded_at = now
    session.flush()
    return len(rows)


class MessageRead(BaseModel):
    id: int
    entity_id: int
    record_id: int | None
    kind: str
    addressed_to: str
    subject: str
    body: str
    created_at: datetime
    sent_at: datetime | None


def _message_read(m: EntityMessage) -> MessageRead:
    return MessageRead(
        id=m.id,
        entity_id=m.entity_id,
        record_id=m.record_id,
        kind=m.kind,
        addressed_to=m.addressed_to,
        subject=m.subject,
        body=m.body,
        created_at=m.created_at,
        sent_at=m.sent_at,
    )


def outbox(
    session: Session, *, actor: User | None, unsent_only: bool = True, limit: int = 100
) -> list[MessageRead]:
    """Messages to entities, oldest first, for the text-message or mail gateway that sends them (entities
    in the reader's scope)."""
    _check(actor, "credit.repair")
    query = (
        select(EntityMessage)
        .join(Entity, Entity.id == EntityMessage.entity_id)
        .where(credit_service.visibility_condition(actor, credit_service.Filters()))
    )
    if unsent_only:
        query = query.where(EntityMessage.sent_at.is_(None))
    return [_message_read(m) for m in session.scalars(query.order_by(EntityMessage.id).limit(limit))]


def mark_sent(
    session: Session, *, actor: User | None, message_id: int, now: datetime | None = None
) -> MessageRead:
    """The gateway's acknowledgement: the message went out (a second acknowledgement changes nothing)."""
    _check(actor, "credit.repair")
    message = session.get(EntityMessage, message_id)
    if message is None:
        raise NotFound(f"message {message_id} not found")
    credit_service.visible_entity(session, viewer=actor, entity_id=message.entity_id)
    if message.sent_at is None:
        message.sent_at = now or utcnow()
        session.flush()
    return _message_read(message)


@dataclass(frozen=True)
class Reminded:
    entities_told: int
    staff_reminded: int


def remind(db: Database, *, now: datetime | None = None) -> Reminded:
    """One pass of the reminders, in one transaction. (Publication's end is credit/records.py's own job,
    records.publicity_job.)"""
    now = now or utcnow()
    with db.session() as session:
        return Reminded(remind_eligible(session, now), remind_deadlines(session, now))


def reminders_job(*, interval_s: int = 3600) -> Job:
    """'credit.repair_reminders' for the scheduler."""
    return Job("credit.repair_reminders", interval_s, lambda db, now: remind(db, now=now))


# --- cross-region exchange ------------------------------------------------------------------------

PLATFORM = "hebi-410600"  # this platform's code in the messages it signs
NONCE = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")


class ExchangeResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_code: str = Field(min_length=18, max_length=18)
    source: Text = Field(min_length=1, max_length=40)
    source_record_id: Text = Field(min_length=1, max_length=80)
    status: Literal["repaired"]
    repaired_on: date


class ExchangeMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner: Text = Field(min_length=1, max_length=40, description="The sending platform's code")
    nonce: Text = Field(min_length=8, max_length=64)
    signed_at: datetime
    result: ExchangeResult


class SignedMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: ExchangeMessage
    signature: str = Field(min_length=64, max_length=64, description="HMAC-SHA256, hex")


class ExchangeApplied(BaseModel):
    record_id: int
    status: str
    changed: bool


def partner_key(secret: Callable[[str], str], code: str) -> bytes:
    """The HMAC key shared with a partner (derived, never stored)."""
    return secret(f"credit-repair-exchange:{code}").encode()


def canonical(message: ExchangeMessage) -> bytes:
    return json.dumps(
        message.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def sign(message: ExchangeMessage, key: bytes) -> SignedMessage:
    digest = hmac.new(key, canonical(message), hashlib.sha256).hexdigest()
    return SignedMessage(message=message, signature=digest)


class ExchangeRefused(CityopsError):
    status = 401
    code = "exchange_refused"


def receive(
    session: Session, *, signed: SignedMessage, secret: Callable[[str], str], now: datetime | None = None
) -> ExchangeApplied:
    """Apply a partner's signed repair result to the matching record. Refused: an unknown or inactive
    partner, a bad signature (401), a message signed too long ago or in the future, a nonce seen before
    (409), no matching record (404)."""
    now = now or utcnow()
    message = signed.message
    partner = session.get(ExchangePartner, message.partner)
    if partner is None or not partner.active:
        raise ExchangeRefused(f"unknown partner {message.partner!r}", field="message.partner")
    expected = sign(message, partner_key(secret, partner.code)).signature
    if not hmac.compare_digest(expected, signed.signature.lower()):
        raise ExchangeRefused(
            "bad signature: the message was not signed with the partner's key", field="signature"
        )
    if not NONCE.match(message.nonce):
        raise ValidationFailed("the nonce may hold letters, digits and _.:- only", field="message.nonce")
    age = (now - message.signed_at).total_seconds()
    limit = rules().exchange_max_age_seconds
    if age > limit or age < -60:
        raise ExchangeRefused(
            f"the message was signed at {message.signed_at.isoformat()}, outside the "
            f"{limit} s window: sign it again",
            field="message.signed_at",
        )
    if (
        session.scalar(
            select(ExchangeReceipt.id).where(
                ExchangeReceipt.partner == partner.code, ExchangeReceipt.nonce == message.nonce
            )
        )
        is not None
    ):
        raise Conflict(
            f"replay: nonce {message.nonce!r} of {partner.code} was received before",
            code="replay",
            field="message.nonce",
        )
    result = message.result
    record = session.scalar(
        select(CreditRecord)
        .join(Entity, Entity.id == CreditRecord.entity_id)
        .where(
            CreditRecord.source == result.source,
            CreditRecord.source_record_id == result.source_record_id,
            Entity.code == result.entity_code.upper(),
        )
    )
    if record is None:
        raise NotFound(
            f"no record {result.source}/{result.source_record_id} of entity {result.entity_code}",
            field="message.result",
        )
    changed = record.status == "active"
    if changed:
        end_record(record, now, by=partner.code)
    session.add(
        ExchangeReceipt(
            partner=partner.code,
            nonce=message.nonce,
            record_id=record.id,
            payload=message.model_dump(mode="json"),
            received_at=now,
        )
    )
    session.flush()
    return ExchangeApplied(record_id=record.id, status=record.status, changed=changed)


def outgoing(
    session: Session,
    *,
    partner_code: str,
    secret: Callable[[str], str],
    since: date | None = None,
    now: datetime | None = None,
    limit: int = 500,
) -> list[SignedMessage]:
    """The repairs granted here (since a day), each signed for one partner to take in."""
    now = now or utcnow()
    partner = session.get(ExchangePartner, partner_code)
    if partner is None or not partner.active:
        raise NotFound(f"unknown partner {partner_code!r}", field="partner")
    query = (
        select(RepairApplication, CreditRecord, Entity)
        .join(CreditRecord, CreditRecord.id == RepairApplication.record_id)
        .join(Entity, Entity.id == RepairApplication.entity_id)
        .where(RepairApplication.status == "repaired")
    )
    if since is not None:
        query = query.where(
            RepairApplication.decided_at >= datetime.combine(since, datetime.min.time(), tzinfo=now.tzinfo)
        )
    key = partner_key(secret, partner.code)
    out = []
    for app, record, entity in session.execute(query.order_by(RepairApplication.id).limit(limit)):
        assert app.decided_at is not None
        out.append(
            sign(
                ExchangeMessage(
                    partner=PLATFORM,
                    nonce=f"{PLATFORM}:repair-{app.id}",
                    signed_at=now,
                    result=ExchangeResult(
                        entity_code=entity.code,
                        source=record.source,
                        source_record_id=record.source_record_id,
                        status="repaired",
                        repaired_on=app.decided_at.date(),
                    ),
                ),
                key,
            )
        )
    return out


def add_partner(session: Session, *, actor: User | None, code: str, name: str) -> ExchangePartner:
    _check(actor, "credit.repair")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,39}", code):
        raise ValidationFailed("a partner code is 2-40 lower-case letters, digits and '-'", field="code")
    partner = session.get(ExchangePartner, code)
    if partner is None:
        partner = ExchangePartner(code=code, name=name.strip() or code)
        session.add(partner)
    else:
        partner.name, partner.active = name.strip() or partner.name, True
    session.flush()
    return partner


def count_applications(session: Session) -> dict[str, int]:
    """Applications by status (figures)."""
    return {
        str(s): int(n)
        for s, n in session.execute(
            select(RepairApplication.status, func.count()).group_by(RepairApplication.status)
        )
    }
