"""The four meetings (四会): a centre's meeting at its level draws its agenda from the cases that arrived
at that level in its division since its previous meeting; each decision is recorded and may become a
new case or send the agenda case to a unit, with the link kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from cityops.cases import service as cases_service
from cityops.cases.schemas import ActionRequest, CaseCreate, CaseSummary
from cityops.core.auth.models import User
from cityops.core.auth.scope import authorize, division_level, scope_filter
from cityops.core.db import utcnow
from cityops.core.errors import Conflict, NotFound, ValidationFailed
from cityops.governance.assessment import repository as units_repo
from cityops.governance.assessment.service import unit_ref
from cityops.governance.meetings import repository as repo
from cityops.governance.meetings.models import AgendaItem, Meeting
from cityops.governance.meetings.schemas import (
    DecisionCreate,
    DrawResult,
    ItemCreate,
    ItemRead,
    MeetingCreate,
    MeetingPage,
    MeetingRead,
    MeetingSummary,
    MinutesUpdate,
)
from cityops.places.index import PlaceIndex

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# A centre's first meeting looks this far back for its agenda.
FIRST_WINDOW = timedelta(days=30)
MAX_EXPORT_ROWS = 100_000
KINDS: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {
        "village": ("说事评理会", "Village hearing (说事评理会)"),
        "township": ("综治联席会", "Township joint governance meeting (综治联席会)"),
        "county": ("评议会商会", "County review and consultation meeting (评议会商会)"),
        "city": ("分析研判会", "City analysis and assessment meeting (分析研判会)"),
    }
)


def _local(moment: datetime) -> datetime:
    """A time without zone is Beijing time, as an operator types it."""
    return moment.replace(tzinfo=LOCAL_TZ) if moment.tzinfo is None else moment


def _authorize(viewer: User, meeting: Meeting | None, meeting_id: int) -> Meeting:
    if meeting is None:
        raise NotFound(f"meeting {meeting_id} not found")
    authorize(
        viewer,
        division_code=meeting.division_code,
        org_unit_id=meeting.org_unit_id,
        resource="meeting",
        resource_id=meeting_id,
    )
    return meeting


def check_visible(session: Session, *, viewer: User, meeting_id: int) -> None:
    _authorize(viewer, repo.get(session, meeting_id), meeting_id)


def _condition(viewer: User) -> ColumnElement[bool]:
    return scope_filter(viewer, Meeting.division_code, Meeting.org_unit_id)


def _summary_values(session: Session, meeting: Meeting, counts: tuple[int, int]) -> dict[str, Any]:
    units = units_repo.units(session, [meeting.org_unit_id])
    zh, en = KINDS[meeting.level]
    return {
        "id": meeting.id,
        "level": meeting.level,
        "kind_zh": zh,
        "kind_en": en,
        "title": meeting.title,
        "division_code": meeting.division_code,
        "org_unit": unit_ref(units.get(meeting.org_unit_id or 0)),
        "held_at": meeting.held_at,
        "status": meeting.status,
        "items": counts[0],
        "decided": counts[1],
    }


def to_read(session: Session, meeting: Meeting, *, viewer: User) -> MeetingRead:
    rows = repo.items(session, meeting.id)
    ids = [i for r in rows for i in (r.case_id, r.result_case_id) if i is not None]
    cases: dict[int, CaseSummary] = {
        c.id: c for c in cases_service.cases_by_ids(session, viewer=viewer, ids=ids)
    }
    units = units_repo.units(session, (r.result_unit_id for r in rows))
    agenda = [
        ItemRead(
            id=r.id,
            position=r.position,
            title=r.title,
            case=cases.get(r.case_id or 0),
            decision=r.decision,
            outcome=r.outcome,
            result_case=cases.get(r.result_case_id or 0),
            result_unit=unit_ref(units.get(r.result_unit_id or 0)),
            decided_at=r.decided_at,
            decided_by_name=r.decided_by_name,
        )
        for r in rows
    ]
    counts = (len(rows), sum(1 for r in rows if r.decided_at is not None))
    return MeetingRead(
        **_summary_values(session, meeting, counts),
        attendees=[str(a) for a in meeting.attendees],
        minutes=meeting.minutes,
        agenda_since=meeting.agenda_since,
        agenda=agenda,
    )


def get_meeting(session: Session, *, viewer: User, meeting_id: int) -> MeetingRead:
    return to_read(session, _authorize(viewer, repo.get(session, meeting_id), meeting_id), viewer=viewer)


def list_meetings(
    session: Session,
    *,
    viewer: User,
    level: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> MeetingPage:
    if level and level not in KINDS:
        raise ValidationFailed(f"level must be one of {', '.join(KINDS)}", field="level")
    if status and status not in ("planned", "held"):
        raise ValidationFailed("status must be planned or held", field="status")
    rows, total = repo.page(
        session,
        repo.list_query(condition=_condition(viewer), level=level, status=status),
        limit=limit,
        offset=offset,
    )
    counts = repo.item_counts(session, (m.id for m in rows))
    return MeetingPage(
        items=[MeetingSummary(**_summary_values(session, m, counts.get(m.id, (0, 0)))) for m in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


EXPORT_HEADERS = (
    "ID",
    "Meeting",
    "Kind",
    "Level",
    "Division",
    "Centre",
    "Held at",
    "Status",
    "Agenda items",
    "Decided",
)


def export_rows(
    session: Session, *, viewer: User, level: str | None = None, status: str | None = None
) -> Iterator[list[Any]]:
    page = list_meetings(session, viewer=viewer, level=level, status=status, limit=MAX_EXPORT_ROWS)
    for m in page.items:
        yield [
            m.id,
            m.title,
            m.kind_zh,
            m.level,
            m.division_code,
            m.org_unit.name if m.org_unit else "",
            m.held_at,
            m.status,
            m.items,
            m.decided,
        ]


# --- writing ------------------------------------------------------------------------------------


def schedule(session: Session, *, actor: User, data: MeetingCreate, now: datetime | None = None) -> Meeting:
    """A meeting of the centre of a division in the actor's scope; its level follows the division."""
    division = (data.division_code or actor.scope_code or "")[:12]
    if not division:
        raise ValidationFailed("give the division whose centre meets", field="division_code")
    level = division_level(division)
    if level not in KINDS:
        raise ValidationFailed(f"no governance meeting is held for a {level}", field="division_code")
    centre = units_repo.unit_by_code(session, f"centre-{division}")
    if centre is None:
        raise ValidationFailed(f"no governance centre for division {division!r}", field="division_code")
    authorize(
        actor,
        division_code=division,
        org_unit_id=centre.id,
        resource="division",
        resource_id=division,
        hide=False,
    )
    now = now or utcnow()
    held_at = _local(data.held_at)
    title = (
        data.title or ""
    ).strip() or f"{centre.name}{KINDS[level][0]}（{held_at.astimezone(LOCAL_TZ):%Y-%m-%d}）"
    meeting = Meeting(
        level=level,
        division_code=division,
        org_unit_id=centre.id,
        title=title[:200],
        held_at=held_at,
        status="planned",
        attendees=list(data.attendees),
        minutes="",
        created_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(meeting)
    session.flush()
    return meeting


def _open(session: Session, actor: User, meeting_id: int) -> Meeting:
    meeting = _authorize(actor, repo.get(session, meeting_id), meeting_id)
    return meeting


def draw_agenda(
    session: Session, *, actor: User, meeting_id: int, since: datetime | None = None
) -> tuple[int, datetime]:
    """Put on the agenda every open case that arrived at the meeting's level in its division since the
    centre's previous meeting, or `since` (a case already on it is not added twice). Returns (added,
    since)."""
    meeting = _open(session, actor, meeting_id)
    if meeting.status != "planned":
        raise Conflict("the meeting has been held; its agenda is closed", field="meeting_id")
    before = repo.previous(session, meeting)
    if since is None:
        since = before.held_at if before is not None else min(meeting.held_at, utcnow()) - FIRST_WINDOW
    found = cases_service.cases_arrived_at(
        session, viewer=actor, level=meeting.level, division_code=meeting.division_code, since=since
    )
    present = {i.case_id for i in repo.items(session, meeting.id)}
    position = repo.next_position(session, meeting.id)
    added = 0
    for case in found:
        if case.id in present:
            continue
        session.add(
            AgendaItem(
                meeting_id=meeting.id,
                position=position,
                case_id=case.id,
                title=f"{case.number} {case.title}"[:200],
            )
        )
        position += 1
        added += 1
    meeting.agenda_since = since
    meeting.updated_at = utcnow()
    session.flush()
    return added, since


def draw_result(session: Session, *, actor: User, meeting_id: int) -> DrawResult:
    added, since = draw_agenda(session, actor=actor, meeting_id=meeting_id)
    return DrawResult(
        added=added, since=since, meeting=get_meeting(session, viewer=actor, meeting_id=meeting_id)
    )


def add_item(session: Session, *, actor: User, meeting_id: int, data: ItemCreate) -> AgendaItem:
    """A case the operator puts on the agenda by hand, or a topic without a case."""
    meeting = _open(session, actor, meeting_id)
    if meeting.status != "planned":
        raise Conflict("the meeting has been held; its agenda is closed", field="meeting_id")
    title = (data.title or "").strip()
    if data.case_id is not None:
        found = cases_service.cases_by_ids(session, viewer=actor, ids=[data.case_id])
        if not found:
            raise ValidationFailed(f"no case {data.case_id} in your scope", field="case_id")
        if any(i.case_id == data.case_id for i in repo.items(session, meeting.id)):
            raise Conflict(f"case {found[0].number} is already on the agenda", field="case_id")
        title = title or f"{found[0].number} {found[0].title}"
    elif not title:
        raise ValidationFailed("give a case or a title", field="title")
    row = AgendaItem(
        meeting_id=meeting.id,
        position=repo.next_position(session, meeting.id),
        case_id=data.case_id,
        title=title[:200],
    )
    session.add(row)
    session.flush()
    return row


def _assign(session: Session, actor: User, case_id: int, unit_code: str, decision: str) -> None:
    """Send the agenda case to a unit by the workflow's own moves: dispatch where the case may be
    dispatched (accepting it first if it has just arrived), otherwise re-route it."""
    reason = f"会议决定：{decision}"[:500]
    for _ in range(2):
        # Read without the audited personal details: only the state and version are needed.
        case = cases_service.to_read(
            session, cases_service.visible_case(session, viewer=actor, case_id=case_id), viewer=actor
        )
        allowed = case.allowed_actions
        if "dispatch" in allowed:
            cases_service.act(
                session,
                actor=actor,
                case_id=case_id,
                action="dispatch",
                body=ActionRequest(version=case.version, org_unit_code=unit_code, comment=reason),
            )
            return
        if "accept" in allowed:
            cases_service.act(
                session,
                actor=actor,
                case_id=case_id,
                action="accept",
                body=ActionRequest(version=case.version, comment=reason),
            )
            continue
        if "reroute" in allowed:
            cases_service.act(
                session,
                actor=actor,
                case_id=case_id,
                action="reroute",
                body=ActionRequest(version=case.version, org_unit_code=unit_code, reason=reason),
            )
            return
        break
    raise Conflict(
        f"case {case_id} cannot be sent to a unit in its state; allowed: "
        f"{', '.join(case.allowed_actions) or 'none'}",
        field="outcome",
    )


def decide(
    session: Session,
    *,
    actor: User,
    meeting_id: int,
    item_id: int,
    data: DecisionCreate,
    index: PlaceIndex | None,
    now: datetime | None = None,
) -> AgendaItem:
    """Record the decision on an agenda item and carry it out: a new case, or the agenda case sent to a
    unit. Once per item."""
    meeting = _open(session, actor, meeting_id)
    row = repo.item(session, meeting.id, item_id)
    if row is None:
        raise NotFound(f"agenda item {item_id} of meeting {meeting_id} not found")
    if row.decided_at is not None:
        raise Conflict(f"agenda item {item_id} has been decided already", field="item_id")
    now = now or utcnow()
    if data.outcome == "new_case":
        if data.new_case is None:
            raise ValidationFailed("a new case needs its type, category and title", field="new_case")
        lon, lat = data.new_case.lon, data.new_case.lat
        if (lon is None or lat is None) and row.case_id is not None:
            source = cases_service.visible_case(session, viewer=actor, case_id=row.case_id)
            lon, lat = source.lon, source.lat
        if lon is None or lat is None:
            raise ValidationFailed("give the new case's lon and lat", field="new_case.lon")
        if index is None:
            raise ValueError("a new case needs the place index")
        created = cases_service.report_case(
            session,
            index=index,
            reporter=actor,
            now=now,
            data=CaseCreate(
                type_code=data.new_case.type_code,
                category=data.new_case.category,
                title=data.new_case.title,
                description=data.new_case.description or f"{meeting.title}决定：{data.decision}"[:5000],
                lon=lon,
                lat=lat,
                fields=dict(data.new_case.fields),
            ),
        )
        row.result_case_id = created.id
    elif data.outcome == "assign":
        if row.case_id is None:
            raise ValidationFailed("only an agenda item with a case can be assigned", field="outcome")
        if not data.org_unit_code:
            raise ValidationFailed("give the unit to assign the case to", field="org_unit_code")
        unit = units_repo.unit_by_code(session, data.org_unit_code)
        if unit is None:
            raise ValidationFailed(f"no org unit with code {data.org_unit_code!r}", field="org_unit_code")
        _assign(session, actor, row.case_id, unit.code, data.decision)
        row.result_case_id = row.case_id
        row.result_unit_id = unit.id
    row.decision = data.decision.strip()
    row.outcome = data.outcome
    row.decided_at = now
    row.decided_by_name = actor.display_name
    meeting.updated_at = now
    session.flush()
    return row


def record_minutes(
    session: Session, *, actor: User, meeting_id: int, data: MinutesUpdate, now: datetime | None = None
) -> Meeting:
    meeting = _open(session, actor, meeting_id)
    if data.attendees is not None:
        meeting.attendees = list(data.attendees)
    if data.minutes is not None:
        meeting.minutes = data.minutes
    if data.held:
        meeting.status = "held"
    meeting.updated_at = now or utcnow()
    session.flush()
    return meeting


def count_meetings(session: Session) -> int:
    return repo.count_all(session)
