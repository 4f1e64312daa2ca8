"""Where a case goes: location -> grid -> the governance centre of the case's level, unless its
category is owned by a department, which then handles it.

Division codes are hierarchical (NBS), so the township, county and city of a village are prefixes of
its code; escalation and delegation need no lookup."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.cases.types import CaseType
from cityops.core.auth.models import OrgUnit
from cityops.core.errors import NotFound, ValidationFailed
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex


@dataclass(frozen=True)
class Location:
    lon: float
    lat: float
    grid_code: str | None
    village_code: str

    @property
    def division_code(self) -> str:
        return self.grid_code or self.village_code


@dataclass(frozen=True)
class Route:
    org_unit_id: int | None
    org_unit_code: str
    reason: str


def locate(index: PlaceIndex, *, lon: float, lat: float) -> Location:
    """The grid and village of a point; 422 naming the field for a bad or outside point."""
    try:
        hit = places_service.lookup_point(index, lon=lon, lat=lat)
    except NotFound as exc:
        raise ValidationFailed(exc.message, field="lon") from None
    if hit.village is None:
        raise ValidationFailed(f"point ({lon}, {lat}) lies in no village", field="lon")
    return Location(lon=hit.lon, lat=hit.lat, grid_code=hit.grid.code if hit.grid else None,
                    village_code=hit.village.code)


def division_at(village_code: str, level: str) -> str:
    """The division of `level` containing the village (its code prefix padded to a division code)."""
    if level == "village":
        return village_code
    if level == "township":
        return village_code[:9]
    if level == "county":
        return village_code[:6]
    return village_code[:4] + "00"


def centre_code(division_code: str) -> str:
    return f"centre-{division_code}"


def department_code(slug: str) -> str:
    return f"dept-{slug}"


UNIT_CACHE_KEY = "cases.org_units"


def org_unit_id(session: Session, code: str) -> int | None:
    """The id of the org unit with this code, remembered for the session (intake asks per case). The
    unit itself is kept too, so answering with the case finds it in the session without a query."""
    cache: dict[str, OrgUnit | None] = session.info.setdefault(UNIT_CACHE_KEY, {})
    if code not in cache:
        cache[code] = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
    unit = cache[code]
    return unit.id if unit is not None else None


def share_unit_cache(session: Session, cache: dict[str, OrgUnit | None]) -> None:
    """Remember the units looked up in `cache` for this session: a generator writing in many
    sessions, while no unit changes, then looks each unit up once."""
    session.info[UNIT_CACHE_KEY] = cache


def route(session: Session, *, case_type: CaseType, category: str, village_code: str, level: str) -> Route:
    """The handling unit for a case of this category at this level.

    A category owned by a department goes to that department; the others go to the governance centre
    of the level's division. A unit missing from this installation falls back to the centre."""
    owner = case_type.category(category).department
    if owner is not None:
        code = department_code(owner)
        found = org_unit_id(session, code)
        if found is not None:
            return Route(found, code, f"category {category!r} is handled by {code}")
    code = centre_code(division_at(village_code, level))
    return Route(org_unit_id(session, code), code, f"governance centre of the {level}")


def unit_by_code(session: Session, code: str, *, field: str = "org_unit_code") -> OrgUnit:
    unit = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
    if unit is None:
        raise ValidationFailed(f"no org unit with code {code!r}", field=field)
    return unit
