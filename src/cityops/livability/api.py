"""JSON routes of the livability package: the walking networks, the isochrone of a point (the area
reachable on foot within some minutes), facilities (list, import), the coverage report (JSON or Excel),
a community's access and suggested sites."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import ValidationFailed
from cityops.core.export import XLSX_MEDIA_TYPE, xlsx_download
from cityops.core.i18n import gettext_for, locale_of
from cityops.livability import service
from cityops.livability.engine import DEFAULT_SPEED_MPS
from cityops.livability.schemas import (
    CategoryRead,
    CommunityReport,
    FacilitiesImported,
    FacilityRead,
    LivabilityReport,
    NetworkRead,
    SiteSuggestion,
)

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


Manager = Annotated[User, Depends(require_permission("livability.manage"))]
OptionalNetwork = Annotated[
    str | None,
    Query(min_length=1, max_length=service.MAX_NAME, description="A network's name (default: the only one)"),
]
Speed = Annotated[float, Query(ge=0.3, le=3.0, description="Walking speed, m/s")]
Scope = Annotated[
    str, Query(pattern="^(urban|all)$", description="urban: communities (社区); all: villages too")
]


@router.get("/categories", response_model=list[CategoryRead])
def categories(_user: Viewer) -> list[CategoryRead]:
    """The facility categories with their walking thresholds and standards."""
    return service.categories()


@router.get("/facilities", response_model=list[FacilityRead], responses=ERRORS)
def facilities(
    session: SessionDep,
    _user: Viewer,
    category: Annotated[str | None, Query(max_length=40, description="Only this category")] = None,
) -> list[FacilityRead]:
    """The facilities (with the entrances of green spaces)."""
    return service.list_facilities(session, category=category)


@router.post("/facilities/import", response_model=FacilitiesImported, responses=ERRORS)
def import_facilities(
    session: SessionDep,
    _user: Manager,
    file: Annotated[UploadFile | None, File()] = None,
    network: OptionalNetwork = None,
    replace: bool = False,
) -> FacilitiesImported:
    """Import facilities from a CSV, Excel or GeoJSON file; a bad row refuses the file and the error lists
    every problem with its row (or feature) and field (detail.errors)."""
    if file is None or not file.filename:
        raise ValidationFailed("send a CSV, Excel or GeoJSON file in the form field 'file'", field="file")
    data = file.file.read(service.MAX_IMPORT_BYTES + 1)
    if len(data) > service.MAX_IMPORT_BYTES:
        raise ValidationFailed(
            f"the file is larger than {service.MAX_IMPORT_BYTES // 2**20} MB", field="file"
        )
    return service.import_facilities(
        session, data=data, filename=file.filename, network=network, replace=replace
    )


@router.get(
    "/report", response_model=LivabilityReport, responses={200: {"content": {XLSX_MEDIA_TYPE: {}}}, **ERRORS}
)
def report(
    session: SessionDep,
    request: Request,
    _user: Viewer,
    network: OptionalNetwork = None,
    speed: Speed = DEFAULT_SPEED_MPS,
    scope: Scope = "urban",
    communities: bool = False,
    format: Annotated[
        str, Query(pattern="^(json|xlsx)$", description="json, or xlsx for the Excel report")
    ] = "json",
) -> Any:
    """The city's, counties' and townships' coverage figures (summed from the communities), optionally
    with every community's row; format=xlsx downloads the Excel report with the gap list."""
    if format == "xlsx":
        body = service.report_xlsx(
            session,
            network=network,
            speed_mps=speed,
            scope=scope,
            gettext=gettext_for(locale_of(request)).gettext,
        )
        return xlsx_download("一刻钟生活圈.xlsx", body, fallback="livability.xlsx")
    return service.report(
        session, network=network, speed_mps=speed, scope=scope, with_communities=communities
    )


@router.get("/communities/{code}", response_model=CommunityReport, responses=ERRORS)
def community(
    session: SessionDep,
    _user: Viewer,
    code: Annotated[str, Path(max_length=12)],
    network: OptionalNetwork = None,
    speed: Speed = DEFAULT_SPEED_MPS,
) -> CommunityReport:
    """A community's walking access to every category and its missing items."""
    return service.community(session, code=code, network=network, speed_mps=speed)


@router.get("/sites", response_model=SiteSuggestion, responses=ERRORS)
def sites(
    session: SessionDep,
    _user: Viewer,
    category: Annotated[str, Query(min_length=1, max_length=40, description="A category key")],
    count: Annotated[int, Query(ge=1, le=50)] = 5,
    network: OptionalNetwork = None,
    speed: Speed = DEFAULT_SPEED_MPS,
    scope: Scope = "urban",
) -> SiteSuggestion:
    """Sites for new facilities of a category, ranked by the population each newly covers (greedy)."""
    return service.suggest_sites(
        session, category=category, count=count, network=network, speed_mps=speed, scope=scope
    )


@router.get("/layer", responses=ERRORS)
def layer(
    session: SessionDep,
    _user: Viewer,
    category: Annotated[
        str, Query(min_length=1, max_length=40, description="A category key, or green_300 / park_500")
    ],
    network: OptionalNetwork = None,
    speed: Speed = DEFAULT_SPEED_MPS,
) -> dict[str, Any]:
    """The map's layer of a category: every community's distance and coverage, and the facilities."""
    return service.map_layer(session, key=category, network=network, speed_mps=speed)
