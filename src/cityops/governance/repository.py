"""Queries of the governance package.

The police result reads a closed case's row and timeline directly: the cases service only reads
cases on behalf of a signed-in viewer, and this runs as the system after the case has closed.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.cases.models import Case, CaseEvent
from cityops.core.auth.models import OrgUnit
from cityops.governance.models import PoliceTransfer


def transfer_by_incident(session: Session, incident_no: str) -> PoliceTransfer | None:
    return session.scalar(select(PoliceTransfer).where(PoliceTransfer.incident_no == incident_no))


def transfer_by_case(session: Session, case_id: int) -> PoliceTransfer | None:
    return session.scalar(select(PoliceTransfer).where(PoliceTransfer.case_id == case_id))


def case(session: Session, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def org_unit(session: Session, unit_id: int | None) -> OrgUnit | None:
    return session.get(OrgUnit, unit_id) if unit_id is not None else None


def latest_result(session: Session, case_id: int) -> str | None:
    """The result text of the last 'resolve' on the timeline (a case sent back and resolved again
    reports its final result)."""
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                                     CaseEvent.action == "resolve")
                             .order_by(CaseEvent.at.desc(), CaseEvent.id.desc()))
    for event in events:
        result = event.data.get("result")
        if isinstance(result, str) and result.strip():
            return result
    return None


def closing_comment(session: Session, case_id: int) -> str | None:
    event = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                                    CaseEvent.to_status == "closed")
                            .order_by(CaseEvent.at.desc(), CaseEvent.id.desc())).first()
    return event.comment if event is not None else None
