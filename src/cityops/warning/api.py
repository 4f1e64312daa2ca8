"""JSON routes of warnings: list and read them, their CAP messages, issue and change them by hand,
import other senders' CAP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from cityops.core.auth.deps import require_permission
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.export import XLSX_MEDIA_TYPE, xlsx_response
from cityops.core.i18n import locale_of
from cityops.warning import response, service
from cityops.warning.schemas import (
    EvacuationReport,
    EvacuationTotals,
    ImportResult,
    WarningCancel,
    WarningCreate,
    WarningExtend,
    WarningPage,
    WarningRead,
    WarningResponse,
    WarningUpdate,
)

MAX_ID = 2**31 - 1
CAP_MEDIA_TYPE = "application/cap+xml"
WarningId = Annotated[int, Path(ge=1, le=MAX_ID)]
Viewer = Annotated[User, Depends(require_permission("warnings.view"))]
Issuer = Annotated[User, Depends(require_permission("warnings.issue"))]
CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such warning"},
    409: {
        "description": "Not allowed in the warning's state (the allowed moves are listed), or an "
        "imported warning, which only its sender changes"
    },
    422: {"description": "A field is wrong; it is named"},
}

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/warnings", tags=["warnings"])


def _read(session: Session, request: Request, warning_id: int) -> WarningRead:
    return service.get_warning(session, warning_id=warning_id, locale=locale_of(request))


@router.get("", response_model=WarningPage)
def list_warnings(
    request: Request,
    session: SessionDep,
    user: Viewer,
    status: Annotated[
        str | None, Query(max_length=12, description="active, draft, pending, issued, cancelled or expired")
    ] = None,
    hazard: Annotated[str | None, Query(max_length=24)] = None,
    level: Annotated[str | None, Query(pattern="^(blue|yellow|orange|red)?$")] = None,
    source: Annotated[str | None, Query(pattern="^(manual|station|external)?$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> WarningPage:
    """Warnings, the most recently changed first."""
    return service.list_warnings(
        session,
        status=status or None,
        hazard=hazard or None,
        level=level or None,
        source=source or None,
        limit=limit,
        offset=offset,
        locale=locale_of(request),
    )


@router.post("", response_model=WarningRead, status_code=201, responses={422: CHANGE_ERRORS[422]})
def issue(body: WarningCreate, request: Request, session: SessionDep, user: Issuer) -> WarningRead:
    """Issue a warning by hand (its CAP Alert goes out), or save it as a draft."""
    warning = service.issue(
        session, data=body, actor=user, issuer=service.Issuer.from_settings(request.app.state.settings)
    )
    return _read(session, request, warning.id)


@router.post(
    "/import",
    response_model=ImportResult,
    responses={
        201: {"description": "A new warning"},
        422: {
            "description": "Not a valid CAP 1.2 warning; detail.errors names each problem's line and element"
        },
    },
)
def import_cap(
    request: Request,
    session: SessionDep,
    user: Issuer,
    response: Response,
    body: Annotated[
        bytes, Body(media_type="application/xml", description="A CAP 1.2 <alert> document")
    ] = b"",
) -> ImportResult:
    """Import another sender's CAP message: an Alert makes a warning, an Update or Cancel changes the one
    it references; the same message again changes nothing."""
    result = service.import_cap(
        session, data=body, actor=user, issuer=service.Issuer.from_settings(request.app.state.settings)
    )
    if result.outcome == "created":
        response.status_code = 201
    return result


@router.get("/{warning_id}", response_model=WarningRead, responses={404: CHANGE_ERRORS[404]})
def get_warning(warning_id: WarningId, request: Request, session: SessionDep, user: Viewer) -> WarningRead:
    """A warning with the list of its CAP messages."""
    return _read(session, request, warning_id)


@router.get(
    "/{warning_id}/cap",
    response_class=Response,
    responses={
        200: {"content": {CAP_MEDIA_TYPE: {}}, "description": "The newest CAP 1.2 message of the warning"},
        404: {"description": "No such warning, or a draft with no message yet"},
    },
)
def get_cap(warning_id: WarningId, session: SessionDep, user: Viewer) -> Response:
    """The warning's newest CAP 1.2 message (Alert, Update or Cancel), as it went out."""
    xml = service.latest_cap(session, warning_id=warning_id)
    return Response(xml.encode(), media_type=f"{CAP_MEDIA_TYPE}; charset=utf-8")


