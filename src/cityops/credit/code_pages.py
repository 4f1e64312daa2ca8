"""Pages of the credit code (鹤信码): the public page a scanned code opens (/c/{code}?s=..., no sign-in,
public information only), the printable card for staff (/credit/code/{code}.svg|.png|.pdf), and the
inspector view (/credit/entities/{code}/inspect: tags, risk class, the score explained, the class
history and every record; each view audited)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from cityops.config import Settings
from cityops.core.auth import audit
from cityops.core.auth.deps import CurrentUser
from cityops.core.auth.models import User
from cityops.core.auth.roles import has_permission
from cityops.core.db import utcnow
from cityops.core.deps import SessionDep, SettingsDep, UnitOfWorkRoute
from cityops.core.errors import Forbidden, NotFound
from cityops.core.i18n import N_, gettext_for, locale_of
from cityops.core.templating import render
from cityops.credit import codes, qrcode, records, scoring, service
from cityops.credit.models import Entity
from cityops.places import service as places_service

router = APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False)
CodePath = Annotated[str, Path(min_length=1, max_length=40, description="The entity's credit code")]
CARD_TITLE = N_("Hebi credit code")
CARD_CAPTION = N_("Scan to see the entity's public credit information")
NO_ENTITY = N_("No entity carries this credit code.")
# The record kinds of the public page, in the order of its sections.
PUBLIC_SECTIONS = (
    ("licence", N_("Licences")),
    ("penalty", N_("Administrative penalties in their publicity period")),
    ("abnormal", N_("Abnormal operations listing")),
    ("commitment", N_("Credit commitments")),
    ("honour", N_("Honours")),
)
TAG_SOURCES = {
    "industry": N_("from its industry"),
    "record": N_("from its records"),
    "manual": N_("set by staff"),
}


def _reason_parts(reason: str) -> list[tuple[str, str]]:
    """A class change's stored summary ("penalty -10.0; honour +5.0") as (record kind, points) pairs, so
    the page names the kinds in the reader's language; text of another form stays as it is."""
    parts = []
    for part in reason.split("; "):
        kind, _, points = part.partition(" ")
        parts.append((kind, points) if kind in records.KIND_LABELS else (part, ""))
    return parts


def _entity_by_code(session: Session, code: str) -> Entity:
    """The entity of a well-formed code; NotFound without naming it otherwise."""
    found = records.entity_ids(session, [codes.compact(code)])
    entity = session.get(Entity, found[codes.compact(code)]) if codes.compact(code) in found else None
    if entity is None:
        raise NotFound(NO_ENTITY)
    return entity


@router.get("/c/{entity_code}", response_class=HTMLResponse)
def public_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    entity_code: CodePath,
    s: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """What scanning an entity's 鹤信码 shows anyone: its registration and its public records (licences,
    penalties within their publicity period, the abnormal-operations listing, commitments, honours).
    Never its legal representative nor its risk class or score. A link whose signature does not verify
    is refused before anything about the entity is read."""
    code = codes.compact(entity_code)
    qrcode.verify(settings, code, s)
    entity = _entity_by_code(session, code)
    today = records.today_of(utcnow())
    shown = [r for r in records.records_of(session, entity.id) if records.is_public(r, today=today)]
    units = records.units_of(session, shown)
    items = [records.to_read(r, units, today=today) for r in shown]
    locale = locale_of(request)
    return render(
        request,
        "credit/public.html",
        {
            "entity": entity,
            "industry": service.industry_ref(entity, locale),
            "sections": [(label, [i for i in items if i.kind == kind]) for kind, label in PUBLIC_SECTIONS],
            "kind_labels": service.KIND_LABELS,
            "status_labels": service.STATUS_LABELS,
            "severity_labels": records.SEVERITY_LABELS,
            "today": today,
        },
    )


def _visible(session: Session, user: User, code: str) -> Entity:
    if not has_permission(user, "credit.view"):
        raise Forbidden("your role may not see the entity register (needs permission 'credit.view')")
    return records.entity_by_code(session, viewer=user, code=code)


