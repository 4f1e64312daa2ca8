"""The response to a warning: targeting, notices, the emergency plan's tasks, evacuation figures and the
history for after-action review.

Outbox subscribers of the warning events (installed in app.py, like perception's alarm subscriber):

- Issued or updated: the warning's area resolves to the grids and villages it covers (kept in
  `warning_targets`); every grid worker of those grids and every village's responsible person (the
  operator of the village's governance centre: the project has no village-head role) is told of the CAP
  message that went out, once per message and person (`warning_notices`, unique on message and user),
  so an Update raising the warning to red tells everyone again and a redelivered event tells nobody
  twice; the plan of the warning's hazard hands out the tasks of its level and the levels below that
  the warning does not have yet, one case per (warning, plan item, target) (`warning_tasks`). Targets an
  update took out of the area have their open tasks cancelled.
- Cancelled or expired: the people targeted are told of the Cancel message, and every open task is
  cancelled through the case workflow with the reason ("预警已解除：" and the operator's reason).
  An expiry publishes no message and tells nobody; the tasks' own notices tell their handlers.

Each handler runs in `deliver_once`'s transaction, and is idempotent by itself as well: it adds only
what is missing, so delivering an event twice, or handling an older event after a newer one, changes
nothing more."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from shapely.geometry import shape
from sqlalchemy import insert
from sqlalchemy.orm import Session

from cityops.cases import service as case_service
from cityops.cases.pages import ACTION_LABELS, STATE_LABELS
from cityops.cases.routing import department_code
from cityops.cases.schemas import CaseCreate
from cityops.core import notifications
from cityops.core.auth.models import User
from cityops.core.auth.scope import can_access
from cityops.core.db import utcnow
from cityops.core.errors import Conflict, NotFound, ValidationFailed
from cityops.core.events import Envelope, EventBus
from cityops.core.i18n import N_, gettext_for
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex
from cityops.warning import hazards, plans, service
from cityops.warning import repository as repo
from cityops.warning.events import WarningCancelled, WarningExpired, WarningIssued, WarningUpdated
from cityops.warning.models import (
    HazardWarning,
    WarningEvacuation,
    WarningMessage,
    WarningTarget,
    WarningTask,
)
from cityops.warning.schemas import (
    EvacuationReport,
    EvacuationTotals,
    HistoryEntry,
    MessageNotices,
    ResponseTarget,
    ResponseTask,
    VillageEvacuation,
    WarningHistory,
    WarningResponse,
)

log = logging.getLogger(__name__)

NOTIFY = "warning.notify_targets"
TASKS = "warning.plan_tasks"
END = "warning.end_response"
VILLAGE_HEAD = "village_head"
ROLE_OF = {"grid_worker": "grid_worker", "centre_operator": VILLAGE_HEAD}
# A warning given by division codes carries their (simplified) outlines in its area: only what lies
# beyond them by more than this is looked up by shape (about 200 m, twice the simplification).
OUTLINE_MARGIN_DEG = 2e-3
LIFTED = "预警已解除"
EXPIRED = "预警已到期解除"
LEFT_AREA = "已不在预警区域内"

ISSUED_TITLE = N_("%(level_label)s %(hazard_label)s warning issued")
RAISED_TITLE = N_("%(hazard_label)s warning raised to %(level_label)s")
LOWERED_TITLE = N_("%(hazard_label)s warning lowered to %(level_label)s")
UPDATED_TITLE = N_("%(level_label)s %(hazard_label)s warning updated")
LIFTED_TITLE = N_("%(level_label)s %(hazard_label)s warning lifted")
NOTICE_BODY = N_("%(headline)s. Instructions: %(instruction)s")
LIFTED_BODY = N_("%(headline)s. Lifted: %(reason)s")
KIND_LABELS = {
    "message": N_("CAP message"),
    "notice": N_("Notification"),
    "task": N_("Task"),
    "evacuation": N_("Evacuation"),
}
NOTICE_DETAIL = N_("%(grid_workers)d grid workers, %(village_heads)d village heads")
EVACUATION_DETAIL = N_("%(sheltered)d in shelters")
EVACUATION_EVENT = N_("Evacuation figures reported")
HISTORY_HEADERS = (
    "时间 Time",
    "类别 Kind",
    "事项 Event",
    "级别 Level",
    "对象 Subject",
    "状态 Status",
    "数量 Count",
    "说明 Detail",
)


def link(warning_id: int) -> str:
    """Where a notice sends its reader: the warning's page."""
    return f"/warnings/{warning_id}"


