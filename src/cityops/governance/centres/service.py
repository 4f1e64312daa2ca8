"""Governance centres: who is on duty (值班表), each village's police officer, legal adviser and
mediation organisation (一村一警一法律顾问一民调组织), and a centre's open work.

Phones are personal information: masked without pii.view; an unmasked read of a centre is audited.
Lists always mask (like case lists)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session
from starlette.requests import Request

from cityops.cases import service as cases_service
from cityops.core.auth import audit
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.pii import mask_phone
from cityops.core.auth.roles import can_view_pii, has_permission
from cityops.core.auth.scope import authorize, division_level, scope_filter, scope_prefix
from cityops.core.db import utcnow
from cityops.core.errors import Forbidden, NotFound, ValidationFailed
from cityops.governance.centres import repository as repo
from cityops.governance.centres.models import CONTACT_ROLES, DutyEntry, VillageContact
from cityops.governance.centres.schemas import (
    CentrePage,
    CentreRead,
    CentreSummary,
    ContactRead,
    DutyRead,
    RosterSet,
    TrioSet,
)
from cityops.governance.disputes import service as disputes_service

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MANAGE = "governance.manage"
ROSTER_DAYS = 7
MAX_EXPORT_DAYS = 366
LEVELS = ("city", "county", "township", "village")
BELOW = {"city": "county", "county": "township", "township": "village"}


def today() -> date:
    return datetime.now(LOCAL_TZ).date()


def _condition(viewer: User) -> ColumnElement[bool]:
    return scope_filter(viewer, OrgUnit.division_code, OrgUnit.id)


def get_centre_unit(session: Session, *, viewer: User | None, code: str) -> OrgUnit:
    """The centre of a division code, in the viewer's scope (404 otherwise, like a missing one)."""
    unit = repo.centre_by_division(session, code)
    if unit is None:
        raise NotFound(f"centre {code} not found")
    if viewer is not None:
        authorize(
            viewer, division_code=unit.division_code, org_unit_id=unit.id, resource="centre", resource_id=code
        )
    return unit


def _require_manage(viewer: User | None) -> None:
    if viewer is not None and not has_permission(viewer, MANAGE):
        raise Forbidden(f"your role may not change rosters (needs permission {MANAGE!r})")


def _duty(entry: DutyEntry, visible: bool) -> DutyRead:
    return DutyRead(
        duty_date=entry.duty_date,
        shift=entry.shift,
        person_name=entry.person_name,
        phone=entry.phone if visible else mask_phone(entry.phone),
    )


def _contact(row: VillageContact, visible: bool) -> ContactRead:
    return ContactRead(
        role=row.role,
        name=row.name,
        phone=row.phone if visible else mask_phone(row.phone),
        organisation=row.organisation,
    )


def _trio(rows: list[VillageContact], visible: bool) -> list[ContactRead]:
    order = {role: i for i, role in enumerate(CONTACT_ROLES)}
    return [_contact(r, visible) for r in sorted(rows, key=lambda r: order.get(r.role, 9))]


