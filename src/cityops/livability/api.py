"""JSON routes of the livability package: the walking networks, and the isochrone of a point (the area
reachable on foot within some minutes), for the map."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.livability import service
from cityops.livability.engine import DEFAULT_SPEED_MPS
from cityops.livability.schemas import NetworkRead

Viewer = Annotated[User, Depends(require_permission("livability.view"))]
NetworkName = Annotated[str, Query(min_length=1, max_length=service.MAX_NAME, description="A network's name")]
Minutes = Annotated[float, Query(gt=0, le=service.MAX_ISOCHRONE_MINUTES, description="Walking time")]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No network of that name"},
    422: {"description": "Invalid input, or a point far from every street; names the field"},
}

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/livability", tags=["livability"])


@router.get("/networks", response_model=list[NetworkRead])
def networks(session: SessionDep, _user: Viewer) -> list[NetworkRead]:
    """The stored walking networks (an imported OSM extract, or the demo's synthetic one)."""
    return service.list_networks(session)


@router.get("/isochrone", responses=ERRORS)
def isochrone(
    session: SessionDep,
    _user: Viewer,
    network: NetworkName,
    lon: Annotated[float, Query(ge=-180, le=180, description="WGS84 longitude")],
    lat: Annotated[float, Query(ge=-90, le=90, description="WGS84 latitude")],
    minutes: Minutes = 15.0,
    speed: Annotated[float, Query(ge=0.3, le=3.0, description="Walking speed, m/s")] = DEFAULT_SPEED_MPS,
) -> dict[str, Any]:
    """The area reachable on foot from a point: a GeoJSON Feature (WGS84 Polygon or MultiPolygon)."""
    return service.isochrone(session, name=network, lon=lon, lat=lat, minutes=minutes, speed_mps=speed)
