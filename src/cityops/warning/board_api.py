"""JSON routes of the command board: the board's data (polled by its page), drones and their patrol
routes, the satellite scene catalogue and cases opened from its change areas. Mounted before the
warnings' routes, so that /api/warnings/board is not taken for a warning id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from sqlalchemy.orm import Session

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.i18n import locale_of
from cityops.places import service as places_service
from cityops.warning import board, drones, satellite

MAX_ID = 2**31 - 1
Viewer = Annotated[User, Depends(require_permission("warnings.view"))]
Issuer = Annotated[User, Depends(require_permission("warnings.issue"))]

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/warnings", tags=["warning board"])


@router.get("/board", response_model=board.Board)
def get_board(
    request: Request,
    session: SessionDep,
    user: Viewer,
    camera_m: Annotated[int, Query(ge=1, le=board.MAX_CAMERA_M, description="Cameras within this many "
                                   "metres of a warning area")] = board.DEFAULT_CAMERA_M,
    track_minutes: Annotated[int, Query(ge=1, le=1440)] = drones.TRACK_MINUTES,
) -> board.Board:
    """Everything on the command board: stations and their levels, warning areas, response tasks by
    status, cameras near the areas, drones with their tracks and routes, satellite scenes."""
    return board.board(session, viewer=user, locale=locale_of(request), camera_m=camera_m,
                       track_minutes=track_minutes)


@router.get("/drones", response_model=list[drones.DroneRead])
def list_drones(session: SessionDep, user: Viewer,
                track_minutes: Annotated[int, Query(ge=1, le=1440)] = drones.TRACK_MINUTES
                ) -> list[drones.DroneRead]:
    """The drones in your scope with their latest reported position and recent track."""
    return drones.drones(session, viewer=user, track_minutes=track_minutes)


@router.get("/routes", response_model=list[drones.RouteRead])
def list_routes(session: SessionDep, user: Viewer) -> list[drones.RouteRead]:
    """The drones' patrol routes."""
    return drones.list_routes(session)


@router.post("/routes", response_model=drones.RouteRead, status_code=201,
             responses={409: {"description": "A route of that name exists"},
                        422: {"description": "A field is wrong (a point outside the city...); it is named"}})
def create_route(body: drones.RouteCreate, session: SessionDep, user: Issuer) -> drones.RouteRead:
    """Store a patrol route (a GeoJSON LineString of at least 2 points inside the city) for a drone."""
    return drones.create_route(session, data=body, actor=user)


@router.get("/scenes", response_model=list[satellite.SceneRead])
def list_scenes(
    request: Request,
    session: SessionDep,
    user: Viewer,
    sensor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[satellite.SceneRead]:
    """The satellite scenes, newest first, with their flagged change areas."""
    return satellite.list_scenes(session, viewer=user, sensor=sensor or None, limit=limit,
                                 locale=locale_of(request))


@router.post("/scenes", response_model=satellite.SceneImport, status_code=201,
             responses={422: {"description": "Refused whole; detail.errors names each feature's index "
                                             "and what is wrong"}})
def import_scenes(
    session: SessionDep,
    user: Issuer,
    body: Annotated[list[Any] | dict[str, Any], Body(
        description="A JSON list of scenes or a GeoJSON FeatureCollection")],
) -> satellite.SceneImport:
    """Register satellite scenes with their change areas (scenes already registered are left as they are)."""
    return satellite.import_scenes(session, data=body, actor=user)


def open_case(session: Session, request: Request, user: User, change_id: int) -> satellite.ChangeAreaRead:
    index = places_service.cache_for(request.app.state).index(session)
    return satellite.open_case(session, change_id=change_id, actor=user, index=index)


@router.post("/scenes/changes/{change_id}/case", response_model=satellite.ChangeAreaRead, status_code=201,
             responses={403: {"description": "Needs cases.dispatch, and the area in your scope"},
                        404: {"description": "No such change area"},
                        409: {"description": "The change area has a case already"}})
def open_change_case(
    change_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request, session: SessionDep, user: Viewer
) -> satellite.ChangeAreaRead:
    """Open a case from a change area, located at its representative point and routed to its grid; once."""
    return open_case(session, request, user, change_id)