def list_centres(
    session: Session,
    *,
    viewer: User,
    level: str | None = None,
    parent: str | None = None,
    limit: int = 50,
    offset: int = 0,
    day: date | None = None,
) -> CentrePage:
    """Centres in the viewer's scope (with `parent`: those one level below that division), from the
    top down, with today's duty and (for villages) the trio; phones masked."""
    if level is not None and level not in LEVELS:
        raise ValidationFailed(f"level must be one of {', '.join(LEVELS)}", field="level")
    condition = _condition(viewer)
    if parent:
        try:
            prefix, parent_level = scope_prefix(parent), division_level(parent)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="parent") from None
        level = BELOW.get(parent_level)
        if level is None:
            return CentrePage(items=[], total=0, limit=limit, offset=offset)
        condition = and_(condition, OrgUnit.division_code.startswith(prefix, autoescape=True))
    day = day or today()
    units, total = repo.page(session, repo.centres_query(condition, level), limit=limit, offset=offset)
    duties: dict[int, list[DutyEntry]] = defaultdict(list)
    for entry in repo.duties(session, (u.id for u in units), day, day):
        duties[entry.org_unit_id].append(entry)
    contacts: dict[str, list[VillageContact]] = defaultdict(list)
    for row in repo.contacts(session, (u.division_code for u in units if u.level == "village")):
        contacts[row.village_code].append(row)
    return CentrePage(
        items=[
            CentreSummary(
                id=u.id,
                code=u.code,
                name=u.name,
                level=u.level,
                division_code=u.division_code,
                today=[_duty(e, False) for e in duties[u.id]],
                trio=_trio(contacts[u.division_code], False),
            )
            for u in units
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


def get_centre(session: Session, *, viewer: User, code: str, request: Request | None = None) -> CentreRead:
    """A centre's dashboard: today's duty and the week's roster, the village trio, the open cases it
    holds per status and the open disputes of its area."""
    unit = get_centre_unit(session, viewer=viewer, code=code)
    visible = can_view_pii(viewer)
    day = today()
    roster = repo.duties(session, [unit.id], day, day + timedelta(days=ROSTER_DAYS - 1))
    contacts = repo.contacts(session, [unit.division_code]) if unit.level == "village" else []
    if visible and (any(e.phone for e in roster) or any(c.phone for c in contacts)):
        audit.record(
            session,
            viewer,
            "pii_read",
            "centre",
            unit.code,
            division_code=unit.division_code,
            request=request,
            detail={"fields": ["phone"]},
        )
    return CentreRead(
        id=unit.id,
        code=unit.code,
        name=unit.name,
        level=unit.level,
        division_code=unit.division_code,
        today=[_duty(e, visible) for e in roster if e.duty_date == day],
        trio=_trio(contacts, visible),
        pii_visible=visible,
        roster=[_duty(e, visible) for e in roster],
        open_cases=cases_service.open_counts_by_status(session, viewer=viewer, org_unit_id=unit.id),
        open_disputes=disputes_service.open_count(session, viewer=viewer, division=unit.division_code),
    )


def set_roster(
    session: Session, *, viewer: User | None, code: str, data: RosterSet, synthetic: bool = False
) -> list[DutyEntry]:
    """Replace the roster of every day named in `data` with the entries given for it."""
    unit = get_centre_unit(session, viewer=viewer, code=code)
    _require_manage(viewer)
    if data.entries is None:
        raise ValidationFailed("give the roster entries", field="entries")
    repo.clear_days(session, unit.id, (e.duty_date for e in data.entries))
    rows = [
        DutyEntry(
            org_unit_id=unit.id,
            division_code=unit.division_code,
            duty_date=e.duty_date,
            shift=e.shift,
            person_name=e.person_name.strip(),
            phone=e.phone,
            synthetic=synthetic,
        )
        for e in data.entries
    ]
    session.add_all(rows)
    session.flush()
    return rows


def set_trio(
    session: Session, *, viewer: User | None, code: str, data: TrioSet, synthetic: bool = False
) -> list[VillageContact]:
    """Set the village's police officer, legal adviser and mediation organisation."""
    unit = get_centre_unit(session, viewer=viewer, code=code)
    _require_manage(viewer)
    if unit.level != "village":
        raise ValidationFailed("only a village or community has 一村一警一法律顾问一民调组织", field="code")
    given = {"police": data.police, "legal": data.legal, "mediation": data.mediation}
    if not any(given.values()):
        raise ValidationFailed("give at least one of police, legal, mediation", field="police")
    now = utcnow()
    for role, contact in given.items():
        if contact is None:
            continue
        row = repo.contact(session, unit.division_code, role)
        if row is None:
            row = VillageContact(village_code=unit.division_code, role=role)
            session.add(row)
        row.name, row.phone, row.organisation = (
            contact.name.strip(),
            contact.phone,
            contact.organisation.strip(),
        )
        row.synthetic, row.updated_at = synthetic, now
    session.flush()
    return repo.contacts(session, [unit.division_code])


EXPORT_HEADERS = (
    "日期 Date",
    "班次 Shift",
    "综治中心 Centre",
    "区划 Division",
    "值班人员 Person",
    "电话 Phone",
)


def export_rows(
    session: Session,
    *,
    viewer: User,
    start: date | None = None,
    end: date | None = None,
    request: Request | None = None,
) -> Iterator[list[Any]]:
    """The rosters of every centre in scope over a period (default: the next 7 days); phones unmasked
    only for pii.view, and that export audited."""
    start = start or today()
    end = end or start + timedelta(days=ROSTER_DAYS - 1)
    if end < start:
        raise ValidationFailed("end must be on or after start", field="end")
    if (end - start).days > MAX_EXPORT_DAYS:
        raise ValidationFailed(f"at most {MAX_EXPORT_DAYS} days", field="end")
    visible = can_view_pii(viewer)
    rows = repo.roster_rows(session, _condition(viewer), start, end)
    if visible and rows:
        audit.record(
            session,
            viewer,
            "export",
            "duty_roster",
            None,
            division_code=viewer.scope_code,
            request=request,
            detail={"start": start.isoformat(), "end": end.isoformat(), "rows": len(rows)},
        )
    return iter(
        [
            [
                e.duty_date,
                e.shift,
                u.name,
                u.division_code,
                e.person_name,
                (e.phone if visible else mask_phone(e.phone)) or "",
            ]
            for e, u in rows
        ]
    )


def count_duties(session: Session) -> int:
    return repo.count_duties(session)
