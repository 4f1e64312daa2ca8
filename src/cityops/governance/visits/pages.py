"""The grid worker's phone page (/m): report a problem, record a visit, patrol, my cases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from cityops.cases import service as cases_service
from cityops.cases.pages import LEVEL_LABELS, STATE_LABELS
from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import NotFound
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, register_nav, render
from cityops.governance.visits import service
from cityops.governance.visits.models import VISIT_KINDS
from cityops.places import service as places_service

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
register_nav(
    NavItem(
        "field",
        N_("Field work"),
        "/m",
        order=35,
        permission="visits.record",
        description=N_("The grid worker's phone page: report a problem, record a visit, patrol, my cases."),
    )
)

# 四大一送 (msgids unlike the case actions "Resolve" etc., which translate differently).
VISIT_KIND_LABELS = {
    "visit": N_("Household visit"),
    "publicise": N_("Publicity"),
    "check": N_("Safety check"),
    "resolve": N_("Dispute resolution"),
    "support": N_("Support for those in need"),
}
assert tuple(VISIT_KIND_LABELS) == VISIT_KINDS
Recorder = Annotated[User, Depends(require_permission("visits.record"))]


def _area(session: Session, code: str | None) -> dict[str, Any] | None:
    """Name and centre of the worker's area (a grid, or a division for centre staff)."""
    if not code:
        return None
    try:
        place = (
            places_service.get_grid(session, code=code)
            if len(code) == 15
            else places_service.get_division(session, code=code)
        )
    except NotFound:
        return None
    village = code[:12] if len(code) >= 12 else None
    return {
        "code": place.code,
        "name": place.name,
        "lon": place.centroid_lon,
        "lat": place.centroid_lat,
        "village": village,
    }


@router.get("/m", response_class=HTMLResponse, name="field")
def phone_page(request: Request, session: SessionDep, user: Recorder) -> HTMLResponse:
    running = service.running_patrol(session, worker=user)
    visits = service.list_visits(session, viewer=user, mine=True, limit=10)
    settings = request.app.state.settings
    return render(
        request,
        "governance/visits/phone.html",
        {
            "area": _area(session, user.scope_code),
            "issue_kinds": service.issue_kinds(),
            "visit_kinds": VISIT_KIND_LABELS,
            "patrol": service.patrol_read(session, running, with_track=False)
            if running is not None
            else None,
            "cases": cases_service.worker_cases(session, viewer=user, limit=50),
            "visits": visits,
            "state_labels": STATE_LABELS,
            "level_labels": LEVEL_LABELS,
            "tile_url": settings.tile_url,
            "max_photo_mb": service.MAX_PHOTO_BYTES // (1024 * 1024),
        },
    )
