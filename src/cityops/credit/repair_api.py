"""JSON routes of credit repair: issue a penalty with its four documents served together, read it and its
documents, its repair eligibility; repair applications and their decisions; the signed cross-region
exchange of repair results."""

from __future__ import annotations

from datetime import date
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.credit import repair
from cityops.credit.api import MAX_ID, Viewer
from cityops.places import service as places_service

RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]
ApplicationId = Annotated[int, Path(ge=1, le=MAX_ID)]
Repairer = Annotated[User, Depends(require_permission("credit.repair"))]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such record or application in your scope"},
    409: {"description": "Already issued, or a move the application's state does not allow"},
    422: {"description": "Invalid input; names the field"},
}

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/credit", tags=["credit repair"])


@router.post(
    "/penalties",
    response_model=repair.PenaltyRead,
    status_code=201,
    responses={**ERRORS, 500: {"description": "A document failed to generate; nothing stored"}},
)
def issue_penalty(
    body: repair.PenaltyCreate, session: SessionDep, settings: SettingsDep, user: Viewer
) -> repair.PenaltyRead:
    """Record an administrative penalty (publicity period by its severity) and serve its four documents
    together (四书同达: decision, credit-repair notice, commitment letter, compliance guidance) as PDFs.
    Needs credit.penalize or credit.manage."""
    return repair.issue_penalty(session, actor=user, data=body, files_root=FsPath(settings.attachments_dir))


@router.get("/penalties/{record_id}", response_model=repair.PenaltyRead, responses=ERRORS)
def get_penalty(record_id: RecordId, session: SessionDep, user: Viewer) -> repair.PenaltyRead:
    """A penalty with its documents and their serving."""
    return repair.get_penalty(session, viewer=user, record_id=record_id)


@router.get(
    "/penalties/{record_id}/documents/{kind}",
    response_class=FileResponse,
    responses={200: {"content": {"application/pdf": {}}}, **ERRORS},
)
def get_document(
    record_id: RecordId,
    kind: Literal["decision", "repair_notice", "commitment", "guidance"],
    session: SessionDep,
    settings: SettingsDep,
    user: Viewer,
) -> FileResponse:
    """One of the penalty's four documents (PDF)."""
    path, filename = repair.document_file(
        session, viewer=user, record_id=record_id, kind=kind, files_root=FsPath(settings.attachments_dir)
    )
    return FileResponse(path, media_type="application/pdf", filename=filename)


@router.get("/penalties/{record_id}/eligibility", response_model=repair.Eligibility, responses=ERRORS)
def get_eligibility(record_id: RecordId, session: SessionDep, user: Viewer) -> repair.Eligibility:
    """Whether the penalty may be repaired now, and from which day."""
    return repair.eligibility(session, viewer=user, record_id=record_id)


@router.post("/repair/applications", response_model=repair.RepairRead, status_code=201, responses=ERRORS)
def apply(
    body: repair.RepairApply, request: Request, session: SessionDep, user: Repairer
) -> repair.RepairRead:
    """Take in a repair application as a credit_repair case with its deadline. Before the minimum
    publication has passed: 422 with the day it may be applied for. Missing materials: recorded as
    refused, each missing one named."""
    index = places_service.cache_for(request.app.state).index(session)
    return repair.apply_for_repair(session, actor=user, data=body, index=index)


@router.get("/repair/applications", response_model=list[repair.RepairRead], responses=ERRORS)
def list_applications(
    session: SessionDep,
    user: Viewer,
    status: Annotated[Literal["submitted", "accepted", "refused", "repaired"] | None, Query()] = None,
    entity_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[repair.RepairRead]:
    """Repair applications of entities in your scope, newest first."""
    return repair.list_applications(
        session, viewer=user, status=status, entity_id=entity_id, limit=limit, offset=offset
    )


@router.get("/repair/applications/{application_id}", response_model=repair.RepairRead, responses=ERRORS)
def get_application(application_id: ApplicationId, session: SessionDep, user: Viewer) -> repair.RepairRead:
    return repair.get_application(session, viewer=user, application_id=application_id)


@router.post(
    "/repair/applications/{application_id}/decision", response_model=repair.RepairRead, responses=ERRORS
)
def decide(
    application_id: ApplicationId, body: repair.RepairDecision, session: SessionDep, user: Repairer
) -> repair.RepairRead:
    """accept, refuse (with its reason) or grant: a granted repair sets the penalty repaired and ends
    its publication."""
    return repair.decide(session, actor=user, application_id=application_id, data=body)


@router.get("/repair/messages", response_model=list[repair.MessageRead], responses=ERRORS)
def messages(
    session: SessionDep,
    user: Repairer,
    unsent: Annotated[bool, Query()] = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[repair.MessageRead]:
    """Messages to entities (their penalty became repairable), oldest first: what a text-message or
    mail gateway sends."""
    return repair.outbox(session, actor=user, unsent_only=unsent, limit=limit)


@router.post("/repair/messages/{message_id}/sent", response_model=repair.MessageRead, responses=ERRORS)
def mark_sent(message_id: ApplicationId, session: SessionDep, user: Repairer) -> repair.MessageRead:
    """The gateway's acknowledgement that a message went out."""
    return repair.mark_sent(session, actor=user, message_id=message_id)


# --- exchange with other regions' platforms -------------------------------------------------------


class PartnerCreate(BaseModel):
    code: str = Field(min_length=2, max_length=40, description="e.g. anyang-410500")
    name: repair.Text = Field(default="", max_length=100)


class PartnerRead(BaseModel):
    code: str
    name: str
    active: bool


@router.post(
    "/repair-exchange",
    response_model=repair.ExchangeApplied,
    responses={
        401: {"description": "Unknown partner, bad signature or stale signing time"},
        404: {"description": "No matching record"},
        409: {"description": "Replay: the nonce was received before"},
        422: {"description": "Invalid message; names the field"},
    },
)
def receive(body: repair.SignedMessage, session: SessionDep, settings: SettingsDep) -> repair.ExchangeApplied:
    """A partner platform's repair result, signed with HMAC-SHA256 under the key shared with it (the
    signature is its credential: no account is needed). Applied to the matching record."""
    return repair.receive(session, signed=body, secret=settings.derived_secret)


@router.get("/repair-exchange/outgoing", response_model=list[repair.SignedMessage], responses=ERRORS)
def outgoing(
    session: SessionDep,
    settings: SettingsDep,
    user: Repairer,
    partner: Annotated[str, Query(min_length=2, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")],
    since: Annotated[date | None, Query()] = None,
) -> list[repair.SignedMessage]:
    """The repairs granted here, each signed for the partner to take in."""
    return repair.outgoing(session, partner_code=partner, secret=settings.derived_secret, since=since)


@router.post("/repair-exchange/partners", response_model=PartnerRead, status_code=201, responses=ERRORS)
def add_partner(body: PartnerCreate, session: SessionDep, user: Repairer) -> PartnerRead:
    """Register (or re-activate) a partner platform; its key is handed over with
    `cityops credit repair partner-key CODE`, never through the API."""
    found = repair.add_partner(session, actor=user, code=body.code, name=body.name)
    return PartnerRead(code=found.code, name=found.name, active=found.active)
