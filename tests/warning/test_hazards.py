"""The level and hazard registries and the workflow tables are consistent with CAP and the catalogue."""

from __future__ import annotations

from cityops.core import i18n
from cityops.warning import hazards, workflow


def test_the_catalogue_names_levels_and_hazards_as_the_cap_messages_do() -> None:
    chinese = i18n.gettext_for("zh").gettext
    for level in hazards.LEVELS.values():
        assert chinese(level.label) == level.colour_zh
    for hazard in hazards.HAZARDS.values():
        assert chinese(hazard.label) == hazard.name_zh
    for label in workflow.STATE_LABELS.values():
        assert chinese(label) != label


def test_levels_are_ordered_and_grade_the_four_chinese_levels() -> None:
    ordered = sorted(hazards.LEVELS.values(), key=lambda lv: lv.rank)
    assert [lv.code for lv in ordered] == ["blue", "yellow", "orange", "red"]
    assert [lv.roman for lv in ordered] == ["Ⅳ", "Ⅲ", "Ⅱ", "Ⅰ"]
    assert [lv.grade_zh for lv in ordered] == ["一般", "较重", "严重", "特别严重"]


def test_red_flood_and_landslide_warnings_ask_for_evacuation() -> None:
    red, orange = hazards.LEVELS["red"], hazards.LEVELS["orange"]
    assert hazards.response_for(hazards.HAZARDS["flood"], red) == "Evacuate"
    assert hazards.response_for(hazards.HAZARDS["landslide"], red) == "Evacuate"
    assert hazards.response_for(hazards.HAZARDS["flood"], orange) == "Prepare"
    assert hazards.response_for(hazards.HAZARDS["rainstorm"], red) == "Avoid"


def test_every_workflow_move_leads_to_a_known_state_and_public_moves_send_cap() -> None:
    for table in workflow.WORKFLOWS.values():
        for (state, action), move in table.items():
            assert state in (workflow.NEW, *workflow.STATES)
            if move.to == "issued" and state != "issued" and state != "expired":
                assert move.message == "Alert", (state, action)
            if action == "cancel":
                assert move.message == "Cancel"
    assert workflow.allowed_actions(workflow.OWN, "issued") == ["cancel", "expire", "extend", "update"]
    assert workflow.allowed_actions(workflow.OWN, "expired") == []
