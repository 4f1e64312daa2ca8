"""The governance centre dashboard (/governance/centres): today's duty, the village's police officer,
legal adviser and mediation organisation, open cases per status, and the centres below."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from cityops.core.auth.deps import CurrentUser
from cityops.core.auth.roles import has_permission
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import Forbidden, ValidationFailed
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, register_nav, render
from cityops.governance.centres import service

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
register_nav(
    NavItem(
        "centres",
        N_("Governance centre"),
        "/governance/centres",
        order=39,
        permission="governance.read",
        description=N_(
            "Today's duty, the village's police officer, legal adviser and "
            "mediation organisation, and the centre's open cases."
        ),
    )
)
SHIFT_LABELS = {"day": N_("Day shift"), "night": N_("Night shift")}
ROLE_LABELS = {
    "police": N_("Police officer"),
    "legal": N_("Legal adviser"),
    "mediation": N_("Mediation organisation"),
}
LEVEL_LABELS = {
    "village": N_("Village / community"),
    "township": N_("Township / street"),
    "county": N_("County"),
    "city": N_("City"),
}


STATE_LABELS = {
    "reported": N_("Reported"),
    "accepted": N_("Accepted"),
    "dispatched": N_("Dispatched"),
    "in_progress": N_("In progress"),
    "resolved": N_("Resolved"),
    "verified": N_("Verified"),
    "returned": N_("Returned"),
    "escalated": N_("Escalated"),
    "delegated": N_("Delegated down"),
    "reopened": N_("Reopened"),
}


@router.get("/governance/centres", response_class=HTMLResponse, name="centres")
def dashboard(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    code: Annotated[str | None, Query(max_length=12, pattern=r"^[0-9]*$")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> HTMLResponse:
    """The centre of `code` (default: the signed-in user's own division) and the centres below it."""
    if not has_permission(user, "governance.read"):
        raise Forbidden("your role may not see the governance centres (needs permission 'governance.read')")
    code = code or (user.scope_code or "")[:12]
    if not code:
        raise ValidationFailed("give the division code of a centre", field="code")
    centre = service.get_centre(session, viewer=user, code=code, request=request)
    below = service.list_centres(session, viewer=user, limit=50, offset=offset, parent=centre.division_code)
    return render(
        request,
        "governance/centres/dashboard.html",
        {
            "centre": centre,
            "below": below,
            "shift_labels": SHIFT_LABELS,
            "role_labels": ROLE_LABELS,
            "level_labels": LEVEL_LABELS,
            "state_labels": STATE_LABELS,
            "offset": offset,
        },
    )
