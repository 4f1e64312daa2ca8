"""JSON routes under /api/places. Divisions and grids are reference data: every signed-in staff user
(permission places.read) may read all of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.places import service
from cityops.places.schemas import (
    BulkLookupRequest,
    BulkLookupResult,
    DivisionDetail,
    DivisionPage,
    GridRead,
    LookupResult,
    PlacesStats,
    SearchResult,
)

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/places", tags=["places"])

PlacesReader = Annotated[User, Depends(require_permission("places.read"))]


def get_places_cache(request: Request) -> service.PlacesCache:
    return service.cache_for(request.app.state)


CacheDep = Annotated[service.PlacesCache, Depends(get_places_cache)]


@router.get("/stats", response_model=PlacesStats)
def stats(session: SessionDep, user: PlacesReader) -> PlacesStats:
    """Counts per level and per county unit, with population and area."""
    return service.stats(session)


@router.get("/divisions", response_model=DivisionPage)
def list_divisions(
    session: SessionDep,
    user: PlacesReader,
    level: Annotated[str | None, Query(description="city, county, township or village")] = None,
    parent: Annotated[str | None, Query(description="only the children of this code")] = None,
    q: Annotated[str | None, Query(max_length=60, description="code prefix, Chinese name or pinyin")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> DivisionPage:
    return service.list_divisions(session, level=level, parent_code=parent, q=q, limit=limit, offset=offset)


@router.get("/divisions/{code}", response_model=DivisionDetail)
def get_division(code: str, session: SessionDep, user: PlacesReader) -> DivisionDetail:
    """A division with its ancestors, children (grids for a village) and counts below it."""
    return service.get_division(session, code=code)


@router.get("/grids/{code}", response_model=GridRead)
def get_grid(code: str, session: SessionDep, user: PlacesReader) -> GridRead:
    return service.get_grid(session, code=code)


@router.get("/search", response_model=SearchResult)
def search(
    session: SessionDep,
    user: PlacesReader,
    q: Annotated[str, Query(max_length=60)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchResult:
    """Divisions and grids by code prefix, Chinese name or pinyin."""
    return service.search(session, q=q, limit=limit)


@router.get("/lookup", response_model=LookupResult)
def lookup(
    session: SessionDep,
    cache: CacheDep,
    user: PlacesReader,
    lon: Annotated[float, Query(description="WGS84 longitude")],
    lat: Annotated[float, Query(description="WGS84 latitude")],
) -> LookupResult:
    """Grid, village, township and county of one WGS84 point (404 outside the city)."""
    return service.lookup_point(cache.index(session), lon=lon, lat=lat)


@router.post("/lookup", response_model=BulkLookupResult)
def lookup_many(
    body: BulkLookupRequest, session: SessionDep, cache: CacheDep, user: PlacesReader
) -> BulkLookupResult:
    """Up to 100,000 points as two arrays; answers are columns, null where a point is outside."""
    return service.lookup_points(cache.index(session), lon=body.lon, lat=body.lat)


@router.get("/geojson")
def geojson(
    session: SessionDep,
    cache: CacheDep,
    user: PlacesReader,
    level: Annotated[str, Query(description="city, county, township, village or grid")],
    parent: Annotated[str | None, Query(description="only descendants of this division")] = None,
    code: Annotated[str | None, Query(description="only this code")] = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat")] = None,
) -> Response:
    """A level as a GeoJSON FeatureCollection (WGS84, simplified for the map); properties: code, name,
    name_en, level, parent_code, synthetic."""
    body = cache.layer(session, level=level, parent_code=parent, code=code, bbox=service.parse_bbox(bbox))
    return Response(body, media_type="application/geo+json", headers={"Cache-Control": "private, max-age=60"})