@router.post("/{warning_id}/issue", response_model=WarningRead, responses=CHANGE_ERRORS)
def release(warning_id: WarningId, request: Request, session: SessionDep, user: Issuer) -> WarningRead:
    """Issue a draft, or confirm a warning a station raised."""
    service.release(session, warning_id=warning_id, actor=user)
    return _read(session, request, warning_id)


@router.post("/{warning_id}/update", response_model=WarningRead, responses=CHANGE_ERRORS)
def update(
    warning_id: WarningId, body: WarningUpdate, request: Request, session: SessionDep, user: Issuer
) -> WarningRead:
    """Change the level, area, texts or expiry (a CAP Update referencing every earlier message)."""
    service.update(session, warning_id=warning_id, data=body, actor=user)
    return _read(session, request, warning_id)


@router.post("/{warning_id}/extend", response_model=WarningRead, responses=CHANGE_ERRORS)
def extend(
    warning_id: WarningId, body: WarningExtend, request: Request, session: SessionDep, user: Issuer
) -> WarningRead:
    """Keep the warning in force until a later time (a CAP Update)."""
    service.extend(session, warning_id=warning_id, expires=body.expires, note=body.note, actor=user)
    return _read(session, request, warning_id)


@router.post("/{warning_id}/cancel", response_model=WarningRead, responses=CHANGE_ERRORS)
def cancel(
    warning_id: WarningId, body: WarningCancel, request: Request, session: SessionDep, user: Issuer
) -> WarningRead:
    """End the warning now, with the reason (a CAP Cancel; a draft is discarded without one)."""
    service.cancel(session, warning_id=warning_id, reason=body.reason, actor=user)
    return _read(session, request, warning_id)


# --- the response: targets, notices, tasks, evacuations, history ----------------------------------

Responder = Annotated[User, Depends(require_permission("warnings.respond"))]


@router.get("/{warning_id}/response", response_model=WarningResponse, responses={404: CHANGE_ERRORS[404]})
def get_response(warning_id: WarningId, session: SessionDep, user: Viewer) -> WarningResponse:
    """What the warning set in motion: the grids and villages it covers, the people told of each CAP
    message, its response tasks by status and the evacuation figures (tasks and figures in your scope)."""
    return response.response_of(session, warning_id=warning_id, viewer=user)


@router.post(
    "/{warning_id}/evacuations",
    response_model=EvacuationTotals,
    status_code=201,
    responses={
        404: {"description": "No such warning, or a village outside your scope"},
        409: {"description": "The warning has not gone out yet"},
        422: CHANGE_ERRORS[422],
    },
)
def report_evacuation(
    warning_id: WarningId, body: EvacuationReport, session: SessionDep, user: Responder
) -> EvacuationTotals:
    """Report how many people of a village of the warning's area have been moved to safety so far (running
    totals: the village's latest report holds its figures); answers the warning's figures."""
    return response.report_evacuation(session, warning_id=warning_id, data=body, actor=user)


@router.get(
    "/{warning_id}/history.xlsx",
    response_class=Response,
    responses={
        200: {"content": {XLSX_MEDIA_TYPE: {}}, "description": "The warning's history as a spreadsheet"},
        404: CHANGE_ERRORS[404],
    },
)
def export_history(
    warning_id: WarningId, request: Request, session: SessionDep, user: Viewer, settings: SettingsDep
) -> Response:
    """The warning's lifecycle (each CAP message) and its response (notices, tasks, evacuations) in one
    timeline, for after-action review (tasks and evacuations in your scope)."""
    found = response.history(session, warning_id=warning_id, viewer=user, locale=locale_of(request))
    return xlsx_response(
        f"预警{warning_id}处置记录.xlsx",
        "history",
        response.HISTORY_HEADERS,
        response.history_rows(found),
        timezone=settings.display_timezone,
    )