# --- targeting -------------------------------------------------------------------------------------


def _area_grids(session: Session, warning: HazardWarning, index: PlaceIndex) -> list[places_service.AreaGrid]:
    """The grids the warning covers: those inside its division codes, and those its drawn area covers
    beyond the codes' outlines."""
    codes = list(warning.division_codes)
    geometry = service._multi(shape(warning.area)) if warning.area else None
    if geometry is not None and codes:
        outlines = service.resolve_area(session, polygon=None, codes=codes, strict_codes=False).geometry
        if outlines is not None:
            geometry = service._multi(geometry.difference(outlines.buffer(OUTLINE_MARGIN_DEG)))
    return places_service.grids_in_area(index, codes=codes, geometry=geometry)


def sync_targets(session: Session, warning: HazardWarning, *, index: PlaceIndex, now: datetime) -> None:
    """Bring the warning's targets in line with its area: the grids it covers and their villages added,
    those it no longer covers marked removed (and those covered again restored)."""
    wanted: dict[str, dict[str, Any]] = {}
    for grid in _area_grids(session, warning, index):
        place = {"village_code": grid.village_code, "lon": grid.lon, "lat": grid.lat}
        wanted[grid.grid_code] = {"kind": "grid", "name": grid.grid_name, **place}
        wanted.setdefault(grid.village_code, {"kind": "village", "name": grid.village_name, **place})
    existing = {t.code: t for t in repo.targets_of(session, warning.id)}
    for code, target in existing.items():
        if code in wanted:
            target.removed_at = None
        elif target.removed_at is None:
            target.removed_at = now
    new = [
        {"warning_id": warning.id, "code": code, "added_at": now, "removed_at": None, **values}
        for code, values in wanted.items()
        if code not in existing
    ]
    if new:  # one INSERT (a city-wide warning covers thousands of grids)
        session.execute(insert(WarningTarget), new)
    session.flush()


def active_targets(session: Session, warning_id: int) -> list[WarningTarget]:
    return [t for t in repo.targets_of(session, warning_id) if t.removed_at is None]


# --- notices ---------------------------------------------------------------------------------------


def _title(message: WarningMessage, previous_level: str | None) -> str:
    if message.msg_type == "Alert":
        return ISSUED_TITLE
    if message.msg_type == "Cancel":
        return LIFTED_TITLE
    previous = hazards.LEVELS.get(previous_level or "")
    if previous is not None and previous.code != message.level:
        raised = hazards.LEVELS[message.level].rank > previous.rank
        return RAISED_TITLE if raised else LOWERED_TITLE
    return UPDATED_TITLE


def notify_targets(
    session: Session,
    warning: HazardWarning,
    message: WarningMessage,
    targets: Sequence[WarningTarget],
    *,
    previous_level: str | None = None,
    reason: str | None = None,
    now: datetime,
) -> list[int]:
    """Tell the grid workers and village heads of the targets about the message, each at most once;
    answers the users told now."""
    grids = [t.code for t in targets if t.kind == "grid"]
    villages = [t.code for t in targets if t.kind == "village"]
    rows = {
        user_id: {
            "warning_id": warning.id,
            "message_id": message.id,
            "user_id": user_id,
            "role": ROLE_OF[role],
            "target_code": scope,
            "level": message.level,
            "created_at": now,
        }
        for user_id, role, scope in repo.responders(session, grid_codes=grids, village_codes=villages)
    }
    told = repo.add_notices(session, list(rows.values()))
    hazard = hazards.HAZARDS.get(warning.hazard, hazards.HAZARDS["other"])
    params = {
        "level_label": hazards.LEVELS[message.level].label,
        "hazard_label": hazard.label,
        "headline": warning.headline,
        "instruction": warning.instruction,
        "reason": reason or "",
    }
    notifications.notify(
        session,
        user_ids=told,
        title=_title(message, previous_level),
        body=LIFTED_BODY if message.msg_type == "Cancel" else NOTICE_BODY,
        link=link(warning.id),
        params=params,
        now=now,
    )
    return told


