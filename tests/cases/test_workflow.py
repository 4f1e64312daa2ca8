"""Workflows as data: declared moves only, with the allowed moves in the refusal."""

from __future__ import annotations

import pytest

from cityops.cases.workflow import STATES, WORKFLOWS, allowed_actions, level_above, transition_for
from cityops.core.errors import InvalidTransition


def test_an_undeclared_move_lists_the_allowed_ones() -> None:
    with pytest.raises(InvalidTransition) as caught:
        transition_for(WORKFLOWS["standard"], "reported", "close")
    assert caught.value.status == 409
    assert caught.value.detail["allowed"] == ["accept", "escalate", "merge", "reject", "reroute"]
    assert "allowed: accept, escalate" in caught.value.message


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_state_reached_can_be_left_or_is_final(name: str) -> None:
    workflow = WORKFLOWS[name]
    reached = {t.to for t in workflow.values()} | {"reported"}
    assert reached <= set(STATES)
    stuck = {s for s in reached if not allowed_actions(workflow, s)}
    assert stuck <= {"rejected", "merged"}, stuck


def test_the_ladder_ends_at_the_city() -> None:
    assert level_above("village") == "township"
    assert level_above("city") is None
