"""Application factory: routers, error handlers, middleware."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityops.config import Settings, get_settings
from cityops.core.db import Database
from cityops.core.deps import UnitOfWorkRoute
from cityops.core.errors import CityopsError
from cityops.core.events import EventBus
from cityops.core.scheduler import SchedulerThread

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"
JSON_PREFIXES = ("/api/", "/open311/", "/healthz")


def wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(JSON_PREFIXES) or "application/json" in request.headers.get("accept", "")


def error_response(request: Request, status: int, body: dict[str, object]) -> Response:
    if wants_json(request):
        return JSONResponse(body, status_code=status)
    from cityops.core.templating import render_error

    return render_error(request, status, str(body.get("message", "")))


class ServerTimingMiddleware:
    """Server-side time of every request in a Server-Timing header (page benchmarks, browsers' dev
    tools). Plain ASGI on purpose: Starlette's BaseHTTPMiddleware cancels the endpoint when the
    client goes away, which can leave a request's database transaction open."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()
                message["headers"] = [*message.get("headers", []), (b"server-timing", took)]
            await send(message)

        await self.app(scope, receive, timed_send)


def warm_up(app: FastAPI) -> None:
    """Build the point-lookup index before the first request, so intake answers within a second from
    the start. An empty database (before `cityops db upgrade`) is not an error here."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from cityops.places import service as places_service

    try:
        with app.state.db.sessions() as session:
            places_service.cache_for(app.state).index(session)
    except (OperationalError, ProgrammingError):
        log.warning("no places in the database yet; the lookup index is built on first use")


def start_scheduler(app: FastAPI) -> SchedulerThread:
    """The background jobs of every package, run by one thread per process (claims in the database
    keep processes from running the same job twice)."""
    from cityops.cases import service as cases_service
    from cityops.core import exports, scheduler, webhooks
    from cityops.credit import records as credit_records
    from cityops.credit import repair as credit_repair
    from cityops.credit import scoring as credit_scoring
    from cityops.governance.risks import service as risks_service
    from cityops.perception import service as perception_service
    from cityops.warning import service as warning_service

    settings: Settings = app.state.settings
    export_files = Path(settings.attachments_dir) / "exports"
    jobs = [cases_service.escalation_job(), scheduler.webhooks_job(webhooks.secret_from(settings)),
            risks_service.risks_scan_job(),
            perception_service.retention_job(keep_days=settings.telemetry_raw_days),
            perception_service.offline_job(),
            perception_service.rpc_expiry_job(),
            warning_service.expiry_job(),
            credit_records.publicity_job(), credit_scoring.recompute_job(),
            credit_repair.reminders_job(),
            # Expired exports also go when a new one starts; this catches a quiet server.
            scheduler.Job("exports.purge_expired", 3600,
                          lambda db, now: exports.purge_expired(db, export_files, now=now))]
    runner = scheduler.SchedulerThread(app.state.db, jobs)
    runner.start()
    return runner


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database(settings.database_url, echo=settings.sql_echo)
    bus = EventBus(db)
    if settings.nats_url:  # the events travel between processes through NATS JetStream
        from cityops.core.events_nats import NatsTransport

        bus.transport = NatsTransport(bus, settings.nats_url, stream=settings.nats_stream,
                                      subject_prefix=settings.nats_subject_prefix)
    db.after_commit.append(bus.after_commit)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(warm_up, app)
        if getattr(app.state, "own_process", False):
            # What start-up built (the place index, case types, modules) lives as long as the
            # process: frozen, a full garbage collection no longer walks it (it stalled every
            # request for ~100 ms under load).
            gc.collect()
            gc.freeze()
        # A broker's consumers run either way; the drain runs in a thread or inline after each commit.
        await run_in_threadpool(bus.start, background=settings.events_in_background)
        runner = app.state.scheduler = start_scheduler(app) if settings.run_scheduler else None
        yield
        if runner is not None:
            await run_in_threadpool(runner.stop)
        await run_in_threadpool(bus.stop)

    app = FastAPI(title="cityops", version="0.1.0", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  lifespan=lifespan)
    app.router.route_class = UnitOfWorkRoute  # for the routes added on the app itself (healthz)
    app.state.settings = settings
    app.state.db = db
    app.state.bus = bus

    @app.exception_handler(CityopsError)
    async def _cityops_error(request: Request, exc: CityopsError) -> Response:
        return error_response(request, exc.status, exc.to_dict())

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"] if p not in ("body", "query", "path")),
             "message": err["msg"]}
            for err in exc.errors()
        ]
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return error_response(request, 422, {"error": "validation_failed", "message": message,
                                             "detail": {"errors": errors}})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, exc.status_code, {"error": "http_error", "message": str(exc.detail)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, {"error": "internal_error",
                                             "message": "internal error; it has been logged"})

    app.add_middleware(ServerTimingMiddleware)
    # Language of pages: ?lang= (remembered in a cookie), the cookie, then settings.default_locale.
    from cityops.core.i18n import LocaleCookieMiddleware

    app.add_middleware(LocaleCookieMiddleware)

    # Who is asking (session cookie or bearer token) and CSRF checks, before any route runs.
    from cityops.core import auth

    auth.install(app)

    from cityops.web import pages as web_pages

    app.include_router(web_pages.router)
    from cityops.web import exports_api

    app.include_router(exports_api.router)

    from cityops.places import api as places_api
    from cityops.places import pages as places_pages

    app.include_router(places_api.router)
    app.include_router(places_pages.router)

    from cityops.accounts import api as accounts_api
    from cityops.accounts import pages as accounts_pages

    app.include_router(accounts_api.router)
    app.include_router(accounts_pages.router)
    from cityops.accounts import notifications_pages

    app.include_router(notifications_pages.router)

    from cityops.cases import api as cases_api
    from cityops.cases import dispatch_pages as cases_dispatch
    from cityops.cases import pages as cases_pages
    from cityops.cases import people_routes as cases_people
    from cityops.cases.open311 import api as open311_api

    cases_people.install(app)  # first: /api/cases/similar before /api/cases/{case_id}
    app.include_router(cases_api.router)
    app.include_router(cases_dispatch.router)  # before the case pages: /cases/dispatch, not /cases/{case_id}
    app.include_router(cases_pages.router)
    app.include_router(open311_api.router)

    from cityops.governance import api as governance_api
    from cityops.governance import events as governance_events

    app.include_router(governance_api.router)
    from cityops.governance.disputes import api as disputes_api
    from cityops.governance.disputes import pages as disputes_pages

    app.include_router(disputes_api.router)
    app.include_router(disputes_pages.router)
    from cityops.governance.centres import api as centres_api
    from cityops.governance.centres import pages as centres_pages

    app.include_router(centres_api.router)
    app.include_router(centres_pages.router)
    from cityops.governance.assessment import api as assessment_api
    from cityops.governance.assessment import pages as assessment_pages

    app.include_router(assessment_api.router)
    app.include_router(assessment_pages.router)
    from cityops.governance.meetings import api as meetings_api
    from cityops.governance.meetings import pages as meetings_pages

    app.include_router(meetings_api.router)
    app.include_router(meetings_pages.router)
    from cityops.governance.risks import api as risks_api
    from cityops.governance.risks import pages as risks_pages

    app.include_router(risks_api.router)
    app.include_router(risks_pages.router)
    from cityops.governance.visits import api as visits_api
    from cityops.governance.visits import pages as visits_pages

    app.include_router(visits_api.router)
    app.include_router(visits_pages.router)
    governance_events.install(app)

    from cityops.perception import api as perception_api
    from cityops.perception import pages as perception_pages

    app.include_router(perception_api.devices_api)
    app.include_router(perception_api.router)
    app.include_router(perception_pages.router)
    from cityops.perception import events as perception_events

    perception_events.install(app)

    from cityops.warning import api as warning_api
    from cityops.warning import board_api as warning_board_api
    from cityops.warning import monitor as warning_monitor
    from cityops.warning import pages as warning_pages
    from cityops.warning import stations_api as warning_stations_api

    app.include_router(warning_board_api.router)  # first: /api/warnings/board, scenes... are no warning ids
    app.include_router(warning_stations_api.router)  # first: /api/warnings/stations is no warning id
    app.include_router(warning_api.router)
    app.include_router(warning_pages.router)
    warning_monitor.install(app)  # warnings raised from the stations' readings as they are stored
    from cityops.warning import response as warning_response

    warning_response.install(app)  # targets, notices and plan tasks of each warning

    from cityops.credit import api as credit_api
    from cityops.credit import pages as credit_pages

    app.include_router(credit_api.router)
    app.include_router(credit_pages.router)
    from cityops.credit import code_pages as credit_code_pages
    from cityops.credit import records_api as credit_records_api

    app.include_router(credit_records_api.router)  # records, scores
    app.include_router(credit_code_pages.router)  # the 鹤信码: public page, card, inspector view
    from cityops.credit import repair_api as credit_repair_api

    app.include_router(credit_repair_api.router)
    from cityops.credit import lending_api as credit_lending_api

    app.include_router(credit_lending_api.router)
    from cityops.credit import repair_lending_pages as credit_repair_lending_pages

    app.include_router(credit_repair_lending_pages.router)
    from cityops.credit import inspections_api as credit_inspections_api
    from cityops.credit import inspections_pages as credit_inspections_pages

    app.include_router(credit_inspections_api.router)  # plans, joint visits, results, pending items
    app.include_router(credit_inspections_pages.router)

    from cityops.livability import api as livability_api
    from cityops.livability import pages as livability_pages

    app.include_router(livability_api.router)
    app.include_router(livability_pages.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok"}

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def create_server_app() -> FastAPI:
    """The app as `cityops serve` runs it, alone in its process (not beside tests or other apps)."""
    app = create_app()
    app.state.own_process = True
    return app
