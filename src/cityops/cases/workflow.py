"""Workflows as data: `{(state, action): Transition}` per workflow name.

A transition names the state it leads to, its guards (the permission the actor needs, the handling
levels it is allowed at, the fields the action must carry) and its effects (named steps the service
applies, e.g. moving the case one level up). Anything not declared is refused with the allowed moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cityops.core.errors import InvalidTransition

STATES = ("reported", "accepted", "dispatched", "in_progress", "resolved", "verified", "closed",
          "returned", "escalated", "delegated", "rejected", "merged", "reopened")
LEVELS = ("village", "township", "county", "city")
# States a case no longer moves out of by ordinary work (closed may still be reopened).
FINAL_STATES = frozenset({"closed", "rejected", "merged"})
# Effects the service knows how to apply.
EFFECTS = frozenset({"assign_unit", "assign_person", "escalate", "delegate", "pause", "resume",
                     "close", "reopen", "merge"})
ALL_LEVELS = frozenset(LEVELS)


@dataclass(frozen=True)
class Transition:
    to: str
    permission: str
    levels: frozenset[str] = ALL_LEVELS
    requires: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.to not in STATES:
            raise ValueError(f"unknown state {self.to!r}")
        unknown = set(self.effects) - EFFECTS
        if unknown:
            raise ValueError(f"unknown effects {sorted(unknown)}")


Workflow = Mapping[tuple[str, str], Transition]

DISPATCH = "cases.dispatch"
HANDLE = "cases.handle"
BELOW_CITY = frozenset(LEVELS[:-1])
ABOVE_VILLAGE = frozenset(LEVELS[1:])


def _t(to: str, permission: str, *, levels: frozenset[str] = ALL_LEVELS, requires: tuple[str, ...] = (),
       effects: tuple[str, ...] = ()) -> Transition:
    return Transition(to, permission, levels, requires, effects)


# Moves shared by both workflows from any open state a centre holds.
def _centre_moves(state: str) -> dict[tuple[str, str], Transition]:
    return {
        (state, "escalate"): _t("escalated", DISPATCH, levels=BELOW_CITY, requires=("reason",),
                                effects=("escalate",)),
        (state, "reroute"): _t(state, DISPATCH, requires=("org_unit_code", "reason"),
                               effects=("assign_unit",)),
    }


# The full governance workflow: a centre accepts, dispatches to a unit, the unit handles, the centre
# verifies and closes; every level may escalate to the next or delegate down.
STANDARD: Workflow = MappingProxyType({
    ("reported", "accept"): _t("accepted", DISPATCH),
    ("reported", "reject"): _t("rejected", DISPATCH, requires=("reason",), effects=("close",)),
    ("reported", "merge"): _t("merged", DISPATCH, requires=("merged_into",), effects=("merge", "close")),
    **_centre_moves("reported"),
    ("accepted", "dispatch"): _t("dispatched", DISPATCH, effects=("assign_unit", "assign_person")),
    ("accepted", "start"): _t("in_progress", HANDLE, effects=("assign_person",)),
    ("accepted", "delegate"): _t("delegated", DISPATCH, levels=ABOVE_VILLAGE, requires=("reason",),
                                 effects=("delegate",)),
    ("accepted", "merge"): _t("merged", DISPATCH, requires=("merged_into",), effects=("merge", "close")),
    **_centre_moves("accepted"),
    ("dispatched", "start"): _t("in_progress", HANDLE, effects=("assign_person",)),
    ("dispatched", "return"): _t("returned", HANDLE, requires=("reason",)),
    ("in_progress", "resolve"): _t("resolved", HANDLE, requires=("result",)),
    ("in_progress", "pause"): _t("in_progress", HANDLE, requires=("reason",), effects=("pause",)),
    ("in_progress", "resume"): _t("in_progress", HANDLE, effects=("resume",)),
    ("in_progress", "return"): _t("returned", HANDLE, requires=("reason",)),
    **_centre_moves("in_progress"),
    ("returned", "dispatch"): _t("dispatched", DISPATCH, effects=("assign_unit", "assign_person")),
    ("returned", "reject"): _t("rejected", DISPATCH, requires=("reason",), effects=("close",)),
    **_centre_moves("returned"),
    ("escalated", "accept"): _t("accepted", DISPATCH),
    ("escalated", "delegate"): _t("delegated", DISPATCH, levels=ABOVE_VILLAGE, requires=("reason",),
                                  effects=("delegate",)),
    ("delegated", "accept"): _t("accepted", DISPATCH),
    **_centre_moves("delegated"),
    ("resolved", "verify"): _t("verified", DISPATCH),
    ("resolved", "send_back"): _t("in_progress", DISPATCH, requires=("reason",)),
    ("verified", "close"): _t("closed", DISPATCH, effects=("close",)),
    ("closed", "reopen"): _t("reopened", DISPATCH, requires=("reason",), effects=("reopen",)),
    ("reopened", "accept"): _t("accepted", DISPATCH),
    ("reopened", "dispatch"): _t("dispatched", DISPATCH, effects=("assign_unit", "assign_person")),
})

# Citizen reports (城市管理): the owning department is routed at intake, so the case goes straight
# to dispatch; no separate verification step.
REPORT: Workflow = MappingProxyType({
    ("reported", "dispatch"): _t("dispatched", DISPATCH, effects=("assign_unit", "assign_person")),
    ("reported", "reject"): _t("rejected", DISPATCH, requires=("reason",), effects=("close",)),
    ("reported", "merge"): _t("merged", DISPATCH, requires=("merged_into",), effects=("merge", "close")),
    **_centre_moves("reported"),
    ("escalated", "dispatch"): _t("dispatched", DISPATCH, effects=("assign_unit", "assign_person")),
    ("dispatched", "start"): _t("in_progress", HANDLE, effects=("assign_person",)),
    ("dispatched", "return"): _t("returned", HANDLE, requires=("reason",)),
    ("in_progress", "resolve"): _t("resolved", HANDLE, requires=("result",)),
    ("in_progress", "pause"): _t("in_progress", HANDLE, requires=("reason",), effects=("pause",)),
    ("in_progress", "resume"): _t("in_progress", HANDLE, effects=("resume",)),
    **_centre_moves("in_progress"),
    ("returned", "dispatch"): _t("dispatched", DISPATCH, effects=("assign_unit", "assign_person")),
    ("returned", "reject"): _t("rejected", DISPATCH, requires=("reason",), effects=("close",)),
    **_centre_moves("returned"),
    ("resolved", "close"): _t("closed", DISPATCH, effects=("close",)),
    ("resolved", "send_back"): _t("in_progress", DISPATCH, requires=("reason",)),
    ("closed", "reopen"): _t("reopened", DISPATCH, requires=("reason",), effects=("reopen",)),
    ("reopened", "dispatch"): _t("dispatched", DISPATCH, effects=("assign_unit", "assign_person")),
})

# Tasks the platform hands out (a warning's emergency plan): the unit or person they are routed to
# acknowledges them (accept) and reports them done (resolve); the centre closes them. A task no
# longer needed (the warning was lifted) is cancelled with the reason from any state still open.
_CANCEL = _t("closed", DISPATCH, requires=("reason",), effects=("close",))
TASK: Workflow = MappingProxyType({
    ("reported", "accept"): _t("accepted", HANDLE, effects=("assign_person",)),
    ("reported", "cancel"): _CANCEL,
    **_centre_moves("reported"),
    ("accepted", "resolve"): _t("resolved", HANDLE, requires=("result",)),
    ("accepted", "cancel"): _CANCEL,
    **_centre_moves("accepted"),
    ("escalated", "accept"): _t("accepted", HANDLE, effects=("assign_person",)),
    ("escalated", "cancel"): _CANCEL,
    ("resolved", "close"): _t("closed", DISPATCH, effects=("close",)),
    ("resolved", "send_back"): _t("accepted", DISPATCH, requires=("reason",)),
    ("closed", "reopen"): _t("reopened", DISPATCH, requires=("reason",), effects=("reopen",)),
    ("reopened", "accept"): _t("accepted", HANDLE, effects=("assign_person",)),
    ("reopened", "cancel"): _CANCEL,
})

# Credit repair applications (credit/repair.py): accepted once complete, refused with the reason (the
# missing materials named), granted with the result; a repair obtained with false materials is revoked
# (reopened and refused with the reason). Only the credit repair service moves them, acting as
# the system after its own checks (permission credit.repair, eligibility), so the case and the penalty's
# record always agree: no role holds REPAIR_SERVICE, so the generic case actions cannot move them.
REPAIR_SERVICE = "credit.repair.service"
_REFUSE = _t("rejected", REPAIR_SERVICE, requires=("reason",), effects=("close",))
REPAIR: Workflow = MappingProxyType({
    ("reported", "accept"): _t("accepted", REPAIR_SERVICE),
    ("reported", "reject"): _REFUSE,
    ("accepted", "reject"): _REFUSE,
    ("accepted", "resolve"): _t("closed", REPAIR_SERVICE, requires=("result",), effects=("close",)),
    ("closed", "reopen"): _t("reopened", REPAIR_SERVICE, requires=("reason",), effects=("reopen",)),
    ("reopened", "reject"): _REFUSE,
})

WORKFLOWS: Mapping[str, Workflow] = MappingProxyType({"standard": STANDARD, "report": REPORT, "task": TASK,
                                                      "repair": REPAIR})


def allowed_actions(workflow: Workflow, state: str) -> list[str]:
    return sorted(action for (from_state, action) in workflow if from_state == state)


def transition_for(workflow: Workflow, state: str, action: str) -> Transition:
    """The declared transition, or InvalidTransition (409) listing what may be done instead."""
    found = workflow.get((state, action))
    if found is None:
        allowed = allowed_actions(workflow, state)
        moves = ", ".join(allowed) if allowed else "none"
        raise InvalidTransition(f"action {action!r} is not allowed in state {state!r}; allowed: {moves}",
                                detail={"state": state, "allowed": allowed})
    return found


def level_above(level: str) -> str | None:
    i = LEVELS.index(level)
    return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


def level_below(level: str) -> str | None:
    i = LEVELS.index(level)
    return LEVELS[i - 1] if i > 0 else None
