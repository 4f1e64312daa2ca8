"""JSON routes of governance centres under /api/governance/centres. A centre is named by the code
of the division it serves (e.g. a village's 12-digit code)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.export import xlsx_response
from cityops.governance.centres import service
from cityops.governance.centres.schemas import (
    CentrePage,
    CentreRead,
    ContactRead,
    DutyRead,
    RosterSet,
    TrioSet,
)

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/governance/centres", tags=["governance"])

Reader = Annotated[User, Depends(require_permission("governance.read"))]
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Your role may not do this"},
    404: {"description": "No such centre in your scope"},
    422: {"description": "Invalid input; names the field"},
}


def visible_centre(
    code: Annotated[str, Path(pattern=r"^[0-9]{6,12}$")], session: SessionDep, user: Reader
) -> str:
    """The division code, once its centre is known to be in the user's scope: checked before the
    body is read, so a centre elsewhere answers 404 whatever the body says."""
    service.get_centre_unit(session, viewer=user, code=code)
    return code


CentreCode = Annotated[str, Depends(visible_centre)]


@router.get("", response_model=CentrePage, responses=ERRORS)
def list_centres(
    session: SessionDep,
    user: Reader,
    level: Annotated[str | None, Query(max_length=10)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> CentrePage:
    """Centres in your scope with today's duty and, for villages, the police officer, legal adviser
    and mediation organisation (phones masked)."""
    return service.list_centres(session, viewer=user, level=level or None, limit=limit, offset=offset)


@router.get(
    "/rosters.xlsx",
    responses={
        **ERRORS,
        200: {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
    },
)
def export_rosters(
    request: Request,
    session: SessionDep,
    user: Reader,
    settings: SettingsDep,
    start: Annotated[date | None, Query()] = None,
    end: Annotated[date | None, Query()] = None,
) -> Response:
    """The duty rosters of every centre in your scope (default: today and the next 6 days)."""
    rows = service.export_rows(session, viewer=user, start=start, end=end, request=request)
    return xlsx_response(
        "值班表.xlsx", "rosters", service.EXPORT_HEADERS, rows, timezone=settings.display_timezone
    )


@router.get("/{code}", response_model=CentreRead, responses=ERRORS)
def get_centre(code: CentreCode, request: Request, session: SessionDep, user: Reader) -> CentreRead:
    """A centre's dashboard: today's duty and the week's roster, the village trio, open cases per
    status and open disputes."""
    return service.get_centre(session, viewer=user, code=code, request=request)


@router.put("/{code}/roster", response_model=list[DutyRead], responses=ERRORS)
def set_roster(code: CentreCode, body: RosterSet, session: SessionDep, user: Reader) -> list[DutyRead]:
    """Set roster entries: each day named is replaced by the entries given for it."""
    rows = service.set_roster(session, viewer=user, code=code, data=body)
    return [
        DutyRead(duty_date=r.duty_date, shift=r.shift, person_name=r.person_name, phone=r.phone) for r in rows
    ]


@router.put("/{code}/trio", response_model=list[ContactRead], responses=ERRORS)
def set_trio(code: CentreCode, body: TrioSet, session: SessionDep, user: Reader) -> list[ContactRead]:
    """Set a village's police officer, legal adviser and mediation organisation."""
    rows = service.set_trio(session, viewer=user, code=code, data=body)
    return [ContactRead(role=r.role, name=r.name, phone=r.phone, organisation=r.organisation) for r in rows]
