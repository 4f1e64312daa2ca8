"""The lifecycle of a warning as data: `{(state, action): Transition}` per source of warnings.

A transition names the state it leads to, the CAP message it publishes (none while a warning is not
public) and the fields the action must carry. A warning's own operators drive the platform's warnings;
an imported warning follows its sender's messages only. Anything not declared is refused with the
allowed moves (InvalidTransition, 409)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from cityops.core.errors import InvalidTransition
from cityops.core.i18n import N_

NEW = "new"  # before the warning exists: the creating actions start here
STATES = ("draft", "pending", "issued", "cancelled", "expired")
STATE_LABELS = MappingProxyType(
    {
        "draft": N_("Draft"),
        "pending": N_("Pending confirmation"),
        "issued": N_("In force"),
        "cancelled": N_("Lifted"),
        "expired": N_("Expired"),
    }
)
ACTIVE = frozenset({"issued"})
MsgType = Literal["Alert", "Update", "Cancel"]


@dataclass(frozen=True)
class Transition:
    to: str
    message: MsgType | None = None  # the CAP message the move publishes
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.to not in STATES:
            raise ValueError(f"unknown state {self.to!r}")


Workflow = Mapping[tuple[str, str], Transition]

# Warnings made here: by hand (issued at once, or drafted first) or raised by a station rule and held
# for an operator's confirmation where the level asks for it.
OWN: Workflow = MappingProxyType(
    {
        (NEW, "issue"): Transition("issued", "Alert"),
        (NEW, "draft"): Transition("draft"),
        (NEW, "raise"): Transition("pending"),
        ("draft", "issue"): Transition("issued", "Alert"),
        ("draft", "discard"): Transition("cancelled"),
        ("pending", "confirm"): Transition("issued", "Alert"),
        ("pending", "reject"): Transition("cancelled", requires=("reason",)),
        ("issued", "update"): Transition("issued", "Update"),
        ("issued", "extend"): Transition("issued", "Update", requires=("expires",)),
        ("issued", "cancel"): Transition("cancelled", "Cancel", requires=("reason",)),
        ("issued", "expire"): Transition("expired"),
    }
)

# Warnings imported from another sender's CAP feed: they change only by that sender's messages (its
# word counts even after the warning expired here, e.g. an Update that extends it).
EXTERNAL: Workflow = MappingProxyType(
    {
        (NEW, "import"): Transition("issued", "Alert"),
        ("issued", "update"): Transition("issued", "Update"),
        ("issued", "cancel"): Transition("cancelled", "Cancel"),
        ("issued", "expire"): Transition("expired"),
        ("expired", "update"): Transition("issued", "Update"),
        ("expired", "cancel"): Transition("cancelled", "Cancel"),
    }
)

WORKFLOWS: Mapping[str, Workflow] = MappingProxyType({"own": OWN, "external": EXTERNAL})


def workflow_of(source: str) -> Workflow:
    return EXTERNAL if source == "external" else OWN


def allowed_actions(workflow: Workflow, state: str) -> list[str]:
    return sorted(action for (from_state, action) in workflow if from_state == state)


def transition_for(workflow: Workflow, state: str, action: str) -> Transition:
    """The declared transition, or InvalidTransition (409) listing what may be done instead."""
    found = workflow.get((state, action))
    if found is None:
        allowed = allowed_actions(workflow, state)
        moves = ", ".join(allowed) if allowed else "none"
        raise InvalidTransition(
            f"a warning that is {state} cannot {action}; allowed: {moves}",
            detail={"state": state, "allowed": allowed},
        )
    return found
