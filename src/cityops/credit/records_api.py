"""JSON routes of credit records and the evaluation: departments' systems send batches of records
(POST /api/credit/records, permission credit.report, usually with an API token of the department's
account) or import a file; staff read an entity's records and, with credit.inspect, its score
explained and the distribution of risk classes by industry and area (/api/credit/classes)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from cityops.core.auth import audit
from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.db import utcnow
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.errors import ValidationFailed
from cityops.core.export import XLSX_MEDIA_TYPE, xlsx_response
from cityops.core.i18n import gettext_for, locale_of
from cityops.credit import figures, records, scoring
from cityops.credit.api import read_upload

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/credit", tags=["credit records"])
Reporter = Annotated[User, Depends(require_permission("credit.report"))]
Viewer = Annotated[User, Depends(require_permission("credit.view"))]
Inspector = Annotated[User, Depends(require_permission("credit.inspect"))]
CodePath = Annotated[str, Path(min_length=1, max_length=40, description="The entity's credit code")]
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"description": "Needs permission credit.report"},
    409: {"description": "Another request stored the same records at the same moment: send again"},
    422: {"description": "Records refused, each with its index and field; nothing of the batch stored"},
}


@router.post("/records", response_model=records.RecordsResult, responses=REFUSED)
def send_records(
    body: records.RecordBatch, request: Request, session: SessionDep, user: Reporter
) -> records.RecordsResult:
    """A batch of up to 5,000 records of one sending system, idempotent on (source, source_record_id):
    a retry updates what changed and adds nothing twice; the answer says per record whether it was
    created, updated or unchanged. All or nothing: if any record is refused, the 422 answer lists every
    refused one (`detail.errors`: index, field, reason) and nothing is stored."""
    if len(body.records) > records.MAX_BATCH:
        raise ValidationFailed(
            f"at most {records.MAX_BATCH} records per batch ({len(body.records)} sent)", field="records"
        )
    if not body.records:
        raise ValidationFailed("the batch has no records", field="records")
    return records.save_records(session, source=body.source, items=body.records, actor=user, request=request)


@router.post("/records/import", response_model=records.RecordsResult, responses=REFUSED)
def import_records(
    request: Request,
    session: SessionDep,
    user: Reporter,
    source: Annotated[
        str, Form(max_length=40, description="The sending system, e.g. hebi-samr-penalty")
    ] = "",
    file: Annotated[UploadFile | None, File(description="CSV (UTF-8) or Excel (.xlsx) of records")] = None,
) -> records.RecordsResult:
    """Records of a CSV or Excel file (Chinese or English headers), all or nothing like a batch: the 422
    answer lists every refused line with its field and reason."""
    data, filename = read_upload(file)
    return records.import_records(
        session, data=data, filename=filename, source=source, actor=user, request=request
    )


@router.get(
    "/entities/{entity_code}/records",
    response_model=records.RecordList,
    responses={404: {"description": "No such entity in your scope"}},
)
def entity_records(entity_code: CodePath, session: SessionDep, user: Viewer) -> records.RecordList:
    """Every record of an entity in your scope, newest decisions first, each saying whether the public
    page shows it today."""
    return records.list_records(session, viewer=user, code=entity_code)


class ScoreLine(BaseModel):
    record_id: int
    kind: str
    title: str
    decided_on: date
    status: str
    rule_points: float
    decay: float
    status_factor: float
    points: float
    reason: str


class ScoreCap(BaseModel):
    kind: str
    cap: float
    adjustment: float


class ScoreRead(BaseModel):
    entity_code: str
    score: float
    risk_class: str
    base: float
    thresholds: dict[str, float]
    lines: list[ScoreLine]
    caps: list[ScoreCap]
    stored_score: float | None  # as of the last recompute
    stored_class: str | None
    on: date


@router.get(
    "/entities/{entity_code}/score",
    response_model=ScoreRead,
    responses={404: {"description": "No such entity in your scope"}},
)
def entity_score(entity_code: CodePath, request: Request, session: SessionDep, user: Inspector) -> ScoreRead:
    """An entity's score and risk class today, explained record by record (credit.inspect; audited)."""
    entity = records.entity_by_code(session, viewer=user, code=entity_code)
    audit.record(
        session,
        user,
        "read",
        "credit_entity_score",
        entity.id,
        division_code=entity.division_code,
        request=request,
    )
    today = records.today_of(utcnow())
    found = scoring.explain(scoring.load_config(), records.records_of(session, entity.id), today=today)
    return ScoreRead(
        entity_code=entity.code,
        score=found.score,
        risk_class=found.risk_class,
        base=found.base,
        thresholds=found.thresholds,
        stored_score=entity.score,
        stored_class=entity.risk_class,
        on=today,
        lines=[
            ScoreLine(
                record_id=line.record.id,
                kind=line.record.kind,
                title=line.record.title,
                decided_on=line.record.decided_on,
                status=line.record.status,
                rule_points=line.rule_points,
                decay=round(line.decay, 4),
                status_factor=line.status_factor,
                points=line.points,
                reason=line.reason,
            )
            for line in found.lines
        ],
        caps=[ScoreCap(kind=k, cap=c, adjustment=a) for k, c, a in found.caps],
    )


CountyQuery = Annotated[
    str | None, Query(max_length=6, description="A county's division code, e.g. 410621: its townships")
]
SectionQuery = Annotated[str | None, Query(max_length=1, description="GB/T 4754-2017 section, A-T")]


@router.get(
    "/classes",
    response_model=figures.ClassDistribution,
    responses={
        200: {"content": {XLSX_MEDIA_TYPE: {}}},
        403: {"description": "Needs permission credit.inspect"},
        404: {"description": "No such county"},
        422: {"description": "Not a county code, an unknown section or grouping; names the field"},
    },
)
def class_distribution(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Inspector,
    by: Annotated[
        Literal["industry", "area"], Query(description="industry: per section; area: per county")
    ] = "industry",
    county: CountyQuery = None,
    section: SectionQuery = None,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
) -> figures.ClassDistribution | Response:
    """Active entities in your scope by risk class (A-D, not yet evaluated) per industry section or per
    county (per township with `county`), with totals and shares; `?format=xlsx` downloads the same table.
    credit.inspect; audited."""
    locale = locale_of(request)
    found = figures.class_distribution(
        session,
        viewer=user,
        by=by,
        county=county or None,
        section=section or None,
        locale=locale,
        request=request,
        export=format == "xlsx",
    )
    if format == "json":
        return found
    name = gettext_for(locale).gettext(figures.TITLE)
    return xlsx_response(
        f"{name}.xlsx",
        name,
        figures.export_headers(found, locale),
        figures.export_rows(found),
        timezone=settings.display_timezone,
    )
