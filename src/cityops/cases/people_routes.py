"""Routes around a case's people and files: attachments, watching, reporter feedback, possible
duplicates (JSON under /api/cases, and the case page's forms under /cases).

Included in app.py before cases/api.py's router, so /api/cases/similar is matched before
/api/cases/{case_id}.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from cityops.cases import attachments, duplicates, feedback, neighbours, notify, service, watchers
from cityops.cases.attachments import AttachmentRead
from cityops.cases.duplicates import SimilarCase
from cityops.cases.feedback import FeedbackCreate, FeedbackRead
from cityops.cases.models import CaseAttachment
from cityops.cases.neighbours import NeighboursRead
from cityops.cases.pages import _case_page
from cityops.cases.schemas import MAX_ID, ActionRequest
from cityops.core import files
from cityops.core.auth.deps import CurrentUser
from cityops.core.auth.models import User
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError, ValidationFailed

router = APIRouter(route_class=UnitOfWorkRoute)


def install(app: FastAPI) -> None:
    """The routes, and the notices about cases (outbox subscribers)."""
    app.include_router(router)
    notify.subscribe(app.state.bus)


CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]
AttachmentId = Annotated[int, Path(ge=1, le=MAX_ID)]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such case in your scope"},
    422: {"description": "Invalid input; names the field"},
}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {"description": "The file is too large (names the field)"},
    415: {"description": "The file's type is not accepted (names the field)"},
}
UploadField = Annotated[
    UploadFile | None, File(description="The file (photo, PDF, office document, video or voice note)")
]


# --- attachments --------------------------------------------------------------------------------


def _upload(
    session: SessionDep, user: User, settings: SettingsDep, case_id: int, file: UploadFile | None
) -> CaseAttachment:
    # The scope first: a case outside it answers 404 whatever was sent.
    service.visible_case(session, viewer=user, case_id=case_id)
    if file is None:
        raise ValidationFailed("send the file in the form field 'file'", field=attachments.FIELD)
    # One byte more than allowed is enough to refuse a large file without reading all of it.
    data = file.file.read(files.MAX_BYTES + 1)
    return attachments.attach(
        session,
        viewer=user,
        case_id=case_id,
        root=settings.attachments_dir,
        data=data,
        media_type=file.content_type or "",
        filename=file.filename,
    )


@router.post(
    "/api/cases/{case_id}/attachments",
    response_model=AttachmentRead,
    status_code=201,
    responses=UPLOAD_ERRORS,
    tags=["cases"],
)
def upload_attachment(
    case_id: CaseId, session: SessionDep, user: CurrentUser, settings: SettingsDep, file: UploadField = None
) -> AttachmentRead:
    """Attach a file (multipart form field `file`) to a case in your scope; the same file sent twice is
    stored once. Writes an "attach" line on the timeline."""
    return attachments.to_read(_upload(session, user, settings, case_id, file))


@router.get(
    "/api/cases/{case_id}/attachments", response_model=list[AttachmentRead], responses=ERRORS, tags=["cases"]
)
def list_attachments(case_id: CaseId, session: SessionDep, user: CurrentUser) -> list[AttachmentRead]:
    return attachments.list_attachments(session, viewer=user, case_id=case_id)


@router.get(
    "/api/cases/{case_id}/attachments/{attachment_id}",
    response_class=FileResponse,
    responses=ERRORS,
    tags=["cases"],
)
def download_attachment(
    case_id: CaseId,
    attachment_id: AttachmentId,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
) -> FileResponse:
    """The file, under the name it was sent with."""
    row, path = attachments.attachment_file(
        session, viewer=user, case_id=case_id, attachment_id=attachment_id, root=settings.attachments_dir
    )
    return FileResponse(
        path,
        media_type=row.media_type,
        filename=row.filename,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private"},
    )


@router.post("/cases/{case_id}/attachments", response_class=HTMLResponse, include_in_schema=False)
def upload_form(
    case_id: CaseId,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    file: UploadField = None,
) -> Response:
    """The case page's upload form; a refused file shows the page again with the reason."""
    try:
        _upload(session, user, settings, case_id, file)
    except CityopsError as exc:
        if exc.status in (401, 404):
            raise
        session.rollback()
        return _case_page(request, session, user, case_id, error=exc.message, status_code=exc.status)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


# --- reporter feedback --------------------------------------------------------------------------

FEEDBACK_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"description": "Only the reporter or a centre operator (call-back) may rate"},
    409: {"description": "The case is not closed, or this closing is already rated"},
}


@router.post(
    "/api/cases/{case_id}/feedback",
    response_model=FeedbackRead,
    status_code=201,
    responses=FEEDBACK_ERRORS,
    tags=["cases"],
)
def give_feedback(
    case_id: CaseId, body: FeedbackCreate, session: SessionDep, user: CurrentUser
) -> FeedbackRead:
    """Rate a closed case (1-5), once per closing: by its reporter, or by a centre operator recording
    a call-back. A rating of 2 or less reopens the case with a fresh deadline."""
    return feedback.to_read(feedback.give(session, viewer=user, case_id=case_id, body=body))


