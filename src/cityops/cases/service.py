"""Case rules: intake, reading in scope, the timeline and workflow actions.

Services flush, never commit: the request or the caller's unit of work commits. Every change writes
a timeline line and an outbox event in the same transaction.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, insert, select, true, union
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cityops.cases import figures, routing, search, sla
from cityops.cases import repository as repo
from cityops.cases import types as case_types
from cityops.cases.models import Case, CaseEvent
from cityops.cases.schemas import (
    ActionRequest,
    CaseCreate,
    CaseEventRead,
    CasePage,
    CaseRead,
    CaseSummary,
    FigureRead,
    FiguresRead,
    OrgUnitRef,
)
from cityops.cases.workflow import (
    FINAL_STATES,
    LEVELS,
    STATES,
    WORKFLOWS,
    Transition,
    allowed_actions,
    level_above,
    level_below,
    transition_for,
)
from cityops.core.auth import audit
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.pii import mask_phone
from cityops.core.auth.roles import can_view_pii, has_permission
from cityops.core.auth.scope import authorize, scope_filter, scope_prefix, sees_everything
from cityops.core.db import Database, insert_all, table_of, utcnow
from cityops.core.errors import (
    CityopsError,
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from cityops.core.events import Event, emit, emit_many, event_type
from cityops.core.group_commit import GroupCommit
from cityops.core.scheduler import Job
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

log = logging.getLogger(__name__)
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MAX_EXPORT_ROWS = 100_000
BOXES = ("scope", "unit", "mine")


# --- events -------------------------------------------------------------------------------------


@event_type
@dataclasses.dataclass(frozen=True)
class CaseReported(Event):
    topic = "cases.reported"
    case_id: int
    number: str
    type_code: str
    category: str
    level: str
    division_code: str
    org_unit_id: int | None
    source: str
    # What the notices need, so subscribers need not read the case back (None in events written
    # before these fields existed).
    title: str | None = None
    reported_at: str | None = None
    reporter_id: int | None = None


@event_type
@dataclasses.dataclass(frozen=True)
class CaseTransitioned(Event):
    topic = "cases.transitioned"
    case_id: int
    number: str
    action: str
    from_status: str
    to_status: str
    level: str
    org_unit_id: int | None
    actor_id: int | None


# --- reading ------------------------------------------------------------------------------------


def mask_name(name: str | None) -> str | None:
    """张三丰 -> 张**: the surname stays, like a masked phone keeps its prefix."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)


def _unit_ref(unit: OrgUnit | None) -> OrgUnitRef | None:
    return OrgUnitRef(id=unit.id, code=unit.code, name=unit.name) if unit is not None else None


def _summary_values(case: Case, unit: OrgUnit | None, *, pii_visible: bool) -> dict[str, Any]:
    registry = case_types.registry()
    try:
        case_type = registry.find(case.type_code)
        type_name = case_type.name_zh
        category_name = case_type.category(case.category).name_zh
    except (NotFound, ValidationFailed):  # a type or category since removed from the file
        type_name, category_name = case.type_code, case.category
    return {
        "id": case.id, "number": case.number, "type_code": case.type_code, "type_name": type_name,
        "category": case.category, "category_name": category_name, "title": case.title,
        "status": case.status, "level": case.level, "division_code": case.division_code,
        "village_code": case.village_code, "org_unit": _unit_ref(unit),
        "reporter_name": case.reporter_name if pii_visible else mask_name(case.reporter_name),
        "reporter_phone": case.reporter_phone if pii_visible else mask_phone(case.reporter_phone),
        "source": case.source, "deadline_at": case.deadline_at, "created_at": case.created_at,
        "updated_at": case.updated_at, "version": case.version, **deadline_state(case, now=utcnow()),
    }


def _authorize(viewer: User | None, case: Case | None, case_id: int) -> Case:
    if case is None:
        raise NotFound(f"case {case_id} not found")
    authorize(viewer, division_code=case.division_code, org_unit_id=case.org_unit_id,
              owner_id=case.reporter_user_id, resource="case", resource_id=case_id)
    return case


def _workflow_of(case: Case) -> dict[tuple[str, str], Transition]:
    return dict(WORKFLOWS[case_types.registry().find(case.type_code).workflow])


def to_read(session: Session, case: Case, *, viewer: User | None) -> CaseRead:
    unit = session.get(OrgUnit, case.org_unit_id) if case.org_unit_id is not None else None
    pii_visible = viewer is None or can_view_pii(viewer) or viewer.id == case.reporter_user_id
    workflow = _workflow_of(case)
    allowed = [a for a in allowed_actions(workflow, case.status)
               if viewer is None or has_permission(viewer, workflow[(case.status, a)].permission)]
    return CaseRead(
        **_summary_values(case, unit, pii_visible=pii_visible),
        description=case.description, grid_code=case.grid_code, lon=case.lon, lat=case.lat,
        assignee_id=case.assignee_id, public=case.public, fields=case.fields,
        merged_into_id=case.merged_into_id, paused_at=case.paused_at, paused_seconds=case.paused_seconds,
        closed_at=case.closed_at, pii_visible=pii_visible, allowed_actions=allowed,
    )


def deadline_state(case: Case, *, now: datetime) -> dict[str, Any]:
    """The countdown of a case: working seconds left (negative once overdue) and the overdue flag.
    A case whose clock has stopped (resolved, closed ...) is never overdue; a paused one is overdue
    only if it was when it paused."""
    remaining = sla.remaining_seconds(case, now=now)
    running = case.status not in sla.CLOCK_STOPPED_STATES
    moment = case.paused_at or now
    return {"remaining_seconds": remaining,
            "overdue": running and case.deadline_at is not None and case.deadline_at < moment}