# --- tasks -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Planned:
    item: str
    level: str
    target_code: str
    intake: case_service.Intake


def _central(warning: HazardWarning, targets: Sequence[WarningTarget]) -> WarningTarget:
    """The grid nearest the middle of the warning's area: where a department's task is placed."""
    grids = [t for t in targets if t.kind == "grid"] or list(targets)
    if not warning.area:
        return grids[0]
    middle = shape(warning.area).centroid
    return min(grids, key=lambda t: (t.lon - middle.x) ** 2 + (t.lat - middle.y) ** 2)


def _plan_tasks(
    warning: HazardWarning,
    message: WarningMessage,
    targets: Sequence[WarningTarget],
    plan: plans.Plan,
    have: set[tuple[str, str]],
) -> list[_Planned]:
    level = hazards.LEVELS[message.level]
    planned = []
    for level_code, item in plan.items_up_to(message.level):
        key = f"{plan.code}.{item.code}"
        chosen: list[tuple[str, str, WarningTarget]] = []
        if item.target == "department":
            department = plans.task_category(item.category).department
            assert department is not None  # the plan's validation guarantees it
            chosen = [(department_code(department), warning.area_desc, _central(warning, targets))]
        else:
            chosen = [
                (t.code, t.name, t) for t in targets if t.kind == item.target and item.covers(t.village_code)
            ]
        for target_code, name, place in chosen:
            if (key, target_code) in have:
                continue
            data = CaseCreate(
                type_code=plans.TASK_TYPE,
                category=item.category,
                title=f"{item.name_zh}：{name}"[:200],
                description=f"{warning.headline}（{level.colour_zh}预警，{warning.area_desc}）。"
                f"{item.instruction}"[:5000],
                lon=place.lon,
                lat=place.lat,
                source="warning",
                fields={"warning_id": warning.id, "plan_item": key, "target": target_code},
            )
            deadline = message.sent_at + timedelta(minutes=item.deadline_minutes)
            planned.append(_Planned(key, level_code, target_code, case_service.Intake(data, None, deadline)))
    return planned


def hand_out_tasks(
    session: Session,
    warning: HazardWarning,
    message: WarningMessage,
    targets: Sequence[WarningTarget],
    *,
    index: PlaceIndex,
    registry: plans.Plans,
    now: datetime,
) -> list[int]:
    """The tasks of the plan up to the message's level that the warning does not have yet, as cases
    (through the case engine's bulk intake, one INSERT per table); answers the new tasks' case ids."""
    plan = registry.plan_for(warning.hazard)
    if plan is None or not targets:
        return []
    have = {(t.item, t.target_code) for t in repo.tasks_of(session, warning.id)}
    planned = _plan_tasks(warning, message, targets, plan, have)
    if not planned:
        return []
    outcomes = case_service.open_cases(session, intakes=[p.intake for p in planned], index=index, now=now)
    rows: list[dict[str, Any]] = []
    for p, outcome in zip(planned, outcomes, strict=True):
        if isinstance(outcome, Exception):  # a target the places data no longer holds: the others go out
            log.warning("warning %s: task %s for %s refused: %s", warning.id, p.item, p.target_code, outcome)
            continue
        rows.append(
            {
                "warning_id": warning.id,
                "item": p.item,
                "level": p.level,
                "target_code": p.target_code,
                "case_id": outcome.id,
                "message_id": message.id,
                "created_at": now,
            }
        )
    if rows:  # one INSERT (the ORM would insert the rows one by one on SQLite)
        session.execute(insert(WarningTask), rows)
    return [int(row["case_id"]) for row in rows]


