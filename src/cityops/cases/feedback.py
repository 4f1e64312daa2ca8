"""Reporter feedback: a satisfaction rating (1-5) of each closing of a case.

The reporter rates their own case, or a centre operator records what the reporter said on a
call-back. One rating per closing: a case reopened and closed again may be rated again. A rating of
NOT_SATISFIED or less reopens the case through the workflow's own "reopen" move, as the system, so
it gets a fresh deadline like any reopened case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityops.cases import service
from cityops.cases.models import Case, CaseFeedback
from cityops.cases.schemas import ActionRequest
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.auth.scope import scope_filter
from cityops.core.db import utcnow
from cityops.core.errors import Conflict, Forbidden, ValidationFailed

NOT_SATISFIED = 2
RECORDER_PERMISSION = "cases.dispatch"


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Required, but checked after the scope: a case outside it answers 404 whatever the body says.
    rating: int | None = Field(default=None, ge=1, le=5, description="1 (very unsatisfied) to 5")
    comment: str | None = Field(default=None, max_length=1000)


class FeedbackRead(BaseModel):
    id: int
    case_id: int
    rating: int
    comment: str | None
    channel: Literal["reporter", "phone"]
    closed_at: datetime
    created_at: datetime


def to_read(row: CaseFeedback) -> FeedbackRead:
    return FeedbackRead(
        id=row.id,
        case_id=row.case_id,
        rating=row.rating,
        comment=row.comment,
        channel="phone" if row.channel == "phone" else "reporter",
        closed_at=row.closed_at,
        created_at=row.created_at,
    )


def give(
    session: Session, *, viewer: User, case_id: int, body: FeedbackCreate, now: datetime | None = None
) -> CaseFeedback:
    """Rate the case's current closing. 403 for anyone but the reporter or a centre operator, 409
    when the case is not closed or this closing is already rated; a low rating reopens the case."""
    case = service.visible_case(session, viewer=viewer, case_id=case_id)
    own = case.reporter_user_id is not None and case.reporter_user_id == viewer.id
    if not own and not has_permission(viewer, RECORDER_PERMISSION):
        raise Forbidden("only the reporter, or a centre operator recording a call-back, may rate a case")
    if body.rating is None:
        raise ValidationFailed("give a rating from 1 to 5", field="rating")
    if case.status != "closed" or case.closed_at is None:
        raise Conflict(f"the case is {case.status}; it can be rated once it is closed", field="rating")
    if _rated(session, case):
        raise Conflict("this closing of the case has already been rated", field="rating")
    now = now or utcnow()
    row = CaseFeedback(
        case_id=case.id,
        closed_at=case.closed_at,
        rating=body.rating,
        comment=(body.comment or "").strip() or None,
        channel="reporter" if own else "phone",
        recorded_by_id=viewer.id,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # rated at the same moment by someone else
        raise Conflict("this closing of the case has already been rated", field="rating") from None
    service.record_line(
        session,
        case,
        action="feedback",
        actor=viewer,
        comment=row.comment,
        now=now,
        data={"rating": row.rating, "channel": row.channel},
    )
    if row.rating <= NOT_SATISFIED:
        service.act(
            session,
            actor=None,
            case_id=case.id,
            action="reopen",
            now=now,
            body=ActionRequest(
                version=case.version, reason=f"reporter not satisfied (rating {row.rating}/5)"
            ),
        )
    return row


def _rated(session: Session, case: Case) -> bool:
    return (
        session.scalar(
            select(CaseFeedback.id).where(
                CaseFeedback.case_id == case.id, CaseFeedback.closed_at == case.closed_at
            )
        )
        is not None
    )


def of_case(session: Session, *, viewer: User, case_id: int) -> list[FeedbackRead]:
    """Every rating of the case, oldest first."""
    service.visible_case(session, viewer=viewer, case_id=case_id)
    rows = session.scalars(
        select(CaseFeedback)
        .where(CaseFeedback.case_id == case_id)
        .order_by(CaseFeedback.created_at, CaseFeedback.id)
    )
    return [to_read(r) for r in rows]


def can_rate(session: Session, *, viewer: User, case_id: int) -> bool:
    """Whether the page should offer the rating form to this viewer now."""
    case = service.visible_case(session, viewer=viewer, case_id=case_id)
    own = case.reporter_user_id is not None and case.reporter_user_id == viewer.id
    return (
        (own or has_permission(viewer, RECORDER_PERMISSION))
        and case.status == "closed"
        and case.closed_at is not None
        and not _rated(session, case)
    )


class Satisfaction(BaseModel):
    count: int
    average: float | None


def satisfaction(
    session: Session,
    *,
    viewer: User,
    division_prefix: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Satisfaction:
    """Average rating and number of ratings given in [since, until) on cases in the viewer's scope
    (and under a division prefix), for figures and dashboards."""
    query = (
        select(func.count(CaseFeedback.id), func.avg(CaseFeedback.rating))
        .join(Case, Case.id == CaseFeedback.case_id)
        .where(scope_filter(viewer, Case.division_code, Case.org_unit_id, Case.reporter_user_id))
    )
    if division_prefix:
        query = query.where(Case.division_code.startswith(division_prefix, autoescape=True))
    if since is not None:
        query = query.where(CaseFeedback.created_at >= since)
    if until is not None:
        query = query.where(CaseFeedback.created_at < until)
    count, average = session.execute(query).one()
    return Satisfaction(
        count=int(count or 0), average=round(float(average), 2) if average is not None else None
    )
