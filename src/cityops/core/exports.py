"""Excel exports of large lists as background jobs, with progress.

A package registers an export kind: a params model (checked up front, so a bad filter is a 422
before any job exists) and a function `(session, viewer, params) -> (headers, total, rows)` whose
rows are produced lazily. A job row records who asked, what, and how far the worker has come; the
worker writes the workbook in its own thread (write-only openpyxl, via core.export) and commits
progress every PROGRESS_EVERY rows in short transactions of its own, so pollers see it move.

Restarts: a job is never resumed. While a process holds a job it refreshes the job's heartbeat every
HEARTBEAT_S; a queued or running job whose heartbeat is older than STALE_AFTER belongs to a process
that died, and is marked "failed: interrupted" the next time anyone reads it. This works with several
server processes, where a process starting up cannot tell its own dead jobs from a neighbour's live ones.

Kinds are found like the seed generators: KIND_MODULES names the modules that register them (core
imports no domain package directly).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import JSON, ForeignKey, Integer, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from cityops.core import files
from cityops.core.auth.models import User
from cityops.core.db import Base, Database, utcnow
from cityops.core.errors import CityopsError, NotFound, TooManyRequests, ValidationFailed
from cityops.core.export import XLSX_MEDIA_TYPE, workbook_bytes

log = logging.getLogger(__name__)

KIND_MODULES = ("cityops.cases.exports",)
STATUSES = ("queued", "running", "done", "failed")
ACTIVE = ("queued", "running")
PROGRESS_EVERY = 500
HEARTBEAT_S = 15.0
STALE_AFTER = timedelta(seconds=60)
KEEP_FOR = timedelta(hours=24)
MAX_ACTIVE_PER_USER = 3
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_ERROR = 500
INTERRUPTED = "interrupted: the server stopped while the export ran; start it again"


class Gone(CityopsError):
    status = 410
    code = "gone"


class ExportJob(Base):
    __tablename__ = "export_jobs"

    # A random token: the id is in URLs, and a guessable one would invite probing.
    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), index=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done_rows: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    file_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    file_size: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime] = mapped_column(index=True)


Rows = Iterable[Sequence[Any]]
Build = Callable[[Session, User, Any], tuple[Sequence[str], int, Rows]]


@dataclass(frozen=True)
class ExportKind:
    """`build` checks the params against the viewer (raising ValidationFailed with the field), counts
    and returns the rows lazily: it runs once in the request (nothing iterated) and once in the worker."""

    code: str
    filename: str  # may be Chinese; sent RFC 5987-encoded
    sheet_title: str
    params: type[BaseModel]
    build: Build


_KINDS: dict[str, ExportKind] = {}
_loaded = False


def register(kind: ExportKind) -> ExportKind:
    existing = _KINDS.get(kind.code)
    if existing is not None and existing != kind:
        raise ValueError(f"export kind {kind.code!r} is registered twice")
    _KINDS[kind.code] = kind
    return kind


def kinds() -> dict[str, ExportKind]:
    global _loaded
    if not _loaded:
        for name in KIND_MODULES:
            importlib.import_module(name)
        _loaded = True
    return dict(_KINDS)


def kind_of(code: str) -> ExportKind:
    known = kinds()
    if code not in known:
        raise ValidationFailed(
            f"unknown export kind {code!r}; known: {', '.join(sorted(known))}", field="kind"
        )
    return known[code]


def _clean_params(kind: ExportKind, params: dict[str, Any]) -> BaseModel:
    try:
        return kind.params.model_validate(params)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(["params", *(str(p) for p in first["loc"])])
        raise ValidationFailed(f"{field}: {first['msg']}", field=field) from exc


def _close(rows: Rows) -> None:
    close = getattr(rows, "close", None)
    if callable(close):
        close()


# --- reading and starting -------------------------------------------------------------------------


def percent(job: ExportJob) -> int:
    if job.status == "done":
        return 100
    if job.total <= 0:
        return 0
    return min(99, job.done_rows * 100 // job.total)  # the list may grow while it runs


def fail_interrupted(session: Session, *, now: datetime | None = None) -> int:
    """Mark the active jobs no live process holds (stale heartbeat) as failed; how many."""
    now = now or utcnow()
    result = session.execute(
        update(ExportJob)
        .where(ExportJob.status.in_(ACTIVE), ExportJob.heartbeat_at < now - STALE_AFTER)
        .values(status="failed", error=INTERRUPTED, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def get_job(session: Session, *, viewer: User, job_id: str, now: datetime | None = None) -> ExportJob:
    """The viewer's own job (404 for anyone else's, as for a job that does not exist)."""
    job = session.get(ExportJob, job_id) if len(job_id) <= 43 else None
    if job is None or job.user_id != viewer.id:
        raise NotFound("no such export")
    now = now or utcnow()
    if job.status in ACTIVE and job.heartbeat_at < now - STALE_AFTER and fail_interrupted(session, now=now):
        session.refresh(job)
    return job


def start(
    session: Session, *, viewer: User, kind: str, params: dict[str, Any], now: datetime | None = None
) -> ExportJob:
    """Check the kind and params (a bad filter fails here, before a job exists) and queue a job."""
    export_kind = kind_of(kind)
    clean = _clean_params(export_kind, params)
    try:
        _headers, total, rows = export_kind.build(session, viewer, clean)
    except ValidationFailed as exc:  # a filter the kind refused: name it as the client sent it
        raise ValidationFailed(exc.message, field=f"params.{exc.field}" if exc.field else "params") from exc
    _close(rows)
    now = now or utcnow()
    fail_interrupted(session, now=now)
    active = (
        session.scalar(
            select(func.count())
            .select_from(ExportJob)
            .where(ExportJob.user_id == viewer.id, ExportJob.status.in_(ACTIVE))
        )
        or 0
    )
    if active >= MAX_ACTIVE_PER_USER:
        raise TooManyRequests(f"you have {active} exports running; wait for one to finish")
    job = ExportJob(
        id=secrets.token_urlsafe(32),
        user_id=viewer.id,
        kind=export_kind.code,
        params=clean.model_dump(mode="json"),
        status="queued",
        total=total,
        done_rows=0,
        created_at=now,
        heartbeat_at=now,
        expires_at=now + KEEP_FOR,
    )
    session.add(job)
    session.flush()
    return job


def file_of(
    session: Session, *, viewer: User, job_id: str, root: Path, now: datetime | None = None
) -> tuple[Path, str]:
    """The finished workbook's path and download name."""
    job = get_job(session, viewer=viewer, job_id=job_id, now=now)
    if job.status != "done" or job.file_sha256 is None:
        raise NotFound(
            f"the export is {job.status}, there is no file yet"
            if job.status in ACTIVE
            else "the export failed; there is no file"
        )
    if job.expires_at <= (now or utcnow()):
        raise Gone("the export has expired; start it again")
    return files.open_path(root, job.file_sha256), kind_of(job.kind).filename