def cancel_tasks(
    session: Session,
    warning_id: int,
    *,
    reason: str,
    target_codes: Sequence[str] | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Cancel the warning's open tasks (of these targets only, if given) through the case workflow;
    answers the cases cancelled."""
    tasks = repo.tasks_of(session, warning_id, target_codes=target_codes)
    return case_service.cancel_open(session, case_ids=[t.case_id for t in tasks], reason=reason, now=now)


# --- the subscribers -------------------------------------------------------------------------------


def _in_force(session: Session, payload: dict[str, Any]) -> tuple[HazardWarning, WarningMessage] | None:
    warning = session.get(HazardWarning, int(payload["warning_id"]))
    message = session.get(WarningMessage, int(payload["message_id"]))
    if warning is None or message is None or warning.status != "issued":
        return None  # gone, or lifted or expired since: that event's handler ends the response
    return warning, message


def notify_changed(session: Session, envelope: Envelope, *, index: PlaceIndex) -> None:
    """A warning issued or updated: its targets, and the people there told of the message."""
    found = _in_force(session, envelope.payload)
    if found is None:
        return
    warning, message = found
    now = utcnow()
    sync_targets(session, warning, index=index, now=now)
    targets = active_targets(session, warning.id)
    previous = envelope.payload.get("previous_level")
    notify_targets(session, warning, message, targets, previous_level=previous, now=now)


def tasks_on_change(
    session: Session, envelope: Envelope, *, index: PlaceIndex, registry: plans.Plans
) -> None:
    """A warning issued or updated: the plan's tasks it does not have yet handed out, and the open tasks
    of targets no longer in its area cancelled. A subscriber of its own, so the notices never wait for
    the cases (nor fail with them); either may run first, each brings the targets up to date."""
    found = _in_force(session, envelope.payload)
    if found is None:
        return
    warning, message = found
    now = utcnow()
    sync_targets(session, warning, index=index, now=now)
    targets = repo.targets_of(session, warning.id)
    gone = [t.code for t in targets if t.removed_at is not None]
    if gone:
        cancel_tasks(session, warning.id, reason=LEFT_AREA, target_codes=gone, now=now)
    active = [t for t in targets if t.removed_at is None]
    hand_out_tasks(session, warning, message, active, index=index, registry=registry, now=now)


def on_ended(session: Session, envelope: Envelope) -> None:
    """A warning cancelled or expired: the people targeted told of the Cancel, open tasks cancelled."""
    payload = envelope.payload
    warning = session.get(HazardWarning, int(payload["warning_id"]))
    if warning is None:
        return
    now = utcnow()
    if envelope.topic == WarningExpired.topic:
        reason = EXPIRED
    else:
        reason = f"{LIFTED}：{payload['reason']}" if payload.get("reason") else LIFTED
        message = (
            session.get(WarningMessage, int(payload["message_id"])) if payload.get("message_id") else None
        )
        if message is not None:
            notify_targets(
                session,
                warning,
                message,
                active_targets(session, warning.id),
                reason=str(payload.get("reason") or ""),
                now=now,
            )
    cancel_tasks(session, warning.id, reason=reason, now=now)


def subscribe(
    bus: EventBus,
    index: Callable[[Session], PlaceIndex],
    registry: Callable[[], plans.Plans] = plans.registry,
) -> None:
    """Register the subscribers once (a second call is a no-op)."""

    def notify(session: Session, envelope: Envelope) -> None:
        notify_changed(session, envelope, index=index(session))

    def tasks(session: Session, envelope: Envelope) -> None:
        tasks_on_change(session, envelope, index=index(session), registry=registry())

    handlers = [
        (topic, name, handler)
        for topic in (WarningIssued.topic, WarningUpdated.topic)
        for name, handler in ((NOTIFY, notify), (TASKS, tasks))
    ]
    handlers += [(WarningCancelled.topic, END, on_ended), (WarningExpired.topic, END, on_ended)]
    for topic, name, handler in handlers:
        if not any(existing == name for existing, _ in bus.subscribers.get(topic, [])):
            bus.subscribe(topic, name, handler)


def install(app: FastAPI) -> None:
    subscribe(app.state.bus, places_service.cache_for(app.state).index)


# --- evacuations -----------------------------------------------------------------------------------


def _get(session: Session, warning_id: int) -> HazardWarning:
    warning = repo.get(session, warning_id)
    if warning is None:
        raise NotFound(f"no warning with id {warning_id}", field="warning_id")
    return warning


def reaches(user: User, village_code: str) -> bool:
    """Whether the user's scope holds the village, or lies in it (the grid worker of one of its grids)."""
    return can_access(user, division_code=village_code) or (user.scope_code or "").startswith(village_code)


def _village_names(session: Session, warning_id: int) -> dict[str, str]:
    return {t.code: t.name for t in repo.targets_of(session, warning_id) if t.kind == "village"}


def _evacuation_totals(session: Session, warning_id: int, viewer: User | None) -> EvacuationTotals:
    names = _village_names(session, warning_id)
    latest: dict[str, WarningEvacuation] = {}
    reports: Counter[str] = Counter()
    for row in repo.evacuations_of(session, warning_id):
        if viewer is None or reaches(viewer, row.village_code):
            latest[row.village_code] = row
            reports[row.village_code] += 1
    villages = [
        VillageEvacuation(
            village_code=code,
            village_name=names.get(code, code),
            evacuated=row.evacuated,
            sheltered=row.sheltered,
            reports=reports[code],
            reported_at=row.reported_at,
        )
        for code, row in sorted(latest.items())
    ]
    return EvacuationTotals(
        evacuated=sum(v.evacuated for v in villages),
        sheltered=sum(v.sheltered for v in villages),
        villages=villages,
    )


def report_evacuation(
    session: Session, *, warning_id: int, data: EvacuationReport, actor: User, now: datetime | None = None
) -> EvacuationTotals:
    """Record a village's evacuation figures so far (a village of the warning's area in the actor's
    scope); answers the warning's figures as the actor sees them."""
    warning = _get(session, warning_id)
    if not reaches(actor, data.village_code):
        raise NotFound(f"village {data.village_code} not found", field="village_code")
    if warning.status in ("draft", "pending"):
        raise Conflict(
            f"warning {warning.id} is {warning.status}: it has not gone out yet", field="warning_id"
        )
    names = _village_names(session, warning.id)
    if data.village_code not in names:
        raise ValidationFailed(
            f"village {data.village_code} is not in the area of warning {warning.id}", field="village_code"
        )
    if data.sheltered > data.evacuated:
        raise ValidationFailed(
            f"sheltered ({data.sheltered}) cannot exceed evacuated ({data.evacuated})", field="sheltered"
        )
    session.add(
        WarningEvacuation(
            warning_id=warning.id,
            village_code=data.village_code,
            evacuated=data.evacuated,
            sheltered=data.sheltered,
            note=data.note or None,
            reported_by_id=actor.id,
            reported_at=now or utcnow(),
        )
    )
    session.flush()
    return _evacuation_totals(session, warning.id, actor)


# --- reading the response --------------------------------------------------------------------------


def _system_viewer(session: Session) -> User:
    """A transient administrator of the whole city, to read as the system (the CLI); never stored."""
    root = places_service.root_code(session) or "410000"
    return User(id=0, username="system", display_name="系统", role="admin", scope_code=root, is_active=True)


def _notices(session: Session, warning_id: int) -> list[tuple[MessageNotices, datetime]]:
    messages = {m.id: m for m in repo.messages_of(session, [warning_id])[warning_id]}
    counts: dict[int, dict[str, int]] = {}
    first: dict[int, datetime] = {}
    for message_id, role, people, at in repo.notice_counts(session, warning_id):
        counts.setdefault(message_id, {})[role] = int(people)
        first[message_id] = min(at, first.get(message_id, at))
    return [
        (
            MessageNotices(
                message_id=mid,
                msg_type=messages[mid].msg_type,
                level=messages[mid].level,
                sent=messages[mid].sent,
                grid_workers=by_role.get("grid_worker", 0),
                village_heads=by_role.get(VILLAGE_HEAD, 0),
            ),
            first[mid],
        )
        for mid, by_role in counts.items()
        if mid in messages
    ]


def _tasks(session: Session, warning: HazardWarning, viewer: User) -> list[ResponseTask]:
    rows = {t.case_id: t for t in repo.tasks_of(session, warning.id)}
    plan = plans.registry().plan_for(warning.hazard)
    names = {f"{plan.code}.{item.code}": item.name_zh for _, item in plan.items_up_to("red")} if plan else {}
    found = []
    for case in case_service.cases_by_ids(session, viewer=viewer, ids=list(rows)):
        task = rows[case.id]
        found.append(
            ResponseTask(
                case_id=case.id,
                number=case.number,
                title=case.title,
                item=task.item,
                item_name=names.get(task.item, task.item),
                level=task.level,
                target_code=task.target_code,
                status=case.status,
                org_unit=case.org_unit.name if case.org_unit else None,
                deadline_at=case.deadline_at,
                overdue=case.overdue,
                created_at=case.created_at,
            )
        )
    return found


def response_of(session: Session, *, warning_id: int, viewer: User | None = None) -> WarningResponse:
    """What the warning set in motion (tasks and evacuations as far as the viewer's scope reaches)."""
    warning = _get(session, warning_id)
    viewer = viewer or _system_viewer(session)
    targets = repo.targets_of(session, warning.id)
    tasks = _tasks(session, warning, viewer)
    active = [t for t in targets if t.removed_at is None]
    return WarningResponse(
        warning_id=warning.id,
        status=service._status_now(warning, utcnow()),
        level=warning.level,
        grids=sum(1 for t in active if t.kind == "grid"),
        villages=sum(1 for t in active if t.kind == "village"),
        targets=[ResponseTarget.model_validate(t, from_attributes=True) for t in targets],
        people_notified=repo.people_notified(session, warning.id),
        notices=[n for n, _ in _notices(session, warning.id)],
        tasks_by_status=dict(sorted(Counter(t.status for t in tasks).items())),
        tasks=tasks,
        evacuations=_evacuation_totals(session, warning.id, viewer),
    )


# --- history ---------------------------------------------------------------------------------------


def history(
    session: Session, *, warning_id: int, viewer: User | None = None, locale: str = "zh"
) -> WarningHistory:
    """The warning's lifecycle and its response, oldest first (tasks and evacuations in the viewer's
    scope)."""
    _ = gettext_for(locale).gettext
    warning = _get(session, warning_id)
    viewer = viewer or _system_viewer(session)

    def level_label(code: str | None) -> str | None:
        found = hazards.LEVELS.get(code or "")
        return _(found.label) if found is not None else code

    def entry(kind: str, **values: Any) -> HistoryEntry:
        return HistoryEntry(kind=kind, kind_label=_(KIND_LABELS[kind]), **values)

    lifecycle = [
        entry(
            "message",
            at=m.sent_at,
            event=m.msg_type,
            level=level_label(m.level),
            subject=m.identifier,
            status=m.action,
            detail=m.note or "",
        )
        for m in repo.messages_of(session, [warning.id])[warning.id]
    ]
    response = [
        entry(
            "notice",
            at=at,
            event=n.msg_type,
            level=level_label(n.level),
            count=n.grid_workers + n.village_heads,
            detail=_(NOTICE_DETAIL) % {"grid_workers": n.grid_workers, "village_heads": n.village_heads},
        )
        for n, at in _notices(session, warning.id)
    ]
    tasks = {t.case_id: t for t in _tasks(session, warning, viewer)}
    for case_id, events in case_service.timelines(session, viewer=viewer, case_ids=list(tasks)).items():
        task = tasks[case_id]
        for e in events:
            why = e.comment or e.data.get("reason") or e.data.get("result") or ""
            response.append(
                entry(
                    "task",
                    at=e.at,
                    event=_(ACTION_LABELS.get(e.action, e.action)),
                    level=level_label(task.level),
                    subject=f"{task.number} {task.title}",
                    status=_(STATE_LABELS.get(e.to_status, e.to_status)),
                    detail=str(why),
                )
            )
    names = _village_names(session, warning.id)
    for row in repo.evacuations_of(session, warning.id):
        if reaches(viewer, row.village_code):
            detail = _(EVACUATION_DETAIL) % {"sheltered": row.sheltered}
            response.append(
                entry(
                    "evacuation",
                    at=row.reported_at,
                    event=_(EVACUATION_EVENT),
                    subject=names.get(row.village_code, row.village_code),
                    count=row.evacuated,
                    detail=f"{detail}；{row.note}" if row.note else detail,
                )
            )
    response.sort(key=lambda e: e.at)
    return WarningHistory(
        warning_id=warning.id,
        identifier=warning.identifier,
        hazard=warning.hazard,
        level=warning.level,
        status=service._status_now(warning, utcnow()),
        headline=warning.headline,
        lifecycle=lifecycle,
        response=response,
    )


def history_rows(found: WarningHistory) -> list[list[Any]]:
    """The history as spreadsheet rows (HISTORY_HEADERS), lifecycle and response in one timeline."""
    entries = sorted([*found.lifecycle, *found.response], key=lambda e: e.at)
    return [
        [
            e.at,
            e.kind_label,
            e.event,
            e.level or "",
            e.subject,
            e.status or "",
            e.count if e.count is not None else "",
            e.detail,
        ]
        for e in entries
    ]
