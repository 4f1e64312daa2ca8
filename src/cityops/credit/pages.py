"""Entity register pages: the list with filters, a credit-code check, the import of the register and
the Excel export (/credit/entities), an entity (/credit/entities/{id}), and the distribution of risk
classes by industry and area (/credit/classes, credit.inspect)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from cityops.core.auth.deps import CurrentUser
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError, Forbidden
from cityops.core.i18n import N_, gettext_for, locale_of
from cityops.core.templating import NavItem, register_nav, render
from cityops.credit import figures, industries, service
from cityops.credit.api import MAX_ID, EntityFilters, read_upload
from cityops.credit.schemas import CodeCheck, ImportResult
from cityops.places import service as places_service

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
register_nav(
    NavItem(
        "credit",
        N_("Entity register"),
        "/credit/entities",
        order=55,
        permission="credit.view",
        description=N_(
            "Business entities of the city by their unified social credit codes: "
            "enterprises, individual businesses, cooperatives and social organisations."
        ),
    )
)
LOCATED_LABELS = {
    "point": N_("From its coordinates"),
    "address": N_("From the divisions in its address"),
    "code": N_("From the registration authority in its code"),
}
REASON_LABELS = {
    "length": N_("Wrong length"),
    "character": N_("Character not allowed"),
    "authority": N_("Unknown registration authority"),
    "type": N_("Unknown entity type"),
    "division": N_("Not a division code"),
    "check_digit": N_("Wrong check character"),
}
PAGE = 50


def _check_view(user: User) -> None:
    if not has_permission(user, "credit.view"):
        raise Forbidden("your role may not see the entity register (needs permission 'credit.view')")


def _list_page(
    request: Request,
    session: Session,
    user: User,
    filters: service.Filters,
    *,
    offset: int = 0,
    check: CodeCheck | None = None,
    report: ImportResult | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    locale = locale_of(request)
    page = service.list_entities(
        session, viewer=user, filters=filters, limit=PAGE, offset=offset, locale=locale
    )
    query = {k: v for k, v in filters.as_dict().items() if v}
    return render(
        request,
        "credit/entities.html",
        {
            "page": page,
            "filters": filters,
            "offset": offset,
            "query": urlencode(query),
            "sections": industries.registry().sections.values(),
            "kind_labels": service.KIND_LABELS,
            "status_labels": service.STATUS_LABELS,
            "reason_labels": REASON_LABELS,
            "check": check,
            "report": report,
            "error": error,
            "may_manage": has_permission(user, "credit.manage"),
            "may_inspect": has_permission(user, "credit.inspect"),
        },
        status_code=status_code,
    )


@router.get("/credit/entities", response_class=HTMLResponse)
def entities(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    filters: EntityFilters,
    check: Annotated[str | None, Query(max_length=40)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> HTMLResponse:
    """Entities in scope with filters; a credit code checked (?check=); an Excel export of the list."""
    _check_view(user)
    return _list_page(
        request, session, user, filters, offset=offset, check=service.check_code(check) if check else None
    )


@router.post("/credit/entities/import", response_class=HTMLResponse, response_model=None)
def import_entities(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Import a register export from the list page; the report of refused rows is shown above the list."""
    _check_view(user)
    try:
        data, filename = read_upload(file)
        index = places_service.cache_for(request.app.state).index(session)
        report = service.import_entities(
            session, data=data, filename=filename, index=index, actor=user, request=request
        )
    except Forbidden:
        raise
    except CityopsError as exc:
        session.rollback()  # nothing of a refused file stays
        return _list_page(
            request, session, user, service.Filters(), error=exc.message, status_code=exc.status
        )
    return _list_page(request, session, user, service.Filters(), report=report)


@router.get("/credit/entities/{entity_id}", response_class=HTMLResponse)
def entity(
    request: Request, session: SessionDep, user: CurrentUser, entity_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> HTMLResponse:
    """An entity: its code and what the code says, registration details, place, supervising departments
    and legal representative (masked without pii.view)."""
    index = places_service.cache_for(request.app.state).index(session)
    found = service.get_entity(
        session, viewer=user, entity_id=entity_id, index=index, locale=locale_of(request), request=request
    )
    return render(
        request,
        "credit/entity.html",
        {
            "entity": found,
            "kind_labels": service.KIND_LABELS,
            "status_labels": service.STATUS_LABELS,
            "located_labels": LOCATED_LABELS,
        },
    )


@router.get("/credit/classes", response_class=HTMLResponse)
def classes(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    county: Annotated[str | None, Query(max_length=6)] = None,
    section: Annotated[str | None, Query(max_length=1)] = None,
) -> HTMLResponse:
    """Risk classes of the active entities in scope per industry section and per county (per township
    of a chosen county): stacked bar charts, the tables and their Excel exports. credit.inspect; audited."""
    if not has_permission(user, "credit.inspect"):
        raise Forbidden("risk classes are internal (needs permission 'credit.inspect')")
    locale = locale_of(request)
    county, section = county or None, section or None
    by_industry = figures.class_distribution(
        session, viewer=user, by="industry", county=county, section=section, locale=locale, request=request
    )
    by_area = figures.class_distribution(
        session, viewer=user, by="area", county=county, section=section, locale=locale, request=request
    )
    query = {k: v for k, v in {"county": county, "section": section}.items() if v}
    translate = gettext_for(locale).gettext
    charts = {
        "classes": list(figures.COLUMNS),
        "labels": {c: translate(label) for c, label in figures.COLUMN_LABELS.items()},
        "tables": {
            by: {
                "names": [r.name for r in t.rows],
                "counts": {c: [r.counts[c] for r in t.rows] for c in t.classes},
            }
            for by, t in (("industry", by_industry), ("area", by_area))
        },
    }
    return render(
        request,
        "credit/classes.html",
        {
            "tables": [("industry", by_industry), ("area", by_area)],
            "county": county,
            "county_name": by_area.county_name,
            "section": section,
            "counties": places_service.list_divisions(session, level="county", limit=1000).items,
            "sections": industries.registry().sections.values(),
            "column_labels": figures.COLUMN_LABELS,
            "headers": figures.HEADERS,
            "query": urlencode(query),
            "charts": charts,
        },
    )
