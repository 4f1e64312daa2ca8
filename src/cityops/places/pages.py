"""HTML pages: browse the division tree (/places, /places/{code}) and the statistics (/places/stats)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, register_nav, render
from cityops.places import service
from cityops.places.schemas import PlacesStats

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
register_nav(NavItem("places", N_("Places"), "/places", order=20, permission="places.read",
                     description=N_("Browse counties, townships, villages and grids with their figures.")))

Reader = Annotated[User, Depends(require_permission("places.read"))]
LEVEL_LABELS = {
    "city": N_("City"),
    "county": N_("County"),
    "township": N_("Township / street"),
    "village": N_("Village / community"),
    "grid": N_("Grid"),
}
CHART_WIDTH = 420  # px for the longest bar


@router.get("/places", response_class=HTMLResponse, name="places")
def places_index(
    request: Request, session: SessionDep, user: Reader, q: Annotated[str | None, Query(max_length=60)] = None
) -> HTMLResponse:
    root = service.root_code(session)
    context: dict[str, Any] = {"q": q or "", "hits": None, "detail": None, "rows": [], "levels": LEVEL_LABELS}
    if q and q.strip():
        context["hits"] = service.search(session, q=q, limit=50).items
    if root is not None:
        context["detail"] = service.get_division(session, code=root)
        context["rows"] = service.child_rows(session, code=root)
    return render(request, "places/index.html", context)


def bar_chart(stats: PlacesStats, metric: str) -> list[dict[str, Any]]:
    """Bars for an inline SVG chart: one per county unit, widths scaled to the largest value."""
    values = [(c.name, c.name_en, getattr(c, metric)) for c in stats.counties]
    top = max((v for _n, _e, v in values), default=0) or 1
    return [
        {"name": n, "name_en": e, "value": v, "width": round(CHART_WIDTH * v / top, 1)} for n, e, v in values
    ]


@router.get("/places/stats", response_class=HTMLResponse, name="places_stats")
def places_stats(request: Request, session: SessionDep, user: Reader) -> HTMLResponse:
    stats = service.stats(session)
    charts = [
        (N_("Villages / communities"), bar_chart(stats, "villages")),
        (N_("Grids"), bar_chart(stats, "grids")),
        (N_("Population (synthetic)"), bar_chart(stats, "population")),
    ]
    return render(
        request,
        "places/stats.html",
        {"stats": stats, "charts": charts, "levels": LEVEL_LABELS, "chart_width": CHART_WIDTH},
    )


@router.get("/places/{code}", response_class=HTMLResponse, name="place")
def place(code: str, request: Request, session: SessionDep, user: Reader) -> HTMLResponse:
    if len(code) == 15:
        grid = service.get_grid(session, code=code)
        village = service.get_division(session, code=grid.village_code)
        return render(request, "places/grid.html", {"grid": grid, "village": village, "levels": LEVEL_LABELS})
    detail = service.get_division(session, code=code)
    rows = service.child_rows(session, code=code)
    return render(request, "places/division.html", {"detail": detail, "rows": rows, "levels": LEVEL_LABELS})
