"""Case types as configuration: the shipped file and what a bad file says."""

from __future__ import annotations

import pytest

from cityops.cases import types
from cityops.core.errors import ValidationFailed

SHIPPED = types.DEFAULT_PATH.read_text(encoding="utf-8")


def test_shipped_types_load_with_categories_departments_and_slas() -> None:
    registry = types.registry()
    assert {t.code for t in registry.types} >= {"dispute", "urban", "hazard"}
    dispute = registry.get("dispute")
    assert dispute.name_zh == "矛盾纠纷" and dispute.level == "village"
    assert dispute.category("labour").department == "hrss"
    assert dispute.category("noise").name_zh == "噪声扰民"  # a child category
    assert dispute.sla_for("township") == types.Sla(days=5)
    assert registry.get("urban").public and not dispute.public


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    ("workflow: report", "workflow: nope", 39, "unknown workflow 'nope'"),
    ("township: {hours: 24}", "township: {hours: 24, days: 1}", 43, "exactly one of hours or days"),
    ("options: [low, medium, high]", "options: []", 34, "choice field needs options"),
    ("{code: family,", "{code: noise,", 21, "category codes repeat: noise"),
    ("type: boolean", "type: colour", 79, "fields.0.type"),
    ("      city: {days: 15}\n", "", 9, "sla is missing for level(s) city"),
])
def test_a_bad_file_names_the_line(old: str, new: str, line: int, words: str) -> None:
    assert old in SHIPPED
    with pytest.raises(types.CaseTypesError) as caught:
        types.parse(SHIPPED.replace(old, new, 1), source="case_types.yaml")
    message = str(caught.value)
    assert message.startswith(f"case_types.yaml line {line}:"), message
    assert words in message


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(types.CaseTypesError, match=r"line 4: not valid YAML"):
        types.parse("number_prefix: HB\ntypes:\n  - {code: x\n")


def test_custom_fields_are_checked_by_type() -> None:
    dispute = types.registry().get("dispute")
    assert dispute.clean_fields({"parties": 3, "risk": "high"}) == {"parties": 3, "risk": "high"}
    bad: list[tuple[dict[str, object], str]] = [
        ({}, "fields.parties"), ({"parties": "two"}, "fields.parties"),
                          ({"parties": 1}, "fields.parties"),
                          ({"parties": 2, "risk": "extreme"}, "fields.risk"),
                          ({"parties": 2, "colour": "red"}, "fields.colour")]
    for values, field in bad:
        with pytest.raises(ValidationFailed) as caught:
            dispute.clean_fields(values)
        assert caught.value.field == field
    hazard = types.registry().get("hazard")
    cleaned = hazard.clean_fields({"immediate_danger": True, "found_on": "2024-05-01"})
    assert cleaned["found_on"] == "2024-05-01"
    with pytest.raises(ValidationFailed, match="YYYY-MM-DD"):
        hazard.clean_fields({"immediate_danger": True, "found_on": "May 1"})
