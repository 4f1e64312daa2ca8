"""GB/T 4754-2017 sections (门类, A-T) and divisions (大类, 01-97), read once from data/industries.csv."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from cityops.core.errors import ValidationFailed

DATA = Path(__file__).resolve().parent / "data" / "industries.csv"
# "C13", "13", "1311" (a class: its division is the first 2 digits), "C1311"
CODE = re.compile(r"^(?P<section>[A-T])?(?P<division>\d{2})(?:\d{1,2})?$")


@dataclass(frozen=True)
class Industry:
    code: str  # a section's letter or a division's 2 digits
    section: str
    name_zh: str
    name_en: str
    departments: tuple[str, ...]  # slugs of the supervising departments (dept-<slug>)

    @property
    def is_section(self) -> bool:
        return self.code == self.section

    def name(self, locale: str) -> str:
        return self.name_zh if locale == "zh" else self.name_en


@dataclass(frozen=True)
class Industries:
    sections: MappingProxyType[str, Industry]
    divisions: MappingProxyType[str, Industry]

    def division(self, code: str) -> Industry:
        return self.divisions[code]

    def departments(self, division: str | None) -> tuple[str, ...]:
        """Who supervises a division's entities besides the market regulator (its section's when the
        division names none)."""
        if division is None or division not in self.divisions:
            return ()
        found = self.divisions[division]
        return found.departments or self.sections[found.section].departments

    def parse(self, value: str) -> Industry:
        """A division from a code (C13, 13, 1311, C1311) or its exact Chinese or English name."""
        text = value.strip().upper().replace(" ", "")
        match = CODE.match(text)
        if match:
            division = self.divisions.get(match["division"])
            if division is None:
                raise ValidationFailed(
                    f"{value!r}: no division {match['division']} in GB/T 4754-2017 (01-97)", field="industry"
                )
            if match["section"] and match["section"] != division.section:
                raise ValidationFailed(
                    f"{value!r}: division {division.code} ({division.name_zh}) belongs to "
                    f"section {division.section}, not {match['section']}",
                    field="industry",
                )
            return division
        by_name = {d.name_zh: d for d in self.divisions.values()} | {
            d.name_en.upper().replace(" ", ""): d for d in self.divisions.values()
        }
        if text in by_name:
            return by_name[text]
        if text in self.sections:
            raise ValidationFailed(
                f"{value!r} is a section; give the division (大类, 2 digits, e.g. "
                f"{next(d.code for d in self.divisions.values() if d.section == text)})",
                field="industry",
            )
        raise ValidationFailed(
            f"{value!r} is neither a GB/T 4754-2017 division code (e.g. C13 or 1311) nor a division's name",
            field="industry",
        )


@lru_cache(maxsize=1)
def registry() -> Industries:
    sections: dict[str, Industry] = {}
    divisions: dict[str, Industry] = {}
    with DATA.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            item = Industry(
                code=row["code"],
                section=row["section"],
                name_zh=row["name_zh"],
                name_en=row["name_en"],
                departments=tuple(row["departments"].split()),
            )
            (sections if item.is_section else divisions)[item.code] = item
    return Industries(MappingProxyType(sections), MappingProxyType(divisions))
