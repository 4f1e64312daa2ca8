"""JSON routes of the background Excel exports (cityops.core.exports) under /api/exports.

POST starts a job for any registered list (202; bad filters are a 422 before a job exists), GET polls
its progress, GET .../file downloads the workbook. Jobs are private to the user who started them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Path, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from cityops.core import exports
from cityops.core.auth.deps import CurrentUser
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.export import XLSX_MEDIA_TYPE

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/api/exports", tags=["exports"])

JobId = Annotated[str, Path(min_length=20, max_length=43, pattern=r"^[A-Za-z0-9_-]+$")]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such export of yours"},
    422: {"description": "Invalid input; names the field"},
}


class ExportRequest(BaseModel):
    kind: str = Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$", examples=["cases"])
    # The list's filters, as in its query string; checked by the kind's own model.
    params: dict[str, Any] = Field(default_factory=dict, max_length=20)


class ExportJobRead(BaseModel):
    id: str
    kind: str
    status: str = Field(description="queued, running, done or failed")
    total: int
    done_rows: int
    percent: int
    error: str | None
    file_url: str | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime


def _read(job: exports.ExportJob) -> ExportJobRead:
    return ExportJobRead(
        id=job.id,
        kind=job.kind,
        status=job.status,
        total=job.total,
        done_rows=job.done_rows,
        percent=exports.percent(job),
        error=job.error,
        file_url=f"/api/exports/{job.id}/file" if job.status == "done" else None,
        created_at=job.created_at,
        finished_at=job.finished_at,
        expires_at=job.expires_at,
    )


@router.post("", response_model=ExportJobRead, status_code=202, responses=ERRORS)
def start_export(
    body: ExportRequest, request: Request, background: BackgroundTasks, session: SessionDep, user: CurrentUser
) -> ExportJobRead:
    """Start exporting a filtered list (e.g. kind "cases" with the filters of GET /api/cases)."""
    job = exports.start(session, viewer=user, kind=body.kind, params=body.params)
    # After the response, so after the commit: the worker must see the job.
    background.add_task(exports.runner_for(request.app.state).submit, job.id)
    return _read(job)


@router.get("/{job_id}", response_model=ExportJobRead, responses=ERRORS)
def export_status(job_id: JobId, session: SessionDep, user: CurrentUser) -> ExportJobRead:
    return _read(exports.get_job(session, viewer=user, job_id=job_id))


@router.get(
    "/{job_id}/file",
    response_class=FileResponse,
    responses={**ERRORS, 410: {"description": "Expired"}, 200: {"content": {XLSX_MEDIA_TYPE: {}}}},
)
def export_file(job_id: JobId, request: Request, session: SessionDep, user: CurrentUser) -> FileResponse:
    root = exports.runner_for(request.app.state).root
    path, filename = exports.file_of(session, viewer=user, job_id=job_id, root=root)
    disposition = f"attachment; filename=\"export.xlsx\"; filename*=UTF-8''{quote(filename)}"
    return FileResponse(path, media_type=XLSX_MEDIA_TYPE, headers={"Content-Disposition": disposition})