@router.get(
    "/api/cases/{case_id}/feedback", response_model=list[FeedbackRead], responses=ERRORS, tags=["cases"]
)
def list_feedback(case_id: CaseId, session: SessionDep, user: CurrentUser) -> list[FeedbackRead]:
    return feedback.of_case(session, viewer=user, case_id=case_id)


@router.post("/cases/{case_id}/feedback", response_class=HTMLResponse, include_in_schema=False)
def feedback_form(
    case_id: CaseId,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    rating: Annotated[int | None, Form(ge=1, le=5)] = None,
    comment: Annotated[str | None, Form(max_length=1000)] = None,
) -> Response:
    try:
        feedback.give(
            session, viewer=user, case_id=case_id, body=FeedbackCreate(rating=rating, comment=comment)
        )
    except CityopsError as exc:
        if exc.status in (401, 404):
            raise
        session.rollback()
        return _case_page(request, session, user, case_id, error=exc.message, status_code=exc.status)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


# --- possible duplicates ------------------------------------------------------------------------


@router.get(
    "/api/cases/similar",
    response_model=list[SimilarCase],
    tags=["cases"],
    responses={422: {"description": "Invalid input; names the field"}},
)
def similar_reports(
    session: SessionDep,
    user: CurrentUser,
    type_code: Annotated[str, Query(min_length=1, max_length=40)],
    category: Annotated[str, Query(min_length=1, max_length=40)],
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    title: Annotated[str, Query(max_length=200)] = "",
    description: Annotated[str, Query(max_length=5000)] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[SimilarCase]:
    """Open cases in your scope that may report the same problem (same type and category, within
    300 m and 7 days, similar text), best first: for the intake form, before submitting."""
    return duplicates.candidates(
        session,
        viewer=user,
        type_code=type_code,
        category=category,
        lon=lon,
        lat=lat,
        title=title,
        description=description,
        limit=limit,
    )


@router.get(
    "/api/cases/{case_id}/similar", response_model=list[SimilarCase], responses=ERRORS, tags=["cases"]
)
def similar_to_case(
    case_id: CaseId, session: SessionDep, user: CurrentUser, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> list[SimilarCase]:
    """Possible duplicates of a case, best first; merge one with the workflow's "merge" action."""
    return duplicates.similar_to_case(session, viewer=user, case_id=case_id, limit=limit)


@router.post("/cases/{case_id}/merge", response_class=HTMLResponse, include_in_schema=False)
def merge_form(
    case_id: CaseId,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    version: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    merged_into: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    comment: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """The duplicates panel's merge button: this case is merged into the chosen one."""
    try:
        body = ActionRequest(version=version, merged_into=merged_into, comment=comment or None)
        service.act(session, actor=user, case_id=case_id, action="merge", body=body)
    except CityopsError as exc:
        if exc.status in (401, 404):
            raise
        session.rollback()
        return _case_page(request, session, user, case_id, error=exc.message, status_code=exc.status)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


# --- neighbours across a boundary ---------------------------------------------------------------


@router.get(
    "/api/cases/{case_id}/neighbours",
    response_model=NeighboursRead,
    responses={**ERRORS, 403: {"description": "Only staff who dispatch or handle cases"}},
    tags=["cases"],
)
def case_neighbours(
    case_id: CaseId,
    session: SessionDep,
    user: CurrentUser,
    within_m: Annotated[float, Query(gt=0, le=5000, allow_inf_nan=False)] = neighbours.BOUNDARY_M,
) -> NeighboursRead:
    """When the case lies within `within_m` metres (default 300) of its grid's or village's boundary:
    the other villages and the other grids of its village within that distance, nearest first, with
    their governance centre and whether you may re-route the case there (the "reroute" action).
    Distances are true metres from the case's point."""
    return neighbours.of_case(session, viewer=user, case_id=case_id, within_m=within_m)


# --- watching -----------------------------------------------------------------------------------


class WatchRead(BaseModel):
    case_id: int
    watching: bool


@router.post("/api/cases/{case_id}/watch", response_model=WatchRead, responses=ERRORS, tags=["cases"])
def watch(case_id: CaseId, session: SessionDep, user: CurrentUser) -> WatchRead:
    """Be notified whenever the case moves (watching twice is harmless)."""
    watchers.watch(session, viewer=user, case_id=case_id)
    return WatchRead(case_id=case_id, watching=True)


@router.delete("/api/cases/{case_id}/watch", response_model=WatchRead, responses=ERRORS, tags=["cases"])
def unwatch(case_id: CaseId, session: SessionDep, user: CurrentUser) -> WatchRead:
    watchers.unwatch(session, viewer=user, case_id=case_id)
    return WatchRead(case_id=case_id, watching=False)


@router.post("/cases/{case_id}/watch", include_in_schema=False)
def watch_form(
    case_id: CaseId, session: SessionDep, user: CurrentUser, watching: Annotated[bool, Form()] = True
) -> Response:
    """The case page's watch / stop watching button."""
    if watching:
        watchers.watch(session, viewer=user, case_id=case_id)
    else:
        watchers.unwatch(session, viewer=user, case_id=case_id)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
