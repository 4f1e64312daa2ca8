"""The shell's own pages: the home page and the map. Other packages register their pages the same way:
an APIRouter in their pages.py plus `register_nav(...)` at import time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from cityops.core.errors import Unauthorized
from cityops.core.i18n import N_
from cityops.core.templating import NavItem, register_nav, render

router = APIRouter(include_in_schema=False)

register_nav(NavItem("home", N_("Home"), "/", order=0))
register_nav(NavItem("map", N_("Map"), "/map", order=10))

# The places API the map reads (cityops.places.api); kept in one place so the page and tests agree.
PLACES_GEOJSON_URL = "/api/places/geojson"
PLACES_SEARCH_URL = "/api/places/search"
PLACES_PAGE_URL = "/places/{code}"
# Zoom levels from which the many small shapes are fetched for the visible area only.
VILLAGE_MIN_ZOOM = 11
GRID_MIN_ZOOM = 13


def page_user(request: Request) -> Any:
    """The signed-in user of a page; a visitor without a session is sent to the login page (the
    Unauthorized error becomes a redirect to /login?next=... in cityops.core.templating.render_error)."""
    user = getattr(request.state, "user", None)
    if user is None:
        raise Unauthorized("sign in to see this page")
    return user


PageUser = Annotated[Any, Depends(page_user)]


@router.get("/", response_class=HTMLResponse, name="home")
def home(request: Request, user: PageUser) -> HTMLResponse:
    return render(request, "home.html")


@router.get("/map", response_class=HTMLResponse, name="map")
def map_page(request: Request, user: PageUser) -> HTMLResponse:
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
