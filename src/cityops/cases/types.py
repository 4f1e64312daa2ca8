"""Case types as configuration: a YAML file (data/case_types.yaml, overridable per city) validated by
pydantic. A bad file raises CaseTypesError naming the file, the line and the field."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cityops.cases.workflow import LEVELS, WORKFLOWS
from cityops.core.errors import NotFound, ValidationFailed
from cityops.core.yaml_config import ConfigFileError, load_yaml_file, parse_yaml

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "case_types.yaml"
Level = Literal["village", "township", "county", "city"]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
MAX_TEXT_FIELD = 2000
EXPECTED = "a mapping with number_prefix and types"


class CaseTypesError(ConfigFileError):
    """A case types file that cannot be used; the message names the line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sla(_Strict):
    """Time allowed at one level, in working hours or working days (exactly one)."""

    hours: int | None = Field(default=None, ge=1, le=10_000)
    days: int | None = Field(default=None, ge=1, le=1_000)

    @model_validator(mode="after")
    def _one_unit(self) -> Sla:
        if (self.hours is None) == (self.days is None):
            raise ValueError("give exactly one of hours or days")
        return self


class Category(_Strict):
    code: Code
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=120)
    department: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,30}$")
    children: tuple[Category, ...] = ()


FieldType = Literal["string", "text", "integer", "number", "boolean", "date", "choice"]


class CustomField(_Strict):
    name: Code
    type: FieldType
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=120)
    required: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = Field(default=None, ge=1, le=MAX_TEXT_FIELD)
    options: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _options_for_choice(self) -> CustomField:
        if self.type == "choice" and not self.options:
            raise ValueError("a choice field needs options")
        if self.type != "choice" and self.options is not None:
            raise ValueError("options are only for choice fields")
        return self

    def clean(self, value: Any) -> Any:
        """The value in its stored form, or ValueError saying what is wrong."""
        if self.type in ("string", "text"):
            if not isinstance(value, str):
                raise ValueError("must be text")
            limit = self.max_length or (200 if self.type == "string" else MAX_TEXT_FIELD)
            if len(value) > limit:
                raise ValueError(f"must be at most {limit} characters")
            return value
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        if self.type in ("integer", "number"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError("must be a number")
            if self.type == "integer" and not (isinstance(value, int) or float(value).is_integer()):
                raise ValueError("must be a whole number")
            if not math.isfinite(value):
                raise ValueError("must be a finite number")
            if self.min is not None and value < self.min:
                raise ValueError(f"must be at least {self.min:g}")
            if self.max is not None and value > self.max:
                raise ValueError(f"must be at most {self.max:g}")
            return int(value) if self.type == "integer" else float(value)
        if self.type == "date":
            if not isinstance(value, str):
                raise ValueError("must be a date YYYY-MM-DD")
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                raise ValueError("must be a date YYYY-MM-DD") from None
        assert self.options is not None
        if value not in self.options:
            raise ValueError(f"must be one of {', '.join(self.options)}")
        return value


class CaseType(_Strict):
    code: Code
    name_zh: str = Field(min_length=1, max_length=60)
    name_en: str = Field(min_length=1, max_length=120)
    workflow: str
    level: Level
    public: bool = False
    # Opened by the platform itself (sensor alarms), never reported by a person.
    automatic: bool = False
    sla: dict[Level, Sla]
    categories: tuple[Category, ...] = Field(min_length=1)
    fields: tuple[CustomField, ...] = ()

    @field_validator("workflow")
    @classmethod
    def _known_workflow(cls, value: str) -> str:
        if value not in WORKFLOWS:
            raise ValueError(f"unknown workflow {value!r}; known: {', '.join(WORKFLOWS)}")
        return value

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, value: tuple[Category, ...]) -> tuple[Category, ...]:
        codes: list[str] = []
        stack = list(value)
        while stack:
            category = stack.pop()
            codes.append(category.code)
            stack.extend(category.children)
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"category codes repeat: {', '.join(dupes)}")
        return value

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, value: tuple[CustomField, ...]) -> tuple[CustomField, ...]:
        names = [f.name for f in value]
        if len(set(names)) != len(names):
            raise ValueError("custom field names repeat")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CaseType:
        # Every level the case can be escalated to from its intake level needs a deadline.
        missing = [lv for lv in LEVELS[LEVELS.index(self.level):] if lv not in self.sla]
        if missing:
            raise ValueError(f"sla is missing for level(s) {', '.join(missing)}")
        return self

    def all_categories(self) -> Iterator[Category]:
        stack = list(reversed(self.categories))
        while stack:
            category = stack.pop()
            yield category
            stack.extend(reversed(category.children))

    def category(self, code: str) -> Category:
        for category in self.all_categories():
            if category.code == code:
                return category
        known = ", ".join(c.code for c in self.all_categories())
        raise ValidationFailed(f"unknown category {code!r} for case type {self.code!r}; known: {known}",
                               field="category")

    def sla_for(self, level: str) -> Sla | None:
        for key, value in self.sla.items():
            if key == level:
                return value
        return None

    def clean_fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Custom field values checked against their declarations (ValidationFailed naming the field)."""
        declared = {f.name: f for f in self.fields}
        for name in values:
            if name not in declared:
                raise ValidationFailed(f"case type {self.code!r} has no field {name!r}; fields: "
                                       f"{', '.join(declared) or 'none'}", field=f"fields.{name}")
        cleaned: dict[str, Any] = {}
        for spec in self.fields:
            value = values.get(spec.name)
            if value is None:
                if spec.required:
                    raise ValidationFailed(f"field {spec.name!r} is required", field=f"fields.{spec.name}")
                continue
            try:
                cleaned[spec.name] = spec.clean(value)
            except ValueError as exc:
                raise ValidationFailed(f"field {spec.name!r} {exc}", field=f"fields.{spec.name}") from None
        return cleaned


class CaseTypes(_Strict):
    number_prefix: str = Field(pattern=r"^[A-Z]{1,6}$")
    types: tuple[CaseType, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> CaseTypes:
        codes = [t.code for t in self.types]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"case type codes repeat: {', '.join(dupes)}")
        return self

    def reportable(self) -> tuple[CaseType, ...]:
        """The types a person may report (not the automatic ones)."""
        return tuple(t for t in self.types if not t.automatic)

    def get(self, code: str) -> CaseType:
        for case_type in self.types:
            if case_type.code == code:
                return case_type
        raise ValidationFailed(f"unknown case type {code!r}; known: {', '.join(t.code for t in self.types)}",
                               field="type_code")

    def find(self, code: str) -> CaseType:
        """Like get, for stored cases: a type removed from the file is NotFound, not bad input."""
        try:
            return self.get(code)
        except ValidationFailed:
            raise NotFound(f"case type {code!r} is no longer configured") from None


def parse(text: str, *, source: str = "case types") -> CaseTypes:
    """Validate a case types document; CaseTypesError names the line of the first problem."""
    return parse_yaml(text, CaseTypes, source=source, expected=EXPECTED, error=CaseTypesError)


def load(path: Path | None = None) -> CaseTypes:
    return load_yaml_file(path or DEFAULT_PATH, CaseTypes, expected=EXPECTED, error=CaseTypesError)


@lru_cache(maxsize=8)
def _cached(path: Path) -> CaseTypes:
    return load(path)


def registry(path: Path | None = None) -> CaseTypes:
    """The configured case types, loaded and validated once per file."""
    return _cached(path or DEFAULT_PATH)
