"""The shell's own pages: the home page and the map. Other packages register their pages the same way:
an APIRouter in their pages.py plus `register_nav(...)` at import time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.routing import NoMatchFound

from cityops.core.auth.deps import CurrentUser, require_permission
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.deps import UnitOfWorkRoute
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, register_nav, render

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)

register_nav(NavItem("home", N_("Home"), "/", order=0))
register_nav(NavItem("map", N_("Map"), "/map", order=10, permission="places.read"))

# The places API the map reads (cityops.places.api); kept in one place so the page and tests agree.
PLACES_GEOJSON_URL = "/api/places/geojson"
PLACES_SEARCH_URL = "/api/places/search"
PLACES_PAGE_URL = "/places/{code}"
# Zoom levels from which the many small shapes are fetched for the visible area only.
VILLAGE_MIN_ZOOM = 11
GRID_MIN_ZOOM = 13


# Pages take the signed-in user from cityops.core.auth; without a session the Unauthorized error
# becomes a redirect to /login?next=... (cityops.core.templating.render_error).
MapUser = Annotated[User, Depends(require_permission("places.read"))]


@router.get("/", response_class=HTMLResponse, name="home")
def home(request: Request, user: CurrentUser) -> HTMLResponse:
    return render(request, "home.html", {"stats_url": _path_if_allowed(request, user, "places_stats")})


def _path_if_allowed(request: Request, user: User, route_name: str) -> str | None:
    """The path of a named page when it is installed and the user may read places."""
    if not has_permission(user, "places.read"):
        return None
    try:
        return str(request.app.url_path_for(route_name))
    except NoMatchFound:
        return None


@router.get("/map", response_class=HTMLResponse, name="map")
def map_page(request: Request, user: MapUser) -> HTMLResponse:
    settings = request.app.state.settings
    config = {
        "geojsonUrl": PLACES_GEOJSON_URL,
        "searchUrl": PLACES_SEARCH_URL,
        "placeUrl": PLACES_PAGE_URL,
        "tileUrl": settings.tile_url,
        "villageMinZoom": VILLAGE_MIN_ZOOM,
        "gridMinZoom": GRID_MIN_ZOOM,
    }
    return render(request, "map.html", {"map_config": config})
