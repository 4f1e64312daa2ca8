"""Facility categories of the 15-minute living circle, read from data/categories.yaml (the file documents
its fields, sources and the green-access rule). A broken file is an error naming its line and field."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from cityops.core.errors import ValidationFailed

CATEGORIES_FILE = Path(__file__).resolve().parent / "data" / "categories.yaml"
LEVELS = ("basic", "quality")
MINUTES = (5, 10, 15)


@dataclass(frozen=True)
class Group:
    key: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Category:
    key: str
    name_zh: str
    name_en: str
    group: str
    threshold_m: float
    minutes: int
    level: str
    green: bool
    standard: str

    @property
    def basic(self) -> bool:
        return self.level == "basic"


@dataclass(frozen=True)
class AreaClass:
    key: str
    name_zh: str
    name_en: str
    min_m2: float


@dataclass(frozen=True)
class GreenRule:
    """Within `within_m` on foot of an entrance of a green space of at least `min_area_m2`."""

    key: str
    within_m: float
    min_area_m2: float


@dataclass(frozen=True)
class Catalogue:
    groups: dict[str, Group]
    categories: dict[str, Category]
    area_classes: tuple[AreaClass, ...]
    green_rules: tuple[GreenRule, ...]

    def find(self, text: str) -> Category | None:
        """A category by key or Chinese or English name (case and surrounding spaces ignored)."""
        wanted = text.strip().lower()
        for c in self.categories.values():
            if wanted in (c.key, c.name_zh.lower(), c.name_en.lower()):
                return c
        return None

    def area_class(self, area_m2: float) -> AreaClass:
        found = self.area_classes[0]
        for cls in self.area_classes:
            if area_m2 >= cls.min_m2:
                found = cls
        return found

    def in_group(self, group: str) -> list[Category]:
        return [c for c in self.categories.values() if c.group == group]


class _LineLoader(yaml.SafeLoader):
    """Mappings come back as dicts that know the line they start on."""


class _Mapping(dict[str, Any]):
    line = 0


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping({str(k): v for k, v in loader.construct_mapping(node, deep=True).items()})
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _fail(source: str, item: Any, field: str, message: str) -> ValidationFailed:
    line = getattr(item, "line", 0)
    where = f"{source}, line {line}" if line else source
    return ValidationFailed(f"{where}: {field}: {message}", field=field)


def _text(source: str, item: Any, field: str) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, item, field, "must be a non-empty text")
    return value.strip()


def _number(source: str, item: Any, field: str, *, minimum: float = 0.0, positive: bool = True) -> float:
    value = item.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(source, item, field, f"must be a number, not {value!r}")
    if value < minimum or (positive and value <= 0):
        raise _fail(
            source, item, field, f"must be {'above' if positive else 'at least'} {minimum:g}, not {value!r}"
        )
    return float(value)


def _list(source: str, data: Any, field: str) -> list[Any]:
    value = data.get(field)
    if not isinstance(value, list) or not value:
        raise _fail(source, data, field, "must be a non-empty list")
    for item in value:
        if not isinstance(item, dict):
            raise _fail(source, data, field, f"every entry must be a mapping, not {item!r}")
    return value


def parse(text: str, source: str = "categories.yaml") -> Catalogue:
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"{source}: not valid YAML: {exc}", field="file") from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"{source}: must be a mapping with groups and categories", field="file")
    groups: dict[str, Group] = {}
    for item in _list(source, data, "groups"):
        g = Group(_text(source, item, "key"), _text(source, item, "name_zh"), _text(source, item, "name_en"))
        if g.key in groups:
            raise _fail(source, item, "key", f"group {g.key!r} appears twice")
        groups[g.key] = g
    classes: list[AreaClass] = []
    for item in _list(source, data, "area_classes"):
        cls = AreaClass(
            _text(source, item, "key"),
            _text(source, item, "name_zh"),
            _text(source, item, "name_en"),
            _number(source, item, "min_m2", positive=False),
        )
        if classes and cls.min_m2 <= classes[-1].min_m2:
            raise _fail(source, item, "min_m2", "area classes must be in increasing order of min_m2")
        classes.append(cls)
    rules_data = data.get("green_access")
    if not isinstance(rules_data, dict) or set(rules_data) != {"green", "park"}:
        raise _fail(source, data, "green_access", "must be a mapping with the rules 'green' and 'park'")
    rules = tuple(
        GreenRule(
            key,
            _number(source, rules_data[key], "within_m"),
            _number(source, rules_data[key], "min_area_m2", positive=False),
        )
        for key in ("green", "park")
    )
    categories: dict[str, Category] = {}
    for item in _list(source, data, "categories"):
        key = _text(source, item, "key")
        if key in categories:
            raise _fail(source, item, "key", f"category {key!r} appears twice")
        group = _text(source, item, "group")
        if group not in groups:
            raise _fail(source, item, "group", f"unknown group {group!r}; known: {', '.join(groups)}")
        minutes = item.get("minutes")
        if minutes not in MINUTES:
            raise _fail(source, item, "minutes", f"must be one of 5, 10, 15, not {minutes!r}")
        level = item.get("level")
        if level not in LEVELS:
            raise _fail(source, item, "level", f"must be basic or quality, not {level!r}")
        green = item.get("green", False)
        if not isinstance(green, bool):
            raise _fail(source, item, "green", f"must be true or false, not {green!r}")
        categories[key] = Category(
            key=key,
            name_zh=_text(source, item, "name_zh"),
            name_en=_text(source, item, "name_en"),
            group=group,
            threshold_m=_number(source, item, "threshold_m"),
            minutes=int(minutes),
            level=str(level),
            green=green,
            standard=_text(source, item, "standard"),
        )
    return Catalogue(groups, categories, tuple(classes), rules)


@cache
def catalogue() -> Catalogue:
    return parse(CATEGORIES_FILE.read_text(encoding="utf-8"), CATEGORIES_FILE.name)