def get_case(session: Session, *, viewer: User, case_id: int, request: Any = None) -> CaseRead:
    """One case in the viewer's scope (404 outside it). Reading a reporter's unmasked details is
    audited."""
    case = _authorize(viewer, repo.get(session, case_id), case_id)
    read = to_read(session, case, viewer=viewer)
    has_pii = bool(case.reporter_phone or case.reporter_name)
    if read.pii_visible and viewer.id != case.reporter_user_id and has_pii:
        audit.record(session, viewer, "pii_read", "case", case.id, division_code=case.division_code,
                     request=request, detail={"fields": ["reporter_name", "reporter_phone"]})
    return read


def _list_condition(viewer: User) -> ColumnElement[bool]:
    """The viewer's cases as a list condition. A county, township or village scope holds a small
    share of the city's cases: its three ways in (division, unit, own reports) are read from their
    indexes and united, since an OR of them makes SQLite walk the whole table or a sort index."""
    try:
        narrow = not sees_everything(viewer) and len(scope_prefix(viewer.scope_code or "")) >= 6
    except ValueError:
        narrow = False
    if not narrow:
        return scope_filter(viewer, Case.division_code, Case.org_unit_id, Case.reporter_user_id)
    parts = [scope_filter(viewer, Case.division_code), scope_filter(viewer, None, Case.org_unit_id),
             scope_filter(viewer, None, None, Case.reporter_user_id)]
    return Case.id.in_(union(*(select(Case.id).where(part) for part in parts)))


def _check_filters(status: Sequence[str], type_code: str | None, level: str | None) -> None:
    for value in status:
        if value not in STATES:
            raise ValidationFailed(f"unknown status {value!r}; known: {', '.join(STATES)}", field="status")
    if level is not None and level not in LEVELS:
        raise ValidationFailed(f"level must be one of {', '.join(LEVELS)}, not {level!r}", field="level")
    if type_code is not None:
        case_types.registry().get(type_code)


def _filtered(session: Session, viewer: User, *, status: Sequence[str], type_code: str | None,
              level: str | None, q: str | None, box: str, open_only: bool, overdue: bool,
              sort: str) -> Select[Any]:
    _check_filters(status, type_code, level)
    if box not in BOXES:
        raise ValidationFailed(f"box must be one of {', '.join(BOXES)}, not {box!r}", field="box")
    if sort not in repo.SORTS:
        raise ValidationFailed(f"sort must be one of {', '.join(repo.SORTS)}, not {sort!r}", field="sort")
    if box == "unit" and viewer.org_unit_id is None:
        raise ValidationFailed("your account belongs to no org unit", field="box")
    q = (q or "").strip()
    # The unit's own cases are always in its staff's scope (see core.auth.scope.can_access), so the
    # unit box needs no scope condition beside the unit: one index answers it.
    condition = true() if box == "unit" else _list_condition(viewer)
    return repo.list_query(condition=condition, status=status, type_code=type_code,
                           level=level, text=search.matches(session, q) if q else None, open_only=open_only,
                           assignee_id=viewer.id if box == "mine" else None,
                           org_unit_id=viewer.org_unit_id if box == "unit" else None,
                           overdue_at=utcnow() if overdue else None)


def list_cases(session: Session, *, viewer: User, status: Sequence[str] = (), type_code: str | None = None,
               level: str | None = None, q: str | None = None, limit: int = 50, offset: int = 0,
               box: str = "scope", open_only: bool = False, overdue: bool = False,
               sort: str = "newest") -> CasePage:
    """Cases in the viewer's scope; reporter details always masked in lists.

    `box` narrows to the viewer's org unit ("unit") or to the cases assigned to them ("mine");
    `open_only` drops closed, rejected and merged cases; `overdue` keeps running cases past their
    deadline; `sort` is newest, oldest or deadline (soonest first)."""
    query = _filtered(session, viewer, status=status, type_code=type_code, level=level, q=q, box=box,
                      open_only=open_only, overdue=overdue, sort=sort)
    rows, total = repo.page(session, query, limit=limit, offset=offset, sort=sort)
    units = repo.org_units(session, (c.org_unit_id for c in rows))
    items = [CaseSummary(**_summary_values(c, units.get(c.org_unit_id or 0), pii_visible=False))
             for c in rows]
    return CasePage(items=items, total=total, total_is_lower_bound=total > repo.COUNT_CAP, limit=limit,
                    offset=offset)


EXPORT_HEADERS = ("Number", "Type", "Category", "Title", "Status", "Level", "Division", "Handling unit",
                  "Reporter", "Phone", "Source", "Deadline", "Reported at")


def export_rows(session: Session, *, viewer: User, status: Sequence[str] = (), type_code: str | None = None,
                level: str | None = None, q: str | None = None, box: str = "scope", open_only: bool = False,
                overdue: bool = False, sort: str = "newest") -> Iterator[list[Any]]:
    """Every case of the filtered list (masked like the list), for the Excel export."""
    query = _filtered(session, viewer, status=status, type_code=type_code, level=level, q=q, box=box,
                      open_only=open_only, overdue=overdue, sort=sort)
    rows, _total = repo.page(session, query, limit=MAX_EXPORT_ROWS, offset=0, sort=sort)
    units = repo.org_units(session, (c.org_unit_id for c in rows))
    for case in rows:
        v = _summary_values(case, units.get(case.org_unit_id or 0), pii_visible=False)
        unit = v["org_unit"]
        yield [v["number"], v["type_name"], v["category_name"], v["title"], v["status"], v["level"],
               v["division_code"], unit.name if unit else "", v["reporter_name"] or "",
               v["reporter_phone"] or "", v["source"], v["deadline_at"], v["created_at"]]


def timeline(session: Session, *, viewer: User, case_id: int) -> list[CaseEventRead]:
    _authorize(viewer, repo.get(session, case_id), case_id)
    rows = repo.events(session, case_id)
    units = repo.org_units(session, (e.org_unit_id for e in rows))
    return [_event_read(e, units) for e in rows]