def _card(request: Request, settings: Settings, entity: Entity) -> qrcode.Card:
    translate = gettext_for(locale_of(request)).gettext
    return qrcode.Card(
        title=translate(CARD_TITLE),
        name=entity.name,
        code_label=translate("Credit code"),
        code=entity.code,
        caption=translate(CARD_CAPTION),
        url=str(request.base_url).rstrip("/") + qrcode.public_path(settings, entity.code),
    )


def _card_response(
    request: Request, session: Session, settings: Settings, user: User, code: str, kind: str
) -> Response:
    entity = _visible(session, user, code)
    makers: dict[str, tuple[Callable[[qrcode.Card], bytes], str]] = {
        "svg": (qrcode.card_svg, "image/svg+xml"),
        "png": (qrcode.card_png, "image/png"),
        "pdf": (qrcode.card_pdf, "application/pdf"),
    }
    make, media_type = makers[kind]
    return Response(
        make(_card(request, settings, entity)),
        media_type=media_type,
        headers={
            "Content-Disposition": f'inline; filename="{entity.code}.{kind}"',
            "Cache-Control": "private",
        },
    )


@router.get("/credit/code/{entity_code}.svg")
def card_svg(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser, entity_code: CodePath
) -> Response:
    """The entity's printable 鹤信码 card as SVG (staff with credit.view, in scope)."""
    return _card_response(request, session, settings, user, entity_code, "svg")


@router.get("/credit/code/{entity_code}.png")
def card_png(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser, entity_code: CodePath
) -> Response:
    """The card as PNG."""
    return _card_response(request, session, settings, user, entity_code, "png")


@router.get("/credit/code/{entity_code}.pdf")
def card_pdf(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser, entity_code: CodePath
) -> Response:
    """The card as PDF."""
    return _card_response(request, session, settings, user, entity_code, "pdf")


@router.get("/credit/entities/{entity_code}/inspect", response_class=HTMLResponse)
def inspector_view(
    request: Request, session: SessionDep, settings: SettingsDep, user: CurrentUser, entity_code: CodePath
) -> HTMLResponse:
    """Everything an inspector needs at the door: the entity (legal representative masked without
    pii.view), its supervision tags, risk class and score explained record by record, the history of its
    class, every record, and the pending inspection items of every department. Audited."""
    if not has_permission(user, "credit.inspect"):
        raise Forbidden("your role may not open the inspector view (needs permission 'credit.inspect')")
    entity = _visible(session, user, entity_code)
    audit.record(
        session,
        user,
        "read",
        "credit_entity_inspection",
        entity.id,
        division_code=entity.division_code,
        request=request,
        detail={"code": entity.code},
    )
    locale = locale_of(request)
    index = places_service.cache_for(request.app.state).index(session)
    found = service.get_entity(
        session, viewer=user, entity_id=entity.id, index=index, locale=locale, request=request
    )
    today = records.today_of(utcnow())
    rows = records.records_of(session, entity.id)
    units = records.units_of(session, rows)
    explanation = scoring.explain(scoring.load_config(), rows, today=today)
    return render(
        request,
        "credit/inspect.html",
        {
            "entity": found,
            "stored": entity,
            "tags": scoring.tags_of(session, entity.id),
            "tag_sources": TAG_SOURCES,
            "explanation": explanation,
            "lines": [(line, records.to_read(line.record, units, today=today)) for line in explanation.lines],
            "history": [(h, _reason_parts(h.reason)) for h in scoring.history_of(session, entity.id)],
            "kind_labels": service.KIND_LABELS,
            "status_labels": service.STATUS_LABELS,
            "record_kind_labels": records.KIND_LABELS,
            "record_status_labels": records.RECORD_STATUS_LABELS,
            "severity_labels": records.SEVERITY_LABELS,
            "public_path": qrcode.public_path(settings, entity.code),
        },
    )
