"""Emergency plans as configuration: the shipped file, levels adding up, and bad files refused with the
line and the field."""

from __future__ import annotations

import pytest

from cityops.warning import plans

GOOD = """\
plans:
  - code: flood
    name_zh: 防汛应急预案
    name_en: Flood plan
    hazards: [flood, rainstorm]
    levels:
      blue:
        - code: patrol
          name_zh: 巡查
          name_en: Patrol
          target: grid
          category: patrol
          deadline_minutes: 120
      red:
        - code: evacuate
          name_zh: 转移
          name_en: Evacuate
          target: village
          category: evacuate
          deadline_minutes: 60
          villages: ["410621104", "410611100203"]
        - code: rescue
          name_zh: 救援
          name_en: Rescue
          target: department
          category: rescue
          deadline_minutes: 30
"""


def test_the_shipped_plans_load_and_a_level_adds_to_the_levels_below() -> None:
    registry = plans.registry()
    flood = registry.plan_for("rainstorm")
    assert flood is not None and flood is registry.plan_for("flood")
    assert [i.code for _, i in flood.items_up_to("blue")] == ["patrol_river_banks"]
    red = flood.items_up_to("red")
    assert [level for level, _ in red] == ["blue", "yellow", "orange", "orange", "red", "red"]
    evacuate = next(i for _, i in red if i.code == "evacuate_low_lying")
    assert evacuate.target == "village" and evacuate.villages and evacuate.covers("410621104201")
    assert not evacuate.covers("410621104203")
    geological = registry.plan_for("landslide")
    assert geological is not None and "evacuate_hill_villages" in [
        i.code for _, i in geological.items_up_to("orange")
    ]
    assert registry.plan_for("gale") is None  # warned of, but no plan: notices only


def test_a_township_code_covers_its_villages() -> None:
    [plan] = plans.parse(GOOD).plans
    [(_, evacuate)] = [(lv, i) for lv, i in plan.items_up_to("red") if i.code == "evacuate"]
    assert evacuate.covers("410621104227") and evacuate.covers("410611100203")
    assert not evacuate.covers("410611100204")


def _bad(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (_bad("category: patrol", "category: picnic"), "line 12: plans.0.levels.blue.0.category"),
        (
            _bad("deadline_minutes: 120", "deadline_minutes: 0"),
            "line 13: plans.0.levels.blue.0.deadline_minutes",
        ),
        (_bad("hazards: [flood, rainstorm]", "hazards: [flood, tsunami]"), "line 5: plans.0.hazards"),
        (_bad("      blue:", "      purple:"), "plans.0.levels.purple"),
        (_bad("target: grid", "target: grid_worker"), "line 11: plans.0.levels.blue.0.target"),
        (_bad('villages: ["410621104"', 'villages: ["41062"'), "line 21: plans.0.levels.red.0.villages.0"),
        (_bad("    levels:", "    colour: red\n    levels:"), "line 6: plans.0.colour"),
    ],
)
def test_a_bad_field_is_named_with_its_line(text: str, where: str) -> None:
    with pytest.raises(plans.PlansError) as caught:
        plans.parse(text, source="plans.yaml")
    assert caught.value.args[0].startswith("plans.yaml "), caught.value
    assert where in str(caught.value), caught.value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A department's task needs a category a department owns, and the other way round.
        (
            _bad(
                "target: department\n          category: rescue",
                "target: department\n          category: patrol",
            ),
            "category 'patrol' belongs to no department",
        ),
        (
            _bad("target: grid\n          category: patrol", "target: grid\n          category: rescue"),
            "give it target department",
        ),
        (_bad("code: evacuate", "code: patrol"), "item codes repeat across the levels: patrol"),
        (
            GOOD + GOOD.split("plans:\n", 1)[1].replace("code: flood", "code: storm", 1),
            "hazard 'flood' is in plans 'flood' and 'storm'",
        ),
    ],
)
def test_inconsistent_plans_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(plans.PlansError) as caught:
        plans.parse(text, source="plans.yaml")
    assert message in str(caught.value), caught.value
    assert " line " in str(caught.value)


def test_not_yaml_or_not_a_mapping_is_refused() -> None:
    with pytest.raises(plans.PlansError, match="line 3: not valid YAML"):
        plans.parse("plans:\n  - [unclosed\n", source="plans.yaml")
    with pytest.raises(plans.PlansError, match="expected a mapping with plans"):
        plans.parse("- just a list\n", source="plans.yaml")
