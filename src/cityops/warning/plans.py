"""Emergency plans (应急预案) as configuration: for each hazard and warning level, the response tasks a
warning hands out. A YAML file (data/plans.yaml) validated by pydantic; a bad file raises PlansError
naming the line and the field.

A level's tasks add to those of the levels below it (yellow is blue's and its own), so a warning raised
from blue to red gets the yellow, orange and red tasks it does not have yet. Each item says whom its tasks
go to: one per grid or per village the warning covers (optionally only the villages listed), or one to
the department that owns the item's task category."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cityops.cases import types as case_types
from cityops.core.errors import ValidationFailed
from cityops.core.yaml_config import ConfigFileError, load_yaml_file, parse_yaml
from cityops.warning import hazards
from cityops.warning.hazards import LevelCode

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "plans.yaml"
TASK_TYPE = "warning_task"
EXPECTED = "a mapping with plans"
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
DivisionCode = Annotated[str, Field(pattern=r"^\d{6}(\d{3}(\d{3})?)?$")]
Target = Literal["grid", "village", "department"]


class PlansError(ConfigFileError):
    """A plans file that cannot be used; the message names the line and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def task_category(code: str) -> case_types.Category:
    """The warning_task category of this code; ValueError naming the known ones."""
    try:
        return case_types.registry().get(TASK_TYPE).category(code)
    except ValidationFailed as exc:
        raise ValueError(exc.message) from None


def _refuse_repeats(what: str, codes: list[str]) -> None:
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise ValueError(f"{what}: {', '.join(dupes)}")


class PlanItem(_Strict):
    """One thing to do: a task per target, due `deadline_minutes` after the warning reached the level."""

    code: Code
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=120)
    target: Target
    category: str
    deadline_minutes: int = Field(ge=5, le=7 * 24 * 60)
    instruction: str = Field(default="", max_length=1000)
    # Only these villages (codes of villages, or of the townships and counties holding them) among those
    # the warning covers; none: every village (or grid) it covers.
    villages: tuple[DivisionCode, ...] | None = Field(default=None, min_length=1)

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        task_category(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PlanItem:
        department = task_category(self.category).department
        if self.target == "department" and department is None:
            raise ValueError(
                f"category {self.category!r} belongs to no department: target department needs one that does"
            )
        if self.target != "department" and department is not None:
            raise ValueError(
                f"category {self.category!r} is handled by department {department!r}: give it "
                f"target department"
            )
        if self.target == "department" and self.villages is not None:
            raise ValueError("villages is for targets grid and village, not department")
        return self

    def covers(self, village_code: str) -> bool:
        return self.villages is None or village_code.startswith(self.villages)


class Plan(_Strict):
    code: Code
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=120)
    hazards: tuple[str, ...] = Field(min_length=1)
    levels: dict[LevelCode, tuple[PlanItem, ...]]

    @field_validator("hazards")
    @classmethod
    def _known_hazards(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [h for h in value if h not in hazards.HAZARDS]
        if unknown:
            raise ValueError(f"unknown hazard {unknown[0]!r}; known: {', '.join(hazards.HAZARDS)}")
        return value

    @field_validator("levels")
    @classmethod
    def _unique_items(cls, value: dict[str, tuple[PlanItem, ...]]) -> dict[str, tuple[PlanItem, ...]]:
        _refuse_repeats(
            "item codes repeat across the levels", [i.code for items in value.values() for i in items]
        )
        return value

    def items_up_to(self, level: str) -> list[tuple[str, PlanItem]]:
        """(level, item) of `level` and every level below it, lowest level first."""
        rank = hazards.level(level).rank
        return [
            (code, item)
            for code, items in sorted(self.levels.items(), key=lambda pair: hazards.LEVELS[pair[0]].rank)
            if hazards.LEVELS[code].rank <= rank
            for item in items
        ]


class Plans(_Strict):
    plans: tuple[Plan, ...]

    @model_validator(mode="after")
    def _one_plan_per_hazard(self) -> Plans:
        _refuse_repeats("plan codes repeat", [p.code for p in self.plans])
        seen: dict[str, str] = {}
        for plan in self.plans:
            for hazard in plan.hazards:
                if hazard in seen:
                    raise ValueError(f"hazard {hazard!r} is in plans {seen[hazard]!r} and {plan.code!r}")
                seen[hazard] = plan.code
        return self

    def plan_for(self, hazard: str) -> Plan | None:
        return next((p for p in self.plans if hazard in p.hazards), None)


def parse(text: str, *, source: str = "plans") -> Plans:
    """Validate a plans document; PlansError names the line and the field of the first problem."""
    return parse_yaml(text, Plans, source=source, expected=EXPECTED, error=PlansError)


@lru_cache(maxsize=8)
def registry(path: Path = DEFAULT_PATH) -> Plans:
    """The configured plans, loaded and validated once per file."""
    return load_yaml_file(path, Plans, expected=EXPECTED, error=PlansError)
