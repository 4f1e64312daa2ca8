"""JSON routes of the entity register: check a credit code, list (and export) and read entities,
import the market-regulation register."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from fastapi.responses import Response

from cityops.core.auth.deps import CurrentUser, require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.errors import ValidationFailed
from cityops.core.export import XLSX_MEDIA_TYPE, xlsx_response
from cityops.core.i18n import gettext_for, locale_of
from cityops.credit import service
from cityops.credit.schemas import CodeCheck, EntityPage, EntityRead, ImportResult
from cityops.places import service as places_service

MAX_ID = 2**31 - 1
EntityId = Annotated[int, Path(ge=1, le=MAX_ID)]
Viewer = Annotated[User, Depends(require_permission("credit.view"))]
Manager = Annotated[User, Depends(require_permission("credit.manage"))]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such entity in your scope"},
    422: {"description": "Invalid input; names the field"},
}

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/credit", tags=["credit"])


Kind = Annotated[
    str | None, Query(max_length=12, description="enterprise, individual, cooperative, social_org or other")
]
Section = Annotated[str | None, Query(max_length=1, description="GB/T 4754-2017 section, A-T")]
Industry = Annotated[str | None, Query(max_length=2, description="GB/T 4754-2017 division, 01-97")]
Status = Annotated[str | None, Query(max_length=12, description="active, revoked, cancelled or moved_out")]
Division = Annotated[str | None, Query(max_length=15, description="A division or grid code")]
Text = Annotated[str | None, Query(max_length=60, description="Part of the name, or the whole credit code")]


def entity_filters(
    kind: Kind = None,
    section: Section = None,
    industry: Industry = None,
    status: Status = None,
    division: Division = None,
    q: Text = None,
) -> service.Filters:
    """The list's filters from the query string (empty values: no filter), for the API and the pages."""
    return service.Filters(
        kind=kind or None,
        section=section or None,
        industry=industry or None,
        status=status or None,
        division=division or None,
        q=q or None,
    )


EntityFilters = Annotated[service.Filters, Depends(entity_filters)]


def read_upload(file: UploadFile | None) -> tuple[bytes, str]:
    """The bytes and name of an uploaded register file; ValidationFailed (field "file") when none was
    sent or it is too large."""
    if file is None or not file.filename:
        raise ValidationFailed("send a CSV or Excel file in the form field 'file'", field="file")
    data = file.file.read(service.MAX_IMPORT_BYTES + 1)  # one byte more is enough to refuse it
    if len(data) > service.MAX_IMPORT_BYTES:
        raise ValidationFailed(
            f"the file is larger than {service.MAX_IMPORT_BYTES // 2**20} MB", field="file"
        )
    return data, file.filename


@router.get("/code-check", response_model=CodeCheck)
def check_code(
    user: CurrentUser,
    code: Annotated[str, Query(max_length=40, description="A unified social credit code")] = "",
) -> CodeCheck:
    """Whether a text is a valid unified social credit code (GB 32100-2015), and if not, exactly why:
    length, character, authority, type, division or check_digit."""
    return service.check_code(code)


@router.get(
    "/entities", response_model=EntityPage, responses={200: {"content": {XLSX_MEDIA_TYPE: {}}}, **ERRORS}
)
def list_entities(
    request: Request,
    session: SessionDep,
    user: Viewer,
    settings: SettingsDep,
    filters: EntityFilters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
) -> EntityPage | Response:
    """Entities in your scope, newest registrations first (legal representatives masked);
    `?format=xlsx` downloads the whole filtered list."""
    locale = locale_of(request)
    if format == "xlsx":
        name = gettext_for(locale).gettext("Entity register")
        return xlsx_response(
            f"{name}.xlsx",
            name,
            service.export_headers(locale),
            service.export_rows(session, viewer=user, filters=filters, locale=locale),
            timezone=settings.display_timezone,
        )
    return service.list_entities(
        session, viewer=user, filters=filters, limit=limit, offset=offset, locale=locale
    )


@router.post(
    "/entities/import",
    response_model=ImportResult,
    responses={422: {"description": "Not a readable CSV or Excel file; names the field"}},
)
def import_entities(
    request: Request,
    session: SessionDep,
    user: Manager,
    file: Annotated[
        UploadFile | None,
        File(description="CSV (UTF-8) or Excel (.xlsx) export of the market-regulation register"),
    ] = None,
) -> ImportResult:
    """Create or update entities from the register (idempotent on the credit code): each row is saved
    whole or refused with its line, field and reason."""
    data, filename = read_upload(file)
    index = places_service.cache_for(request.app.state).index(session)
    return service.import_entities(
        session, data=data, filename=filename, index=index, actor=user, request=request
    )


@router.get("/entities/{entity_id}", response_model=EntityRead, responses=ERRORS)
def get_entity(entity_id: EntityId, request: Request, session: SessionDep, user: Viewer) -> EntityRead:
    """An entity with its supervising departments; the legal representative unmasked only with
    pii.view (and that read audited)."""
    index = places_service.cache_for(request.app.state).index(session)
    return service.get_entity(
        session, viewer=user, entity_id=entity_id, index=index, locale=locale_of(request), request=request
    )