def _event_read(e: CaseEvent, units: dict[int, OrgUnit]) -> CaseEventRead:
    return CaseEventRead(id=e.id, action=e.action, actor_id=e.actor_id, actor_name=e.actor_name,
                         from_status=e.from_status, to_status=e.to_status, level=e.level,
                         org_unit=_unit_ref(units.get(e.org_unit_id or 0)), comment=e.comment,
                         data=e.data, at=e.at)


# --- intake -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpenedCase:
    """A case taken in by `open_cases`: what its caller and the intake's records need of it, not loaded
    into the session (for a batch of thousands the objects cost more than the rows)."""

    id: int
    number: str
    type_code: str
    category: str
    title: str
    status: str
    level: str
    division_code: str
    org_unit_id: int | None
    source: str
    deadline_at: datetime | None
    updated_at: datetime


OPENED_FIELDS = tuple(f.name for f in dataclasses.fields(OpenedCase) if f.name != "id")


def _line(case: Case | OpenedCase, *, action: str, actor: User | None, from_status: str | None,
          comment: str | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values of a timeline line recording the case as it is now."""
    return {"case_id": case.id, "action": action, "actor_id": actor.id if actor else None,
            "actor_name": actor.display_name if actor else None, "from_status": from_status,
            "to_status": case.status, "level": case.level, "org_unit_id": case.org_unit_id,
            "comment": comment, "data": data or {}, "at": case.updated_at}


def _record(session: Session, case: Case, *, action: str, actor: User | None, from_status: str | None,
            comment: str | None = None, data: dict[str, Any] | None = None) -> None:
    session.add(CaseEvent(**_line(case, action=action, actor=actor, from_status=from_status,
                                  comment=comment, data=data)))


@dataclasses.dataclass(frozen=True)
class Intake:
    """One report to take in, and who reports it (None: the system, e.g. the simulator)."""

    data: CaseCreate
    reporter: User | None = None
    # A deadline of its own instead of the type's SLA (a warning's task, due minutes after the
    # warning whatever the working calendar says).
    deadline_at: datetime | None = None


def _prepare(session: Session, intake: Intake, index: PlaceIndex,
             now: datetime) -> tuple[dict[str, Any], routing.Route]:
    """Validate type, category, custom fields and location, and route: reads only, no writes.
    Answers the new case's values."""
    data, reporter = intake.data, intake.reporter
    case_type = case_types.registry().get(data.type_code)
    if case_type.automatic and reporter is not None:
        raise ValidationFailed(f"cases of type {case_type.code!r} are opened by the platform, not reported",
                               field="type_code")
    case_type.category(data.category)
    fields = case_type.clean_fields(data.fields)
    where = routing.locate(index, lon=data.lon, lat=data.lat)
    chosen = routing.route(session, case_type=case_type, category=data.category,
                           village_code=where.village_code, level=case_type.level)
    deadline = intake.deadline_at or sla.deadline_for(case_type.sla, case_type.level, now)
    # A signed-in citizen is the reporter; staff report on someone's behalf with the name given.
    own = reporter is not None and not has_permission(reporter, "cases.dispatch") \
        and not has_permission(reporter, "cases.handle")
    values = {
        "type_code": case_type.code, "category": data.category, "title": data.title.strip(),
        "description": data.description, "status": "reported", "level": case_type.level,
        "division_code": where.division_code, "grid_code": where.grid_code,
        "village_code": where.village_code, "lon": where.lon, "lat": where.lat,
        "org_unit_id": chosen.org_unit_id,
        "reporter_name": data.reporter_name or (reporter.display_name if own and reporter else None),
        "reporter_phone": data.reporter_phone or (reporter.phone if own and reporter else None),
        "reporter_user_id": reporter.id if own and reporter else None, "source": data.source,
        "public": case_type.public, "fields": fields, "created_at": now, "updated_at": now,
        "deadline_at": deadline,
    }
    return values, chosen


Prepared = tuple[dict[str, Any], routing.Route, User | None]
# From this many cases the bulk intake reads every org unit at once rather than each on first use.
PRELOAD_UNITS_FROM = 100


def _prepare_all(session: Session, intakes: Sequence[Intake], index: PlaceIndex,
                 now: datetime) -> tuple[dict[int, CityopsError], list[Prepared]]:
    """`_prepare` for each intake: the errors refusing some (by position) and the values of the others."""
    refused: dict[int, CityopsError] = {}
    ready: list[Prepared] = []
    for position, intake in enumerate(intakes):
        try:
            values, chosen = _prepare(session, intake, index, now)
        except CityopsError as exc:
            refused[position] = exc
            continue
        ready.append((values, chosen, intake.reporter))
    return refused, ready


def _number(session: Session, ready: list[Prepared], now: datetime) -> list[dict[str, Any]]:
    """Number the prepared cases with one UPDATE and index their text; answers their rows. The numbers
    are the transaction's first write: from here to the commit other writers wait, so everything that
    only reads (validation, routing, deadlines) is done before."""
    year = now.astimezone(LOCAL_TZ).year
    numbers = repo.next_numbers(session, prefix=case_types.registry().number_prefix, year=year,
                                count=len(ready))
    for (values, _, _), number in zip(ready, numbers, strict=True):
        values["number"] = number
        values["search_text"] = search.search_text(number, values["title"], values["description"])
    return [values for values, _, _ in ready]


def _record_intake(session: Session, cases: Sequence[Case | OpenedCase], ready: list[Prepared],
                   now: datetime) -> None:
    """The first timeline line and the CaseReported event of each new case (one INSERT each)."""
    session.connection().execute(insert(table_of(CaseEvent)), [
        _line(case, action="report", actor=reporter, from_status=None,
              data={"routed_to": chosen.org_unit_code, "routing": chosen.reason,
                    "deadline_at": case.deadline_at.isoformat() if case.deadline_at else None})
        for case, (_, chosen, reporter) in zip(cases, ready, strict=True)])
    emit_many(session, [
        CaseReported(case_id=case.id, number=case.number, type_code=case.type_code,
                     category=case.category, level=case.level, division_code=case.division_code,
                     org_unit_id=case.org_unit_id, source=case.source, title=case.title,
                     reported_at=now.isoformat(), reporter_id=reporter.id if reporter else None)
        for case, (_, _, reporter) in zip(cases, ready, strict=True)])


def report_cases(session: Session, *, intakes: Sequence[Intake], index: PlaceIndex,
                 now: datetime | None = None) -> list[Case | CityopsError]:
    """Take in several reports at once (the HTTP intake's group commit): per report the new case,
    or the error refusing it (the others are taken in all the same)."""
    now = now or utcnow()
    refused, ready = _prepare_all(session, intakes, index, now)
    cases: list[Case] = []
    if ready:
        cases = insert_all(session, Case, _number(session, ready, now), key="number")
        _record_intake(session, cases, ready, now)
    written = iter(cases)
    return [refused[position] if position in refused else next(written) for position in range(len(intakes))]


def open_cases(session: Session, *, intakes: Sequence[Intake], index: PlaceIndex,
               now: datetime | None = None) -> list[OpenedCase | CityopsError]:
    """The bulk intake of cases the platform opens by the hundred (a warning's tasks): the rules of
    `report_cases` (validation, location and routing to the grid's unit, the type's SLA or the intake's
    own deadline, numbering, the first timeline line and a CaseReported event through the outbox), with
    one INSERT per table and the cases left out of the session. Per intake the case opened, or the error
    refusing it (the others are opened all the same)."""
    now = now or utcnow()
    if len(intakes) >= PRELOAD_UNITS_FROM:  # routing looks each unit up once per session otherwise
        known = session.info.get(routing.UNIT_CACHE_KEY, {})
        routing.share_unit_cache(session, {**repo.org_units_by_code(session), **known})
    refused, ready = _prepare_all(session, intakes, index, now)
    cases: list[OpenedCase] = []
    if ready:
        rows = _number(session, ready, now)
        table = table_of(Case)
        ids = {number: case_id for number, case_id in session.connection().execute(
            insert(table).returning(table.c.number, table.c.id), rows)}
        cases = [OpenedCase(id=ids[row["number"]], **{name: row[name] for name in OPENED_FIELDS})
                 for row in rows]
        _record_intake(session, cases, ready, now)
    written = iter(cases)
    return [refused[position] if position in refused else next(written) for position in range(len(intakes))]


def report_case(session: Session, *, data: CaseCreate, index: PlaceIndex, reporter: User | None = None,
                now: datetime | None = None, deadline_at: datetime | None = None) -> Case:
    """Take in a case: validate type, category, custom fields and location, route it, number it."""
    [outcome] = report_cases(session, intakes=[Intake(data, reporter, deadline_at)], index=index, now=now)
    if isinstance(outcome, CityopsError):
        raise outcome
    return outcome


IntakeQueue = GroupCommit[Intake, Case, CaseRead]


def intake_queue(state: Any) -> IntakeQueue:
    """The group commit of HTTP intake on an app's state (created on first use): reports arriving
    together are written in one transaction, each answered with its case as its reporter sees it."""
    queue: IntakeQueue | None = getattr(state, "case_intake", None)
    if queue is None:
        places = places_service.cache_for(state)
        queue = GroupCommit(
            state.db, name="case-intake",
            write=lambda session, intakes: report_cases(session, intakes=intakes,
                                                        index=places.index(session)),
            answer=lambda session, intake, case: to_read(session, case, viewer=intake.reporter))
        state.case_intake = queue
    return queue


# --- actions ------------------------------------------------------------------------------------


def _check_guards(case: Case, action: str, transition: Transition, actor: User | None,
                  body: ActionRequest) -> None:
    if actor is not None and not has_permission(actor, transition.permission):
        raise Forbidden(f"your role may not {action} a case (needs permission {transition.permission!r})")
    if case.level not in transition.levels:
        raise InvalidTransition(f"action {action!r} is not allowed at the {case.level} level",
                                detail={"state": case.status, "level": case.level})
    for name in transition.requires:
        value = getattr(body, name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValidationFailed(f"action {action!r} needs {name}", field=name)


def _assign_person(session: Session, case: Case, actor: User | None, body: ActionRequest) -> None:
    if body.assignee_id is not None:
        person = session.get(User, body.assignee_id)
        if person is None or not person.is_active:
            raise ValidationFailed(f"no active user {body.assignee_id}", field="assignee_id")
        if not has_permission(person, "cases.handle"):
            raise ValidationFailed(f"user {body.assignee_id} may not handle cases", field="assignee_id")
        case.assignee_id = person.id
    elif actor is not None and case.assignee_id is None and has_permission(actor, "cases.handle"):
        case.assignee_id = actor.id


def _move_level(session: Session, case: Case, level: str, body: ActionRequest, now: datetime) -> None:
    case.level = level
    if body.org_unit_code:
        case.org_unit_id = routing.unit_by_code(session, body.org_unit_code).id
    else:
        case.org_unit_id = routing.org_unit_id(
            session, routing.centre_code(routing.division_at(case.village_code, level)))
    case.assignee_id = None
    # The new level gets its own SLA from the moment the case arrives there; a pause does not
    # carry over to another centre.
    case.paused_at = None
    case.deadline_at = sla.deadline_for(case_types.registry().find(case.type_code).sla, level, now)


def _apply(session: Session, case: Case, effect: str, actor: User | None, body: ActionRequest,
           now: datetime) -> None:
    if effect == "assign_unit" and body.org_unit_code:
        case.org_unit_id = routing.unit_by_code(session, body.org_unit_code).id
        case.assignee_id = None
    elif effect == "assign_person":
        _assign_person(session, case, actor, body)
    elif effect == "escalate":
        above = level_above(case.level)
        assert above is not None  # the transition's level guard keeps city cases out
        _move_level(session, case, above, body, now)
    elif effect == "delegate":
        below = level_below(case.level)
        assert below is not None
        _move_level(session, case, below, body, now)
    elif effect == "pause":
        if case.paused_at is not None:
            raise Conflict("the case is already paused", field="action")
        sla.pause_clock(case, now=now)
    elif effect == "resume":
        if case.paused_at is None:
            raise Conflict("the case is not paused", field="action")
        sla.resume_clock(case, now=now)
    elif effect == "close":
        case.closed_at = now
    elif effect == "reopen":
        case.closed_at = None
        # A reopened case is handled again at its level, with a fresh deadline.
        case.deadline_at = sla.deadline_for(case_types.registry().find(case.type_code).sla, case.level, now)
    elif effect == "merge":
        _merge_into(session, case, actor, body)


def _merge_into(session: Session, case: Case, actor: User | None, body: ActionRequest) -> None:
    assert body.merged_into is not None
    if body.merged_into == case.id:
        raise ValidationFailed("a case cannot be merged into itself", field="merged_into")
    target = repo.get(session, body.merged_into)
    if target is None or (actor is not None and not _can_see(actor, target)):
        raise ValidationFailed(f"no case {body.merged_into} to merge into", field="merged_into")
    if target.status in FINAL_STATES:
        raise ValidationFailed(f"case {target.number} is {target.status}; merge into an open case",
                               field="merged_into")
    case.merged_into_id = target.id


def _can_see(user: User, case: Case) -> bool:
    try:
        authorize(user, division_code=case.division_code, org_unit_id=case.org_unit_id,
                  owner_id=case.reporter_user_id)
    except (NotFound, Forbidden):
        return False
    return True


def act(session: Session, *, actor: User | None, case_id: int, action: str, body: ActionRequest,
        now: datetime | None = None) -> Case:
    """Apply a workflow action. `actor=None` is the system (e.g. the escalation scheduler).

    Refuses: outside the actor's scope (404), an undeclared move (409 with the allowed moves), a stale
    version (409), a missing permission (403), missing required fields (422)."""
    case = repo.get(session, case_id)
    if actor is not None:
        case = _authorize(actor, case, case_id)
    elif case is None:
        raise NotFound(f"case {case_id} not found")
    if body.version is None:
        raise ValidationFailed("give the version of the case you acted on", field="version")
    # Version first: a move refused because the case has moved on is reported as what it is.
    if body.version != case.version:
        raise Conflict(f"stale version: you acted on version {body.version}, the case is at version "
                       f"{case.version}; reload it", code="stale_version",
                       detail={"version": case.version, "status": case.status})
    transition = transition_for(_workflow_of(case), case.status, action)
    _check_guards(case, action, transition, actor, body)
    now = now or utcnow()
    from_status = case.status
    deadline_before = case.deadline_at
    # One action is one UPDATE: effects that look things up must not flush a half-made change
    # (that would bump the version twice).
    with session.no_autoflush:
        for effect in transition.effects:
            _apply(session, case, effect, actor, body, now)
        case.status = transition.to
        case.updated_at = now
    try:
        session.flush()
    except StaleDataError:
        # Someone else's action committed between our read and our write.
        raise Conflict("stale version: the case was changed by someone else; reload it",
                       code="stale_version") from None
    data = {k: v for k, v in body.model_dump(exclude={"version", "comment"}).items() if v is not None}
    # Each deadline a case gets is kept on the timeline, so "on time at each level" is computable.
    if case.deadline_at is not None and case.deadline_at != deadline_before:
        data["deadline_at"] = case.deadline_at.isoformat()
    if actor is None:
        data["auto"] = True
    _record(session, case, action=action, actor=actor, from_status=from_status, comment=body.comment,
            data=data)
    emit(session, CaseTransitioned(case_id=case.id, number=case.number, action=action,
                                   from_status=from_status, to_status=case.status, level=case.level,
                                   org_unit_id=case.org_unit_id, actor_id=actor.id if actor else None))
    return case


def count_cases(session: Session) -> int:
    """How many cases exist (for the demo generator's is-seeded check)."""
    return repo.page(session, repo.list_query(condition=true()), limit=1, offset=0)[1]


# --- automatic escalation -----------------------------------------------------------------------


@event_type
@dataclasses.dataclass(frozen=True)
class CaseOverdue(Event):
    """A case passed its deadline where it cannot be escalated (city level, or a state without the
    move): its centre is told, once per deadline."""

    topic = "cases.overdue"
    case_id: int
    number: str
    level: str
    org_unit_id: int | None
    deadline_at: str


AUTO_REASON = "deadline passed (auto)"


@dataclasses.dataclass(frozen=True)
class SweepReport:
    escalated: list[int]
    flagged: list[int]


def _flag_overdue(session: Session, case: Case, now: datetime) -> bool:
    """Write one 'overdue' timeline line per deadline (no status change); False if already there."""
    assert case.deadline_at is not None
    stamp = case.deadline_at.isoformat()
    seen = session.scalars(select(CaseEvent.data).where(CaseEvent.case_id == case.id,
                                                        CaseEvent.action == "overdue"))
    if any(d.get("deadline_at") == stamp for d in seen):
        return False
    session.add(CaseEvent(case_id=case.id, action="overdue", from_status=case.status, to_status=case.status,
                          level=case.level, org_unit_id=case.org_unit_id, data={"deadline_at": stamp,
                                                                                "auto": True}, at=now))
    emit(session, CaseOverdue(case_id=case.id, number=case.number, level=case.level,
                              org_unit_id=case.org_unit_id, deadline_at=stamp))
    return True


def _can_escalate(case: Case) -> bool:
    transition = _workflow_of(case).get((case.status, "escalate"))
    return transition is not None and case.level in transition.levels and level_above(case.level) is not None


def sweep(db: Database, *, now: datetime | None = None, batch: int = 500) -> SweepReport:
    """Escalate every running case past its deadline one level up, as the system, one case per
    transaction (a failure or a concurrent action on one case never holds back the others).

    A case that cannot go higher (city level) or whose state has no escalate move is flagged overdue
    on its timeline instead. Idempotent: an escalated case has a new deadline after `now`, and a flag
    is written once per deadline, so a second run at the same `now` changes nothing."""
    now = now or utcnow()
    escalated: list[int] = []
    flagged: list[int] = []
    with db.sessions() as session:
        due = sla.sweep_overdue(session, now=now)
    for start in range(0, len(due), batch):
        for case_id in due[start:start + batch]:
            try:
                with db.session() as session:
                    case = repo.get(session, case_id)
                    # Re-checked inside the transaction: someone may have acted since the sweep.
                    if case is None or case.deadline_at is None or case.deadline_at >= now \
                            or case.paused_at is not None or case.status in sla.CLOCK_STOPPED_STATES:
                        continue
                    if _can_escalate(case):
                        act(session, actor=None, case_id=case.id, action="escalate", now=now,
                            body=ActionRequest(version=case.version, reason=AUTO_REASON))
                        escalated.append(case_id)
                    elif _flag_overdue(session, case, now):
                        flagged.append(case_id)
            except CityopsError as exc:
                # Changed by someone else meanwhile, or no centre above: the next sweep tries again.
                log.warning("sweep skipped case %s: %s", case_id, exc.message)
    return SweepReport(escalated=escalated, flagged=flagged)


def escalate_overdue(db: Database, *, now: datetime | None = None) -> list[int]:
    """Ids of the cases escalated by this sweep (see `sweep`)."""
    return sweep(db, now=now).escalated


def escalation_job(*, interval_s: int = 60) -> Job:
    """'cases.escalate_overdue' for the scheduler."""
    return Job("cases.escalate_overdue", interval_s, lambda db, now: sweep(db, now=now))


# --- figures ------------------------------------------------------------------------------------


def _figure_query(where: figures.Period, figure: str, level: str | None) -> str:
    params = {"division": where.division, "start": where.start.isoformat(), "end": where.end.isoformat(),
              "figure": figure, **({"level": level} if level else {})}
    return "/api/cases/figures/cases?" + urlencode(params)


def figures_of(session: Session, *, viewer: User, division: str | None = None, start: date | None = None,
               end: date | None = None) -> FiguresRead:
    """Figures of a unit (a division in the viewer's scope) over a period of days, from the timeline."""
    where = figures.period(viewer, division=division, start=start, end=end)
    tallied = figures.tally(session, viewer=viewer, where=where)
    return FiguresRead(division_code=where.division, start=where.start, end=where.end, figures=[
        FigureRead(name=f.name, level=f.level, value=f.value,
                   cases_url=_figure_query(where, f.drill, f.drill_level))
        for f in figures.figures(tallied)])


def figure_cases(session: Session, *, viewer: User, figure: str, division: str | None = None,
                 level: str | None = None, start: date | None = None, end: date | None = None,
                 limit: int = 50, offset: int = 0) -> CasePage:
    """The cases behind one figure (the same sets the figure counts), newest first."""
    if figure not in figures.FIGURES:
        raise ValidationFailed(f"unknown figure {figure!r}; known: {', '.join(figures.FIGURES)}",
                               field="figure")
    if figure in figures.LEVEL_FIGURES and level not in LEVELS:
        raise ValidationFailed(f"figure {figure!r} needs a level: {', '.join(LEVELS)}", field="level")
    where = figures.period(viewer, division=division, start=start, end=end)
    ids = figures.tally(session, viewer=viewer, where=where).ids(figure, level)
    query = repo.list_query(condition=_list_condition(viewer)).where(Case.id.in_(sorted(ids)))
    rows, total = repo.page(session, query, limit=limit, offset=offset)
    units = repo.org_units(session, (c.org_unit_id for c in rows))
    items = [CaseSummary(**_summary_values(c, units.get(c.org_unit_id or 0), pii_visible=False))
             for c in rows]
    return CasePage(items=items, total=total, total_is_lower_bound=total > repo.COUNT_CAP, limit=limit,
                    offset=offset)


# --- helpers for the case's people, files and feedback (cases/attachments.py, feedback.py ...) ----


def visible_case(session: Session, *, viewer: User, case_id: int) -> Case:
    """The case if the viewer may see it; 404 otherwise (like a missing one)."""
    return _authorize(viewer, repo.get(session, case_id), case_id)


def record_line(session: Session, case: Case, *, action: str, actor: User | None, comment: str | None = None,
                data: dict[str, Any] | None = None, now: datetime | None = None) -> CaseEvent:
    """A timeline line that does not move the case (attach, feedback, merged in ...)."""
    event = CaseEvent(case_id=case.id, action=action, actor_id=actor.id if actor else None,
                      actor_name=actor.display_name if actor else None, from_status=case.status,
                      to_status=case.status, level=case.level, org_unit_id=case.org_unit_id,
                      comment=comment, data=data or {}, at=now or utcnow())
    session.add(event)
    return event


# --- for other packages (governance) ------------------------------------------------------------


def note_if_open(session: Session, *, case_id: int, action: str, comment: str | None = None,
                 data: dict[str, Any] | None = None) -> bool:
    """A line on the timeline of a case still being worked (e.g. an alarm raised again by the device
    that opened it); False, and no line, when the case is finished or gone."""
    case = session.get(Case, case_id)
    if case is None or case.status in FINAL_STATES:
        return False
    record_line(session, case, action=action, actor=None, comment=comment, data=data)
    return True


def cancel_open(session: Session, *, case_ids: Sequence[int], reason: str,
                now: datetime | None = None) -> list[int]:
    """Cancel, as the system, each of these cases whose workflow allows the `cancel` move in its
    state (a task still open, no longer needed), through the workflow like any action: a timeline
    line with the reason and an event. Answers the ids cancelled; the others are left as they are."""
    cancelled = []
    for case_id in sorted(set(case_ids)):
        case = repo.get(session, case_id)
        if case is None or (case.status, "cancel") not in _workflow_of(case):
            continue
        act(session, actor=None, case_id=case.id, action="cancel", now=now,
            body=ActionRequest(version=case.version, reason=reason[:500]))
        cancelled.append(case.id)
    return cancelled


def act_as_system(session: Session, *, case_id: int, action: str, reason: str | None = None,
                  result: str | None = None, comment: str | None = None, now: datetime | None = None) -> Case:
    """Apply a workflow move as the system at the case's current version, for a package whose own
    records drive its cases (credit repair decisions: the package checks who may decide)."""
    case = repo.get(session, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    return act(session, actor=None, case_id=case_id, action=action, now=now,
               body=ActionRequest(version=case.version, reason=reason, result=result, comment=comment))


def timelines(session: Session, *, viewer: User, case_ids: Sequence[int]) -> dict[int, list[CaseEventRead]]:
    """The timelines of those of these cases the viewer may see (the others left out), by case id."""
    visible = [c.id for c in cases_by_ids(session, viewer=viewer, ids=case_ids)]
    rows = repo.events_of(session, visible)
    units = repo.org_units(session, (e.org_unit_id for e in rows))
    found: dict[int, list[CaseEventRead]] = {case_id: [] for case_id in visible}
    for e in rows:
        found[e.case_id].append(_event_read(e, units))
    return found



def resolution_levels(session: Session, *, viewer: User, division: str | None = None,
                      start: date | None = None, end: date | None = None) -> dict[int, str]:
    """Case id -> level of its last resolve in the period, in the viewer's scope: the sets the figures
    count, so a package counts its own records by where their cases were resolved."""
    where = figures.period(viewer, division=division, start=start, end=end)
    tallied = figures.tally(session, viewer=viewer, where=where)
    return {case_id: level for case_id, (level, _on_time) in tallied.resolutions.items()}


def open_counts_by_status(session: Session, *, viewer: User, org_unit_id: int) -> dict[str, int]:
    """Cases an org unit holds that are not closed, rejected or merged, per status, in the viewer's
    scope (a centre's dashboard)."""
    counts: dict[str, int] = {}
    for status in session.scalars(select(Case.status).where(
            _list_condition(viewer), Case.org_unit_id == org_unit_id, Case.status.not_in(FINAL_STATES))):
        counts[status] = counts.get(status, 0) + 1
    return counts


def worker_cases(session: Session, *, viewer: User, limit: int = 50) -> list[CaseSummary]:
    """Open cases assigned to the viewer or located in the viewer's own division (a grid worker's
    grid), nearest deadline first: the grid worker's phone page. Reporters masked as in lists."""
    mine = (Case.assignee_id == viewer.id) | scope_filter(viewer, Case.division_code)
    rows = session.scalars(select(Case).where(mine, Case.status.not_in(FINAL_STATES))
                           .order_by(Case.deadline_at.is_(None), Case.deadline_at, Case.id.desc())
                           .limit(limit)).all()
    units = repo.org_units(session, (c.org_unit_id for c in rows))
    return [CaseSummary(**_summary_values(c, units.get(c.org_unit_id or 0), pii_visible=False)) for c in rows]


# --- for governance meetings and the risk register ----------------------------------------------


def cases_arrived_at(session: Session, *, viewer: User, level: str, division_code: str, since: datetime,
                     until: datetime | None = None, limit: int = 200) -> list[CaseSummary]:
    """Open cases still at `level` that arrived there (reported at, escalated or delegated to it)
    between since and until, located in the division's subtree and in the viewer's scope, oldest
    arrival first: the agenda of a meeting at that level."""
    from cityops.core.auth.scope import scope_prefix

    if level not in LEVELS:
        raise ValidationFailed(f"level must be one of {', '.join(LEVELS)}, not {level!r}", field="level")
    arrived = select(CaseEvent.case_id).where(CaseEvent.action.in_(("report", "escalate", "delegate")),
                                              CaseEvent.level == level, CaseEvent.at >= since)
    if until is not None:
        arrived = arrived.where(CaseEvent.at < until)
    rows = session.scalars(select(Case).where(
        Case.id.in_(arrived), Case.level == level, Case.status.not_in(FINAL_STATES),
        Case.division_code.like(scope_prefix(division_code) + "%"), _list_condition(viewer))
        .order_by(Case.created_at, Case.id).limit(limit)).all()
    units = repo.org_units(session, (c.org_unit_id for c in rows))
    return [CaseSummary(**_summary_values(c, units.get(c.org_unit_id or 0), pii_visible=False)) for c in rows]


def cases_by_ids(session: Session, *, viewer: User, ids: Sequence[int]) -> list[CaseSummary]:
    """The cases of these ids the viewer may see (others left out), masked like a list, by id."""
    if not ids:
        return []
    rows = session.scalars(select(Case).where(Case.id.in_(set(ids)), _list_condition(viewer))
                           .order_by(Case.id)).all()
    units = repo.org_units(session, (c.org_unit_id for c in rows))
    return [CaseSummary(**_summary_values(c, units.get(c.org_unit_id or 0), pii_visible=False)) for c in rows]


@dataclasses.dataclass(frozen=True)
class CasePoint:
    id: int
    type_code: str
    category: str
    lon: float
    lat: float
    created_at: datetime
    division_code: str


def case_points(session: Session, *, since: datetime, until: datetime | None = None) -> list[CasePoint]:
    """Where and when every case reported in a period happened, not merged (for pattern scans run
    as the system; no personal information)."""
    query = select(Case.id, Case.type_code, Case.category, Case.lon, Case.lat, Case.created_at,
                   Case.division_code).where(Case.created_at >= since, Case.status != "merged")
    if until is not None:
        query = query.where(Case.created_at < until)
    return [CasePoint(*row) for row in session.execute(query.order_by(Case.id))]


# --- the dispatch console (cases/dispatch_pages.py) ---------------------------------------------

# States in which a case waits for a centre's dispatcher; an accepted case waits until dispatched.
DISPATCH_STATES = ("reported", "returned", "escalated", "delegated", "reopened", "accepted")
# The moves the console offers inline; the others (merge, start ...) stay on the case page.
CONSOLE_ACTIONS = ("accept", "dispatch", "reject", "escalate", "delegate", "reroute")
# What the division code of a dispatcher's scope says about the level they dispatch at.
_SCOPE_LEVEL = {"province": "city", "city": "city", "county": "county", "township": "township",
                "village": "village", "grid": "village"}


@dataclasses.dataclass(frozen=True)
class QueuedCase:
    case: CaseSummary
    lon: float
    lat: float
    due: str  # "overdue", "today" (deadline before local midnight) or "later"
    actions: list[str]  # console moves the viewer may make in the case's state and level


@dataclasses.dataclass(frozen=True)
class DispatchQueue:
    items: list[QueuedCase]
    total: int
    counts: dict[str, int]  # per state, over the whole queue


@dataclasses.dataclass(frozen=True)
class DispatchTarget:
    id: int
    code: str
    name: str
    kind: str  # "centre" or "department"


def _waiting_for(viewer: User) -> ColumnElement[bool]:
    """Cases waiting for the viewer's centre: held by the viewer's unit, or at the viewer's level in
    the viewer's scope and held by no centre (a category department has no dispatcher of its own)."""
    # Imported here: this section is appended to the module and leaves its import block alone.
    from sqlalchemy import false

    from cityops.core.auth.scope import division_level

    try:
        level = _SCOPE_LEVEL[division_level(viewer.scope_code or "")]
    except ValueError:
        level = None
    held_by_centre = Case.org_unit_id.in_(select(OrgUnit.id).where(OrgUnit.kind == "centre"))
    mine = Case.org_unit_id == viewer.org_unit_id if viewer.org_unit_id is not None else false()
    unclaimed = (Case.level == level) & (Case.org_unit_id.is_(None) | ~held_by_centre) \
        if level is not None else false()
    return _list_condition(viewer) & Case.status.in_(DISPATCH_STATES) & (mine | unclaimed)


def _due(case: Case, overdue: bool, now: datetime) -> str:
    if overdue:
        return "overdue"
    if case.deadline_at is not None and case.status in sla.RUNNING_STATES \
            and case.deadline_at.astimezone(LOCAL_TZ).date() <= now.astimezone(LOCAL_TZ).date():
        return "today"
    return "later"


def _console_actions(case: Case, viewer: User) -> list[str]:
    workflow = _workflow_of(case)
    return [a for a in CONSOLE_ACTIONS if (t := workflow.get((case.status, a))) is not None
            and has_permission(viewer, t.permission) and case.level in t.levels]


def dispatch_queue(session: Session, *, viewer: User, limit: int = 100) -> DispatchQueue:
    """The dispatcher's queue: cases in the viewer's scope waiting for their centre (reported,
    returned, escalated, delegated, reopened, or accepted and not yet dispatched), oldest first, with
    the console moves each allows. Reporters masked as in lists; 403 without cases.dispatch."""
    if not has_permission(viewer, "cases.dispatch"):
        raise Forbidden("your role may not dispatch cases (needs permission 'cases.dispatch')")
    from sqlalchemy import func

    condition = _waiting_for(viewer)
    counts = {str(s): int(n) for s, n in session.execute(
        select(Case.status, func.count()).where(condition).group_by(Case.status))}
    rows = session.scalars(select(Case).where(condition).order_by(Case.created_at, Case.id)
                           .limit(limit)).all()
    units = repo.org_units(session, (c.org_unit_id for c in rows))
    now = utcnow()
    items = []
    for c in rows:
        summary = CaseSummary(**_summary_values(c, units.get(c.org_unit_id or 0), pii_visible=False))
        items.append(QueuedCase(case=summary, lon=c.lon, lat=c.lat, due=_due(c, summary.overdue, now),
                                actions=_console_actions(c, viewer)))
    return DispatchQueue(items=items, total=sum(counts.values()),
                         counts={s: counts[s] for s in DISPATCH_STATES if counts.get(s)})


def dispatch_targets(session: Session, *, viewer: User, case: CaseSummary) -> list[DispatchTarget]:
    """The units a case may be dispatched or re-routed to: the governance centres in the viewer's
    scope inside the case's division at its level (its own centre and those one level below it), then
    the city departments (the public directory). Other centres stay out of sight, as in the org-unit list;
    the case page's boundary panel offers the neighbouring centres across a boundary."""
    from cityops.core.auth.scope import scope_prefix

    area = routing.division_at(case.village_code, case.level)
    levels = [lv for lv in (case.level, level_below(case.level)) if lv is not None]
    centres = select(OrgUnit).where(
        OrgUnit.kind == "centre", OrgUnit.level.in_(levels),
        OrgUnit.division_code.like(scope_prefix(area) + "%"),
        scope_filter(viewer, OrgUnit.division_code, OrgUnit.id)).order_by(OrgUnit.division_code)
    departments = select(OrgUnit).where(OrgUnit.kind == "department").order_by(OrgUnit.code)
    return [DispatchTarget(id=u.id, code=u.code, name=u.name, kind=u.kind)
            for query in (centres, departments) for u in session.scalars(query)]


def count_export(session: Session, *, viewer: User, status: Sequence[str] = (), type_code: str | None = None,
                 level: str | None = None, q: str | None = None, box: str = "scope", open_only: bool = False,
                 overdue: bool = False, sort: str = "newest") -> int:
    """How many rows export_rows gives for these filters; checks them first (ValidationFailed)."""
    query = _filtered(session, viewer, status=status, type_code=type_code, level=level, q=q, box=box,
                      open_only=open_only, overdue=overdue, sort=sort)
    return repo.count(session, query, cap=MAX_EXPORT_ROWS)