# --- the worker -----------------------------------------------------------------------------------


def _set(db: Database, job_id: str, **values: Any) -> None:
    # Its own short transaction (no after-commit hooks: nothing to publish).
    with db.sessions() as session:
        session.execute(
            update(ExportJob)
            .where(ExportJob.id == job_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        session.commit()


def purge_expired(db: Database, root: Path, *, now: datetime | None = None) -> int:
    """Delete expired jobs and the files no remaining job uses; how many jobs went."""
    now = now or utcnow()
    with db.sessions() as session:
        gone = list(session.scalars(select(ExportJob).where(ExportJob.expires_at <= now)))
        if not gone:
            return 0
        hashes = {j.file_sha256 for j in gone if j.file_sha256}
        for job in gone:
            session.delete(job)
        session.flush()
        kept = set(session.scalars(select(ExportJob.file_sha256).where(ExportJob.file_sha256.in_(hashes))))
        session.commit()
    for sha in hashes - kept:
        with contextlib.suppress(NotFound):  # a malformed hash: nothing to delete
            files.open_path(root, sha).unlink(missing_ok=True)
    return len(gone)


def run_job(
    db: Database,
    root: Path,
    job_id: str,
    *,
    timezone: str = "Asia/Shanghai",
    progress_every: int = PROGRESS_EVERY,
    on_progress: Callable[[str, int], None] | None = None,
) -> None:
    """Write one queued job's workbook. Any failure is recorded on the job; nothing is raised."""
    with db.sessions() as session:
        claimed = session.execute(
            update(ExportJob)
            .where(ExportJob.id == job_id, ExportJob.status == "queued")
            .values(status="running", heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.commit()
    if getattr(claimed, "rowcount", 0) != 1:
        return  # taken by another worker, or no longer queued
    done = 0
    try:
        with db.sessions() as session:
            job = session.get(ExportJob, job_id)
            viewer = session.get(User, job.user_id) if job else None
            if job is None or viewer is None:
                raise NotFound("the export's job or user is gone")
            kind = kind_of(job.kind)
            headers, total, rows = kind.build(session, viewer, _clean_params(kind, job.params))
            _set(db, job_id, total=total)

            broken: list[Exception] = []

            def counted() -> Iterator[Sequence[Any]]:
                nonlocal done
                try:
                    for row in rows:
                        yield row
                        done += 1
                        if done % progress_every == 0:
                            _set(db, job_id, done_rows=done)
                            if on_progress is not None:
                                on_progress(job_id, done)
                except Exception as exc:  # end the sheet cleanly first: an abandoned write-only
                    broken.append(exc)  # sheet cannot be cleaned up

            data = workbook_bytes(kind.sheet_title, headers, counted(), timezone=timezone)
            if broken:
                raise broken[0]
        stored = files.store(root, data, media_type=XLSX_MEDIA_TYPE, max_bytes=MAX_FILE_BYTES)
        _set(
            db,
            job_id,
            status="done",
            total=done,
            done_rows=done,
            file_sha256=stored.sha256,
            file_size=stored.size,
            finished_at=utcnow(),
        )
    except Exception as exc:  # recorded on the job, which is never left running
        log.exception("export %s failed", job_id)
        message = exc.message if isinstance(exc, CityopsError) else f"{type(exc).__name__}: {exc}"
        _set(db, job_id, status="failed", done_rows=done, error=message[:MAX_ERROR], finished_at=utcnow())


class ExportRunner:
    """Runs jobs in worker threads of this process and keeps their heartbeats fresh."""

    def __init__(
        self, db: Database, root: Path, *, timezone: str = "Asia/Shanghai", workers: int = 2
    ) -> None:
        self.db, self.root, self.timezone = db, root, timezone
        self.progress_every = PROGRESS_EVERY
        self.on_progress: Callable[[str, int], None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export")
        self._lock = threading.Lock()
        self._held: dict[str, Future[None]] = {}
        self._ticker: threading.Thread | None = None

    def submit(self, job_id: str) -> Future[None]:
        future = self._pool.submit(self._run, job_id)
        with self._lock:
            self._held[job_id] = future
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._beat, name="export-heartbeat", daemon=True)
                self._ticker.start()
        return future

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        with self._lock:
            future = self._held.get(job_id)
        if future is not None:
            future.result(timeout)

    def _run(self, job_id: str) -> None:
        try:
            purge_expired(self.db, self.root)
        except Exception:  # cleaning up is best effort; the export still runs
            log.exception("purging expired exports failed")
        run_job(
            self.db,
            self.root,
            job_id,
            timezone=self.timezone,
            progress_every=self.progress_every,
            on_progress=self.on_progress,
        )

    def _beat(self) -> None:
        stop = threading.Event()
        while True:
            with self._lock:
                held = [j for j, f in self._held.items() if not f.done()]
                self._held = {j: f for j, f in self._held.items() if not f.done()}
                if not held:
                    self._ticker = None
                    return
            try:
                with self.db.sessions() as session:
                    session.execute(
                        update(ExportJob)
                        .where(ExportJob.id.in_(held), ExportJob.status.in_(ACTIVE))
                        .values(heartbeat_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
                    session.commit()
            except Exception:  # the next beat tries again
                log.exception("export heartbeat failed")
            stop.wait(HEARTBEAT_S)


_runner_lock = threading.Lock()


def runner_for(state: Any) -> ExportRunner:
    """The ExportRunner on an app's state (created on first use)."""
    with _runner_lock:
        runner: ExportRunner | None = getattr(state, "export_runner", None)
        if runner is None:
            settings = state.settings
            runner = ExportRunner(
                state.db, Path(settings.attachments_dir) / "exports", timezone=settings.display_timezone
            )
            state.export_runner = runner
        return runner
