"""The coverage report: each community's access and gaps, and the township, county and city figures summed
from the communities (never computed separately); service.report_xlsx writes the workbook of it.

Rates are shares of the population of the communities in scope that lie on the network (a community
with no street within the snapping distance cannot be analysed; it is counted apart, as `communities -
analysed`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cityops.livability.categories import Catalogue
from cityops.livability.coverage import Access, FacilitySet
from cityops.livability.engine import BoolArray, FloatArray, IntArray
from cityops.livability.schemas import (
    AreaReport,
    CategoryAccessRead,
    CommunityReport,
    Coverage,
)

SCOPES = ("urban", "all")


@dataclass(frozen=True)
class Communities:
    """The village-level divisions (社区 and 村) with a representative point and population."""

    code: list[str]
    name: list[str]
    township_code: list[str | None]
    county_code: list[str | None]
    urban: BoolArray
    population: IntArray
    lon: FloatArray
    lat: FloatArray

    def __len__(self) -> int:
        return len(self.code)


def in_scope(communities: Communities, scope: str) -> BoolArray:
    return communities.urban.copy() if scope == "urban" else np.ones(len(communities), dtype=bool)


def _metres(value: float) -> float | None:
    return round(float(value), 1) if np.isfinite(value) else None


@dataclass(frozen=True)
class Covered:
    """Per community: whether each category, rule, group and the whole circle is covered."""

    categories: dict[str, BoolArray]
    green: BoolArray
    park: BoolArray
    groups: dict[str, BoolArray]
    complete: BoolArray
    missing: list[list[str]]


def covered(access: Access, catalogue: Catalogue) -> Covered:
    on = access.on_network
    cats = {k: on & (access.distance_m[k] <= c.threshold_m) for k, c in catalogue.categories.items()}
    rules = {r.key: on & (access.distance_m[r.key] <= r.within_m) for r in catalogue.green_rules}
    basic = [c.key for c in catalogue.categories.values() if c.basic]
    groups = {}
    for g in catalogue.groups:
        members = [c.key for c in catalogue.in_group(g)]
        needed = [k for k in members if catalogue.categories[k].basic]
        if needed:
            groups[g] = np.logical_and.reduce([cats[k] for k in needed])
        else:  # a group of quality items only: served by any of them
            groups[g] = np.logical_or.reduce([cats[k] for k in members]) if members else np.zeros_like(on)
    missing: list[list[str]] = []
    for i in range(len(on)):
        if not on[i]:
            missing.append([])
            continue
        gaps = [k for k in basic if not cats[k][i]]
        gaps += [
            name for name, ok in (("green_300", rules["green"][i]), ("park_500", rules["park"][i])) if not ok
        ]
        missing.append(gaps)
    complete = on & np.array([not m for m in missing], dtype=bool)
    return Covered(cats, rules["green"], rules["park"], groups, complete, missing)


def community_rows(
    communities: Communities,
    access: Access,
    facilities: FacilitySet,
    catalogue: Catalogue,
    scope: str,
    names: dict[str, str],
    only: list[int] | None = None,
    cov: Covered | None = None,
) -> list[CommunityReport]:
    """The rows of every community (or of the indices `only`); `cov`: their `covered`, if already known."""
    cov = covered(access, catalogue) if cov is None else cov
    eligible = in_scope(communities, scope)
    speed = access.speed_mps
    rows = []
    for i in range(len(communities)) if only is None else only:
        code = communities.code[i]
        cats = {}
        for k in catalogue.categories:
            d = float(access.distance_m[k][i])
            which = int(access.nearest[k][i])
            cats[k] = CategoryAccessRead(
                distance_m=_metres(d),
                minutes=round(d / speed / 60.0, 1) if np.isfinite(d) else None,
                facility_id=int(facilities.id[which]) if which >= 0 else None,
                covered=bool(cov.categories[k][i]),
                within={m: int(access.counts[k][m][i]) for m in access.circles_m},
            )
        township, county = communities.township_code[i], communities.county_code[i]
        rows.append(
            CommunityReport(
                code=code,
                name=communities.name[i],
                township_code=township,
                township=names.get(township or ""),
                county_code=county,
                county=names.get(county or ""),
                urban=bool(communities.urban[i]),
                in_scope=bool(eligible[i]),
                population=int(communities.population[i]),
                on_network=bool(access.on_network[i]),
                access_m=_metres(access.access_m[i]) if access.on_network[i] else None,
                green_300=bool(cov.green[i]),
                green_m=_metres(access.distance_m["green"][i]),
                park_500=bool(cov.park[i]),
                park_m=_metres(access.distance_m["park"][i]),
                missing=cov.missing[i],
                categories=cats,
            )
        )
    return rows


def _coverage(mask: BoolArray, members: IntArray, population: IntArray, analysed_population: int) -> Coverage:
    hit = members[mask[members]]
    people = int(population[hit].sum())
    return Coverage(
        communities=len(hit),
        population=people,
        rate=round(people / analysed_population, 6) if analysed_population else None,
    )


def area_report(
    code: str,
    name: str,
    level: str,
    members: IntArray,
    communities: Communities,
    access: Access,
    cov: Covered,
) -> AreaReport:
    """The figures of an area from its communities (`members`: indices, already in scope)."""
    population = communities.population
    analysed = members[access.on_network[members]]
    base = int(population[analysed].sum())
    return AreaReport(
        code=code,
        name=name,
        level=level,
        communities=len(members),
        analysed=len(analysed),
        population=int(population[members].sum()),
        population_analysed=base,
        categories={k: _coverage(m, analysed, population, base) for k, m in cov.categories.items()},
        green_300=_coverage(cov.green, analysed, population, base),
        park_500=_coverage(cov.park, analysed, population, base),
        complete=_coverage(cov.complete, analysed, population, base),
        groups={g: _coverage(m, analysed, population, base) for g, m in cov.groups.items()},
    )


def area_reports(
    communities: Communities,
    access: Access,
    catalogue: Catalogue,
    scope: str,
    city: tuple[str, str],
    names: dict[str, str],
    cov: Covered | None = None,
) -> tuple[AreaReport, list[AreaReport], list[AreaReport]]:
    """The city's, every county's and every township's figures (each from its communities in scope);
    `cov`: the communities' `covered`, if already known."""
    cov = covered(access, catalogue) if cov is None else cov
    eligible = np.flatnonzero(in_scope(communities, scope))
    city_report = area_report(city[0], city[1], "city", eligible, communities, access, cov)
    out: dict[str, list[AreaReport]] = {"county": [], "township": []}
    for level, codes in (("county", communities.county_code), ("township", communities.township_code)):
        of = np.array([c or "" for c in codes], dtype=object)
        for code in sorted({c for c in codes if c}):
            members = eligible[of[eligible] == code]
            out[level].append(
                area_report(code, names.get(code, code), level, members, communities, access, cov)
            )
    return city_report, out["county"], out["township"]
