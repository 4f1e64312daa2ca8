"""Police transfers (警网融合): non-police 110 calls taken in as cases, the result pushed back.

The police system sends a call once or several times (it retries on timeouts); the incident number
is unique, so every retry answers the first case. When that case closes, the result is queued as a
signed webhook to the police system's callback URL (see cityops.core.webhooks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityops.cases import service as cases_service
from cityops.cases.schemas import CaseCreate
from cityops.core import webhooks
from cityops.core.auth.models import User
from cityops.core.auth.scope import sees_everything
from cityops.core.db import utcnow
from cityops.core.errors import Forbidden, NotFound, ValidationFailed
from cityops.governance import repository as repo
from cityops.governance.models import PoliceTransfer
from cityops.governance.schemas import (
    HandlingUnit,
    PoliceTransferCreate,
    PoliceTransferRead,
    TransferCategory,
)
from cityops.places.index import PlaceIndex

POLICE_UNIT = "dept-police"
RESULT_TYPE = "police_transfer.result"


@dataclass(frozen=True)
class TransferKind:
    """A police category of non-police calls and the case type and category it becomes."""

    name_zh: str
    name_en: str
    type_code: str
    category: str
    # Custom fields the case type requires: a dispute call always has (at least) two sides.
    fields: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))


_TWO_PARTIES = MappingProxyType({"parties": 2})
KINDS: MappingProxyType[str, TransferKind] = MappingProxyType({
    "neighbour_dispute": TransferKind("邻里纠纷", "Neighbour dispute", "dispute", "neighbour", _TWO_PARTIES),
    "noise": TransferKind("噪声扰民", "Noise", "dispute", "noise", _TWO_PARTIES),
    "family_dispute": TransferKind("婚姻家庭纠纷", "Family dispute", "dispute", "family", _TWO_PARTIES),
    "labour_dispute": TransferKind("劳资纠纷", "Wage and labour dispute", "dispute", "labour", _TWO_PARTIES),
    "property_dispute": TransferKind("物业纠纷", "Property management dispute", "dispute", "property",
                                     _TWO_PARTIES),
    "street_light": TransferKind("路灯不亮", "Street light out", "urban", "lighting"),
    "rubbish": TransferKind("垃圾堆放", "Dumped rubbish", "urban", "garbage"),
    "road_damage": TransferKind("道路破损", "Damaged road", "urban", "roads"),
    "water": TransferKind("供排水", "Water supply and drains", "urban", "water"),
})


def categories() -> list[TransferCategory]:
    return [TransferCategory(code=code, name_zh=k.name_zh, name_en=k.name_en, type_code=k.type_code,
                             category=k.category) for code, k in KINDS.items()]


def _kind(code: str) -> TransferKind:
    kind = KINDS.get(code)
    if kind is None:
        raise ValidationFailed(f"unknown transfer category {code!r}; known: {', '.join(KINDS)}",
                               field="category")
    return kind


def _check_sender(session: Session, sender: User) -> None:
    """Only the police department's accounts (or a city administrator) transfer calls."""
    if sees_everything(sender):
        return
    unit = repo.org_unit(session, sender.org_unit_id)
    if unit is None or unit.code != POLICE_UNIT:
        raise Forbidden("only accounts of the police department may transfer 110 calls")


def receive_transfer(session: Session, *, data: PoliceTransferCreate, index: PlaceIndex, sender: User,
                     now: datetime | None = None) -> tuple[PoliceTransfer, bool]:
    """Take in a transferred call as a case; returns (transfer, created). A known incident number
    returns the transfer made the first time, also when two copies arrive at once."""
    _check_sender(session, sender)
    existing = repo.transfer_by_incident(session, data.incident_no)
    if existing is not None:
        return existing, False
    kind = _kind(data.category)
    now = now or utcnow()
    case_data = CaseCreate(
        type_code=kind.type_code, category=kind.category,
        title=f"110转办：{kind.name_zh}（警情 {data.incident_no}）",
        description=data.description, lon=data.lon, lat=data.lat, reporter_name=data.caller_name,
        reporter_phone=data.caller_phone, source="police", fields=dict(kind.fields))
    try:
        # Claim the incident number first, in a savepoint: of two copies arriving at once, the second
        # fails here (after waiting for the first to commit) before it makes a case, and only the
        # savepoint is undone. Writing first also lets SQLite wait for the lock instead of failing.
        with session.begin_nested():
            transfer = PoliceTransfer(incident_no=data.incident_no, category=data.category,
                                      callback_url=str(data.callback_url), reported_at=data.reported_at,
                                      received_at=now)
            session.add(transfer)
            session.flush()
            case = cases_service.report_case(session, data=case_data, index=index, reporter=sender,
                                             now=now)
            transfer.case_id = case.id
    except IntegrityError:
        first = repo.transfer_by_incident(session, data.incident_no)
        if first is None:
            raise
        return first, False
    return transfer, True


def get_transfer(session: Session, *, viewer: User, incident_no: str) -> PoliceTransfer:
    """A transfer by the police incident number, for the police system checking on its call."""
    _check_sender(session, viewer)
    transfer = repo.transfer_by_incident(session, incident_no)
    if transfer is None:
        raise NotFound(f"no transfer with incident number {incident_no!r}")
    return transfer


def to_read(session: Session, transfer: PoliceTransfer) -> PoliceTransferRead:
    case = repo.case(session, transfer.case_id) if transfer.case_id is not None else None
    if case is None:
        raise NotFound(f"the case of incident {transfer.incident_no} no longer exists")
    unit = repo.org_unit(session, case.org_unit_id)
    return PoliceTransferRead(
        incident_no=transfer.incident_no, case_id=case.id, case_number=case.number, status=case.status,
        level=case.level, handling_unit=HandlingUnit(code=unit.code, name=unit.name) if unit else None,
        received_at=transfer.received_at, result_pushed_at=transfer.result_pushed_at)


def result_payload(session: Session, transfer: PoliceTransfer) -> dict[str, Any]:
    """What the police system receives when the case closes."""
    read = to_read(session, transfer)
    case = repo.case(session, read.case_id)
    assert case is not None  # to_read found it
    return {
        "type": RESULT_TYPE, "incident_no": transfer.incident_no, "case_id": case.id,
        "case_number": case.number, "status": case.status, "level": case.level,
        "result": repo.latest_result(session, case.id),
        "closing_comment": repo.closing_comment(session, case.id),
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        "handling_unit": read.handling_unit.model_dump() if read.handling_unit else None,
    }


def push_result(session: Session, *, case_id: int, event_id: str,
                now: datetime | None = None) -> webhooks.WebhookDelivery | None:
    """Queue the result of a closed transferred case for the police system's webhook; None when the
    case did not come from the police. Once per closing event (a reopened and closed case reports
    again)."""
    transfer = repo.transfer_by_case(session, case_id)
    if transfer is None:
        return None
    now = now or utcnow()
    delivery = webhooks.enqueue(session, url=transfer.callback_url,
                                payload=result_payload(session, transfer), event_id=event_id, now=now)
    transfer.result_pushed_at = now
    return delivery
