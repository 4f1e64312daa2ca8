"""JSON routes of the monitoring stations: list and read them with the level their readings reach,
confirm what a station proposed, load a new stations file. Mounted before the warnings' routes, so that
/api/warnings/stations is not taken for a warning id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import ValidationFailed
from cityops.core.i18n import locale_of
from cityops.warning import monitor, service, stations
from cityops.warning.schemas import StationPage, StationRead

StationCode = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$", max_length=40)]
Viewer = Annotated[User, Depends(require_permission("warnings.view"))]
Issuer = Annotated[User, Depends(require_permission("warnings.issue"))]

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/warnings/stations", tags=["warnings"])


@router.get("", response_model=StationPage)
def list_stations(
    request: Request,
    session: SessionDep,
    user: Viewer,
    kind: Annotated[str | None, Query(pattern="^(rain|river|reservoir|soil|slope)?$")] = None,
) -> StationPage:
    """The monitoring stations with the level their newest readings reach and their warning."""
    return stations.list_stations(session, kind=kind or None, locale=locale_of(request))


@router.put(
    "",
    response_model=StationPage,
    responses={422: {"description": "The file is refused whole; the message names the line or the field"}},
)
def load_stations(
    request: Request,
    session: SessionDep,
    user: Issuer,
    body: Annotated[
        bytes, Body(media_type="application/yaml", description="A stations file (see data/stations.yaml)")
    ] = b"",
) -> StationPage:
    """Replace the stations with those of a YAML file: new ones added, known ones changed, others removed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed("the stations file must be UTF-8 text", field="text") from None
    stations.load_text(session, text=text)
    return stations.list_stations(session, locale=locale_of(request))


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such station"}}


@router.get("/{station_code}", response_model=StationRead, responses=NOT_FOUND)
def get_station(
    station_code: StationCode, request: Request, session: SessionDep, user: Viewer
) -> StationRead:
    """A station: its metrics and thresholds, the level reached, its warning, what awaits confirmation."""
    return stations.get_station(session, code=station_code, locale=locale_of(request))


@router.post(
    "/{station_code}/confirm",
    response_model=StationRead,
    responses={**NOT_FOUND, 409: {"description": "Nothing awaits confirmation"}},
)
def confirm(station_code: StationCode, request: Request, session: SessionDep, user: Issuer) -> StationRead:
    """Confirm the level the station's readings proposed: its pending warning goes out (a CAP Alert), or
    its warning in force is raised (a CAP Update)."""
    monitor.confirm(session, code=station_code, actor=user,
                    issuer=service.Issuer.from_settings(request.app.state.settings))
    return stations.get_station(session, code=station_code, locale=locale_of(request))
