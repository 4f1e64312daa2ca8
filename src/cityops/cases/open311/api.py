"""Open311 GeoReport v2 at /open311/v2: discovery, services, service definitions, requests, tokens,
each as .json or .xml, errors as the spec's error list with 400/403/404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from cityops.cases.open311 import formats
from cityops.cases.open311 import service as open311
from cityops.core.auth.sessions import CredentialsRejected, user_for_token
from cityops.core.db import utcnow
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.errors import CityopsError, Forbidden, NotFound, ValidationFailed
from cityops.places import service as places_service

router = APIRouter(route_class=UnitOfWorkRoute, prefix="/open311/v2", tags=["open311"])
JURISDICTION = "410600"  # the city's division code
# The spec knows 400, 403 and 404; everything a client got wrong is a 400.
SPEC_STATUS = {401: 403, 403: 403, 404: 404}
STARTED = utcnow()
CONTACT = "城市运行管理中心 / city operations centre"


def _format(name: str) -> formats.Format:
    if name not in formats.FORMATS:
        raise NotFound(f"format must be json or xml, not {name!r}")
    return name


def answer(fmt_name: str, build: Callable[[formats.Format], Response]) -> Response:
    """Run a handler and turn cityops errors into the spec's error list in the asked format."""
    fmt: formats.Format = fmt_name if fmt_name in formats.FORMATS else "json"
    try:
        return build(_format(fmt_name))
    except CityopsError as exc:
        return formats.error_response(fmt, SPEC_STATUS.get(exc.status, 400), exc.message)


def _check_jurisdiction(params: dict[str, str]) -> None:
    given = formats.present(params, "jurisdiction_id")
    if given is not None and given != JURISDICTION:
        raise NotFound(f"jurisdiction_id {given!r} is not served here; this endpoint serves {JURISDICTION}")


async def request_params(request: Request) -> dict[str, str]:
    """Query-string and form parameters merged, as GeoReport clients send either."""
    form = None
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = dict(await request.form())
    return formats.merged_params(dict(request.query_params), form)


Params = Annotated[dict[str, str], Depends(request_params)]


@router.get("/discovery.{fmt}")
def discovery(fmt: str, request: Request) -> Response:
    base = str(request.base_url).rstrip("/") + "/open311/v2/"
    document = formats.discovery_document(base, changeset=STARTED, contact=CONTACT)
    return answer(fmt, lambda f: formats.respond(f, document, root="discovery", item=None))


@router.get("/services.{fmt}")
def services(fmt: str, params: Params) -> Response:
    def build(f: formats.Format) -> Response:
        _check_jurisdiction(params)
        return formats.respond(f, [open311.service_entry(s) for s in open311.public_services()],
                               root="services", item="service")

    return answer(fmt, build)


@router.get("/services/{service_code}.{fmt}")
def service_definition(service_code: str, fmt: str, params: Params) -> Response:
    def build(f: formats.Format) -> Response:
        _check_jurisdiction(params)
        return formats.respond(f, open311.service_definition(service_code), root="service_definition",
                               item=None)

    return answer(fmt, build)


def _client(session: Session, params: dict[str, str]) -> Any:
    key = formats.present(params, "api_key")
    if key is None:
        raise Forbidden("api_key is required to post a service request")
    try:
        return user_for_token(session, key)
    except (CityopsError, CredentialsRejected):
        raise Forbidden("api_key is not valid (unknown, expired or revoked)") from None


@router.post("/requests.{fmt}")
def post_request(fmt: str, request: Request, params: Params, session: SessionDep) -> Response:
    def build(f: formats.Format) -> Response:
        _check_jurisdiction(params)
        client = _client(session, params)
        index = places_service.cache_for(request.app.state).index(session)
        case = open311.create_request(session, index=index, params=params,
                                      attributes=formats.attributes_from(params), client=client)
        entry = [{"service_request_id": case.number, "service_notice": "", "account_id": None}]
        return formats.respond(f, entry, root="service_requests", item="request", status=201)

    return answer(fmt, build)


@router.get("/requests.{fmt}")
def get_requests(fmt: str, params: Params, session: SessionDep) -> Response:
    def build(f: formats.Format) -> Response:
        _check_jurisdiction(params)
        try:
            start = formats.parse_datetime(formats.present(params, "start_date"), "start_date")
            end = formats.parse_datetime(formats.present(params, "end_date"), "end_date")
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
        entries = open311.list_requests(
            session, ids=formats.comma_list(formats.present(params, "service_request_id")),
            service_codes=formats.comma_list(formats.present(params, "service_code")),
            start=start, end=end, statuses=formats.comma_list(formats.present(params, "status")))
        return formats.respond(f, entries, root="service_requests", item="request")

    return answer(fmt, build)


@router.get("/requests/{service_request_id}.{fmt}")
def get_request(service_request_id: str, fmt: str, params: Params, session: SessionDep) -> Response:
    def build(f: formats.Format) -> Response:
        _check_jurisdiction(params)
        return formats.respond(f, open311.get_request(session, number=service_request_id),
                               root="service_requests", item="request")

    return answer(fmt, build)


@router.get("/tokens/{token}.{fmt}")
def get_token(token: str, fmt: str, session: SessionDep) -> Response:
    """Requests are numbered at once, so a token is the request's own number."""
    def build(f: formats.Format) -> Response:
        found = open311.get_request(session, number=token)
        entry = [{"service_request_id": found[0]["service_request_id"], "token": token}]
        return formats.respond(f, entry, root="service_requests", item="request")

    return answer(fmt, build)
