"""Files attached to a case: photos, scans, documents.

The bytes are stored once under their SHA-256 (cityops.core.files), so the same photo attached twice
takes no more room; each attachment row keeps the hash, size, type and the name it was sent with.
Every upload writes an "attach" line on the case's timeline.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.cases import service
from cityops.cases.models import CaseAttachment
from cityops.core import files
from cityops.core.auth.models import User
from cityops.core.db import utcnow
from cityops.core.errors import NotFound

FIELD = "file"
MAX_NAME = 200


class AttachmentRead(BaseModel):
    id: int
    case_id: int
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_by_id: int | None
    uploaded_at: datetime
    url: str


def to_read(row: CaseAttachment) -> AttachmentRead:
    return AttachmentRead(
        id=row.id,
        case_id=row.case_id,
        filename=row.filename,
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256,
        uploaded_by_id=row.uploaded_by_id,
        uploaded_at=row.uploaded_at,
        url=f"/api/cases/{row.case_id}/attachments/{row.id}",
    )


def clean_filename(name: str | None) -> str:
    """The last path part, without control characters, at most MAX_NAME characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    return base[-MAX_NAME:] or "file"


def attach(
    session: Session,
    *,
    viewer: User,
    case_id: int,
    root: Path,
    data: bytes,
    media_type: str,
    filename: str | None,
    now: datetime | None = None,
) -> CaseAttachment:
    """Store a file on a case in the viewer's scope: 413 when too large, 415 when of a type not
    accepted (or not what it claims), both naming the field."""
    case = service.visible_case(session, viewer=viewer, case_id=case_id)
    stored = files.store(root, data, media_type=media_type, field=FIELD)
    now = now or utcnow()
    row = CaseAttachment(
        case_id=case.id,
        sha256=stored.sha256,
        size=stored.size,
        media_type=stored.media_type,
        filename=clean_filename(filename),
        uploaded_by_id=viewer.id,
        uploaded_at=now,
    )
    session.add(row)
    session.flush()
    service.record_line(
        session,
        case,
        action="attach",
        actor=viewer,
        comment=row.filename,
        now=now,
        data={"attachment_id": row.id, "sha256": row.sha256, "size": row.size},
    )
    return row


def list_attachments(session: Session, *, viewer: User, case_id: int) -> list[AttachmentRead]:
    service.visible_case(session, viewer=viewer, case_id=case_id)
    rows = session.scalars(
        select(CaseAttachment)
        .where(CaseAttachment.case_id == case_id)
        .order_by(CaseAttachment.uploaded_at, CaseAttachment.id)
    )
    return [to_read(r) for r in rows]


def attachment_file(
    session: Session, *, viewer: User, case_id: int, attachment_id: int, root: Path
) -> tuple[CaseAttachment, Path]:
    """An attachment of a case in the viewer's scope and its file on disk (404 otherwise)."""
    service.visible_case(session, viewer=viewer, case_id=case_id)
    row = session.get(CaseAttachment, attachment_id)
    if row is None or row.case_id != case_id:
        raise NotFound(f"attachment {attachment_id} not found")
    return row, files.open_path(root, row.sha256)
