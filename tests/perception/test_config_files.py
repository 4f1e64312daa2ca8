"""Device profiles and alarm rules are validated when loaded; a city's bad file names the line."""

from __future__ import annotations

import pytest

from cityops.perception import profiles, rules

RULE = """rules:
  - code: smoke_high
    name_zh: 烟雾浓度超标
    name_en: Smoke density high
    profile: smoke_detector
    kind: threshold
    key: smoke
    above: 0.15
    clear_at: 0.08
    severity: CRITICAL
    alarm_type: smoke
"""


def test_the_shipped_files_load() -> None:
    assert {p.code for p in profiles.registry().profiles} >= {"smoke_detector", "camera_box", "manhole_cover"}
    assert rules.registry().by_profile_key()[("smoke_detector", "smoke")][0].severity == "MAJOR"
    assert rules.registry().rule("fire_confirmed").severity == "CRITICAL"  # type: ignore[union-attr]


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    ("clear_at: 0.08", "clear_at: 0.5", 2, "clear_at must not be above the limit"),
    ("profile: smoke_detector", "profile: toaster", 2, "unknown device profile 'toaster'"),
    ("severity: CRITICAL", "severity: URGENT", 10, "severity"),
    ("above: 0.15", "below: 0.15\n    above: 0.2", 2, "exactly one of above or below"),
])
def test_a_bad_rule_names_its_line(old: str, new: str, line: int, words: str) -> None:
    with pytest.raises(rules.RulesError) as refused:
        rules.parse(RULE.replace(old, new), source="rules.yaml")
    assert f"rules.yaml line {line}:" in str(refused.value) and words in str(refused.value)


def test_a_bare_yaml_on_is_caught_as_a_key() -> None:
    """YAML 1.1 reads a bare `on` as true: the street-light key must be quoted, and unquoted it is
    refused with its line rather than stored as a key named True."""
    text = ("profiles:\n  - code: lamp\n    name_zh: 路灯\n    name_en: Lamp\n    kind: sensor\n"
            "    department: urban\n    report_interval_s: 60\n    keys:\n"
            "      - {key: on, name_zh: 开, name_en: On}\n")
    with pytest.raises(profiles.ProfilesError) as refused:
        profiles.parse(text, source="profiles.yaml")
    assert "profiles.yaml line 9: profiles.0.keys.0.key" in str(refused.value)
