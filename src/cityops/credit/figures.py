"""The distribution of risk classes: active entities in the viewer's scope counted by class (A, B, C, D and
not yet evaluated) per industry section and per county, or per township of one county; one GROUP BY
query per table, with totals and shares. Classes are internal (credit.inspect), and every read is
audited like the inspector view."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityops.core.auth import audit
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.auth.scope import scope_prefix
from cityops.core.errors import Forbidden, NotFound, ValidationFailed
from cityops.core.i18n import N_, gettext_for
from cityops.credit import industries, service
from cityops.credit.models import RISK_CLASSES, Entity
from cityops.places import service as places_service

UNEVALUATED = "unevaluated"
COLUMNS = (*RISK_CLASSES, UNEVALUATED)
By = Literal["industry", "area"]
TITLE = N_("Risk class distribution")
NO_SECTION = N_("Industry not given")
NO_COUNTY = N_("Not placed in a county")
NO_TOWNSHIP = N_("Not placed in a township")
COLUMN_LABELS = {**{c: c for c in RISK_CLASSES}, UNEVALUATED: N_("Not evaluated")}
HEADERS = {"industry": N_("Industry section"), "county": N_("County"), "township": N_("Township")}


class ClassRow(BaseModel):
    key: str  # section letter or division code; "" when the entity has none
    name: str
    counts: dict[str, int]  # by class: A, B, C, D, unevaluated
    total: int
    shares: dict[str, float]  # each class's share of the row's total
    share_of_all: float  # the row's share of every entity counted


class ClassDistribution(BaseModel):
    by: By
    level: Literal["industry", "county", "township"]
    county: str | None
    county_name: str | None
    section: str | None
    classes: list[str]
    rows: list[ClassRow]
    totals: ClassRow


def _row(key: str, name: str, counts: dict[str, int], grand: int) -> ClassRow:
    total = sum(counts.values())
    return ClassRow(
        key=key,
        name=name,
        counts={c: counts.get(c, 0) for c in COLUMNS},
        total=total,
        shares={c: round(counts.get(c, 0) / total, 4) if total else 0.0 for c in COLUMNS},
        share_of_all=round(total / grand, 4) if grand else 0.0,
    )


def check_county(session: Session, county: str, locale: str) -> str:
    """The county's name; ValidationFailed for a code of another shape, NotFound for an unknown one."""
    try:
        prefix = scope_prefix(county)
    except ValueError:
        raise ValidationFailed(
            f"{county!r} is not a county code (6 digits, e.g. 410621)", field="county"
        ) from None
    if len(prefix) != 6 or len(county) != 6:
        raise ValidationFailed(f"{county!r} is not a county code (6 digits, e.g. 410621)", field="county")
    counties = places_service.list_divisions(session, level="county", limit=1000).items
    found = next((d for d in counties if d.code == county), None)
    if found is None:
        raise NotFound(f"no county with code {county!r} in the city", field="county")
    return (found.name_en or found.name) if locale == "en" else found.name


def class_distribution(
    session: Session,
    *,
    viewer: User,
    by: By,
    county: str | None = None,
    section: str | None = None,
    locale: str = "zh",
    request: Request | None = None,
    export: bool = False,
) -> ClassDistribution:
    """Active entities in the viewer's scope (the entity list's own scope filter) by risk class, per
    industry section (by="industry") or per county, or per township of `county` (by="area"); `county`
    and `section` narrow either table. Audited as a read (or an export)."""
    if not has_permission(viewer, "credit.inspect"):
        raise Forbidden("risk classes are internal (needs permission 'credit.inspect')")
    county_name = check_county(session, county, locale) if county else None
    condition = service.visibility_condition(
        viewer, service.Filters(status="active", division=county or None, section=section or None)
    )
    translate = gettext_for(locale).gettext
    names: dict[str, str]
    if by == "industry":
        level: Literal["industry", "county", "township"] = "industry"
        key: Any = func.coalesce(Entity.industry_section, "")
        names = {s.code: s.name(locale) for s in industries.registry().sections.values()}
        missing = translate(NO_SECTION)
    elif county:
        level = "township"
        key = func.substr(Entity.division_code, 1, 9)
        divisions = places_service.list_divisions(session, parent_code=county, limit=1000).items
        names = {d.code: (d.name_en or d.name) if locale == "en" else d.name for d in divisions}
        missing = translate(NO_TOWNSHIP)
    else:
        level = "county"
        key = func.substr(Entity.division_code, 1, 6)
        divisions = places_service.list_divisions(session, level="county", limit=1000).items
        names = {d.code: (d.name_en or d.name) if locale == "en" else d.name for d in divisions}
        missing = translate(NO_COUNTY)
    cls = func.coalesce(Entity.risk_class, UNEVALUATED)
    counts: dict[str, dict[str, int]] = {}
    # Grouped on a subquery's columns: the same expression twice would carry different bound parameters,
    # which PostgreSQL does not take as one grouping.
    rows = select(key.label("grp"), cls.label("cls")).where(condition).subquery()
    for group, risk_class, n in session.execute(
        select(rows.c.grp, rows.c.cls, func.count()).group_by(rows.c.grp, rows.c.cls)
    ):
        group = group if group in names else ""  # a code above the level (e.g. placed in the county only)
        row = counts.setdefault(group, {})
        row[risk_class] = row.get(risk_class, 0) + n
    grand = sum(sum(row.values()) for row in counts.values())
    table = [
        _row(k, names[k] if k else missing, counts[k], grand)
        for k in sorted(counts, key=lambda k: (k == "", k))  # the unplaced last
    ]
    totals: dict[str, int] = {}
    for row in counts.values():
        for c, n in row.items():
            totals[c] = totals.get(c, 0) + n
    audit.record(
        session,
        viewer,
        "export" if export else "read",
        "credit_class_figures",
        None,
        division_code=county,
        request=request,
        detail={"by": by, "county": county, "section": section},
    )
    return ClassDistribution(
        by=by,
        level=level,
        county=county,
        county_name=county_name,
        section=section or None,
        classes=list(COLUMNS),
        rows=table,
        totals=_row("", translate("Total"), totals, grand),
    )


def export_headers(result: ClassDistribution, locale: str) -> list[str]:
    translate = gettext_for(locale).gettext
    classes = [translate(COLUMN_LABELS[c]) for c in COLUMNS]
    return [
        translate("Code"),
        translate(HEADERS[result.level]),
        *classes,
        translate("Total"),
        *(f"{c} %" for c in classes),
    ]


def export_rows(result: ClassDistribution) -> list[list[Any]]:
    """The table's rows and its totals, shares as fractions (Excel formats them)."""
    return [
        [r.key, r.name, *(r.counts[c] for c in COLUMNS), r.total, *(r.shares[c] for c in COLUMNS)]
        for r in (*result.rows, result.totals)
    ]
