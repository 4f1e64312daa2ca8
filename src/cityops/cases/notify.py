"""In-app notices about cases, as outbox subscribers of CaseReported and CaseTransitioned.

Each runs through `deliver_once`, in the same transaction as its idempotency record: a crash between
the case's commit and the notice only delays it, and a redelivered event notifies nobody twice.

- A newly routed case: the staff of the org unit it was routed to.
- A case that moves: its assignee, the people who acted on it, its watchers and its reporter (never
  the person who moved it); when it moves to another unit, that unit's staff too.
- A merged case: a line on the target case's timeline, and every reporter of the merged case (and of
  the cases merged into it before) is told where their report is now handled.
Moves written after the fact (seeded history, imports) notify nobody: see `is_history`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.cases import service, watchers
from cityops.cases.models import Case, CaseEvent
from cityops.cases.pages import ACTION_LABELS, STATE_LABELS
from cityops.core import notifications
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.events import Envelope, EventBus
from cityops.core.i18n import N_

ROUTED = "cases.notify_routed"
MOVED = "cases.notify_moved"
# Moves that hand the case to another unit, whose staff must hear of it.
UNIT_MOVES = frozenset({"escalate", "delegate", "reroute", "dispatch"})
STAFF_PERMISSIONS = ("cases.dispatch", "cases.handle")
BACKDATED = timedelta(hours=1)
STAFF_CACHE_KEY = "cases.unit_staff"

ROUTED_TITLE = N_("New case %(number)s for your unit")
ROUTED_BODY = N_("Reported: %(case_title)s")
MOVED_TITLE = N_("Case %(number)s: %(state_label)s")
MOVED_BY = N_("%(action_label)s by %(actor)s")
MOVED_AUTO = N_("%(action_label)s automatically")
MERGED_TITLE = N_("Your report %(number)s was merged into case %(target)s")
MERGED_BODY = N_(
    "The same problem had already been reported; it is handled as case %(target)s and you "
    "will be kept informed."
)
MERGED_IN = "merged_in"


def unit_staff(session: Session, org_unit_id: int | None) -> list[int]:
    """Active members of an org unit who dispatch or handle cases (remembered for the session: a
    drained batch asks once per unit)."""
    if org_unit_id is None:
        return []
    cache: dict[int, list[int]] = session.info.setdefault(STAFF_CACHE_KEY, {})
    if org_unit_id not in cache:
        users = session.scalars(select(User).where(User.org_unit_id == org_unit_id,
                                                   User.is_active.is_(True)))
        cache[org_unit_id] = [u.id for u in users if any(has_permission(u, p) for p in STAFF_PERMISSIONS)]
    return cache[org_unit_id]


def participants(session: Session, case_id: int) -> set[int]:
    return {
        a
        for a in session.scalars(select(CaseEvent.actor_id).where(CaseEvent.case_id == case_id).distinct())
        if a is not None
    }


def _link(case_id: int) -> str:
    return f"/cases/{case_id}"


def is_history(envelope: Envelope, moment: datetime) -> bool:
    """A move emitted well after the moment the case records for it was written after the fact (the
    demo's seeded years, an import, a controlled clock): history, not news, so nobody is notified.
    A delivery delayed by a crash still notifies: the emit time, not the delivery time, counts."""
    return envelope.created_at - moment > BACKDATED


def on_reported(session: Session, envelope: Envelope) -> None:
    payload = envelope.payload
    if payload.get("reported_at") is None:  # an event from before it carried the case's details
        case = session.get(Case, int(payload["case_id"]))
        if case is None:
            return
        payload = {**payload, "title": case.title, "reported_at": case.created_at.isoformat(),
                   "reporter_id": next(iter(participants(session, case.id)), None)}
    if is_history(envelope, datetime.fromisoformat(payload["reported_at"])):
        return
    staff = [u for u in unit_staff(session, payload["org_unit_id"]) if u != payload["reporter_id"]]
    notifications.notify(
        session,
        user_ids=staff,
        title=ROUTED_TITLE,
        body=ROUTED_BODY,
        link=_link(int(payload["case_id"])),
        params={"number": payload["number"], "case_title": payload["title"]},
    )


def on_transitioned(session: Session, envelope: Envelope) -> None:
    payload = envelope.payload
    case = session.get(Case, int(payload["case_id"]))
    if case is None:
        return
    action = str(payload["action"])
    actor_id = payload.get("actor_id")
    actor = session.get(User, int(actor_id)) if actor_id is not None else None
    target = session.get(Case, case.merged_into_id) if action == "merge" and case.merged_into_id else None
    if target is not None:
        service.record_line(
            session,
            target,
            action=MERGED_IN,
            actor=actor,
            comment=case.number,
            data={"case_id": case.id, "number": case.number},
            now=case.updated_at,
        )
    if is_history(envelope, case.updated_at):
        return
    people: set[int | None] = {
        case.assignee_id,
        case.reporter_user_id,
        *participants(session, case.id),
        *watchers.watcher_ids(session, case.id),
    }
    if action in UNIT_MOVES:
        people.update(unit_staff(session, case.org_unit_id))
    reporters = _tell_reporters(session, case, target, actor) if target is not None else set()
    recipients = [u for u in people if u is not None and u != actor_id and u not in reporters]
    notifications.notify(
        session,
        user_ids=recipients,
        title=MOVED_TITLE,
        body=MOVED_BY if actor else MOVED_AUTO,
        link=_link(case.id),
        params={
            "number": case.number,
            "state_label": STATE_LABELS.get(case.status, case.status),
            "action_label": ACTION_LABELS.get(action, action),
            "actor": actor.display_name if actor else "",
        },
    )


def _tell_reporters(session: Session, case: Case, target: Case, actor: User | None) -> set[int]:
    """Every reporter of a merged case learns where it is handled now; returns who was told."""
    actor_id = actor.id if actor else None
    reporters = {
        c.reporter_user_id
        for c in _merged_tree(session, case)
        if c.reporter_user_id is not None and c.reporter_user_id != actor_id
    }
    notifications.notify(
        session,
        user_ids=reporters,
        title=MERGED_TITLE,
        body=MERGED_BODY,
        link=_link(case.id),
        params={"number": case.number, "target": target.number},
    )
    return reporters


def _merged_tree(session: Session, case: Case) -> Iterable[Case]:
    """The case and every case merged into it, at any depth."""
    seen: dict[int, Case] = {case.id: case}
    frontier = [case.id]
    while frontier:
        found = list(session.scalars(select(Case).where(Case.merged_into_id.in_(frontier))))
        frontier = [c.id for c in found if c.id not in seen]
        seen.update({c.id: c for c in found})
    return seen.values()


def subscribe(bus: EventBus) -> None:
    """Register the subscribers once (a second call is a no-op)."""
    for topic, name, handler in (
        (service.CaseReported.topic, ROUTED, on_reported),
        (service.CaseTransitioned.topic, MOVED, on_transitioned),
    ):
        if not any(existing == name for existing, _ in bus.subscribers.get(topic, [])):
            bus.subscribe(topic, name, handler)


def install(app: FastAPI) -> None:
    subscribe(app.state.bus)
