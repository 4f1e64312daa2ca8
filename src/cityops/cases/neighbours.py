"""Cases near a boundary: the neighbouring villages and grids across it, with their governance
centres, so a case routed to the wrong side is re-routed in one click (the workflow's "reroute").

The neighbouring centres are shown even when they lie outside the viewer's scope: their name and
code only, the reference data a dispatcher needs to hand the case over (no people, no records).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.cases import routing, service
from cityops.cases.schemas import CaseRead, OrgUnitRef
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.roles import has_permission
from cityops.core.errors import Forbidden
from cityops.places import service as places_service

# How close to its grid's or village's boundary a case must lie to show its neighbours, in metres.
BOUNDARY_M = 300.0


def may_see(viewer: User) -> bool:
    """Staff who route or handle cases; a reporter following their own case has no use for it."""
    return has_permission(viewer, "cases.dispatch") or has_permission(viewer, "cases.handle")


class NeighbourUnit(BaseModel):
    level: Literal["village", "grid"]
    code: str
    name: str
    village_code: str
    distance_m: float
    centre: OrgUnitRef | None  # the village's governance centre
    # The viewer may re-route the case to this centre now (state, permission, another unit).
    can_reroute: bool


class NeighboursRead(BaseModel):
    case_id: int
    within_m: float
    grid_code: str | None
    village_code: str | None
    boundary_m: float | None  # from the case's point to the nearest edge of its grid or village
    units: list[NeighbourUnit]


def for_case(
    session: Session, *, viewer: User, case: CaseRead, within_m: float = BOUNDARY_M
) -> NeighboursRead:
    """The neighbours of a case the viewer has read (see `of_case`): other villages within the
    distance, and the other grids of the case's own village."""
    found = places_service.neighbours_near(session, lon=case.lon, lat=case.lat, within_m=within_m)
    own_village = found.village_code or case.village_code
    units = [u for u in found.units if u.level == "village" or u.village_code == own_village]
    codes = {routing.centre_code(u.village_code) for u in units}
    centres = (
        {u.code: u for u in session.scalars(select(OrgUnit).where(OrgUnit.code.in_(codes)))} if codes else {}
    )
    may_reroute = "reroute" in case.allowed_actions
    current = case.org_unit.id if case.org_unit else None
    rows = []
    for u in units:
        centre = centres.get(routing.centre_code(u.village_code))
        ref = OrgUnitRef(id=centre.id, code=centre.code, name=centre.name) if centre else None
        rows.append(
            NeighbourUnit(
                level="village" if u.level == "village" else "grid",
                code=u.code,
                name=u.name,
                village_code=u.village_code,
                distance_m=u.distance_m,
                centre=ref,
                can_reroute=may_reroute and ref is not None and ref.id != current,
            )
        )
    return NeighboursRead(
        case_id=case.id,
        within_m=within_m,
        grid_code=found.grid_code,
        village_code=found.village_code,
        boundary_m=found.boundary_m,
        units=rows,
    )


def of_case(session: Session, *, viewer: User, case_id: int, within_m: float = BOUNDARY_M) -> NeighboursRead:
    """The neighbours of a case in the viewer's scope (404 outside it; 403 for a reporter)."""
    case = service.to_read(
        session, service.visible_case(session, viewer=viewer, case_id=case_id), viewer=viewer
    )
    if not may_see(viewer):
        raise Forbidden("your role may not route cases (needs permission 'cases.dispatch' or 'cases.handle')")
    return for_case(session, viewer=viewer, case=case, within_m=within_m)
