"""Disputes (矛盾纠纷): intake as a case, parties (personal information), mediation sessions,
agreement or referral, repeat disputes and the figures of "small matters stay in the village, big
ones in the township, hard ones in the county" (小事不出村、大事不出镇、矛盾不上交).

Where a dispute was resolved is never stored here: it is the level of its case's resolve event on the
timeline, read through the cases service (the same sets the case figures count). An agreement moves
the case on to resolved; a referral escalates it one level up.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session
from starlette.requests import Request

from cityops.cases import service as cases_service
from cityops.cases import types as case_types
from cityops.cases.models import Case
from cityops.cases.schemas import ActionRequest, CaseCreate
from cityops.cases.workflow import LEVELS, level_above
from cityops.core.auth import audit
from cityops.core.auth.models import User
from cityops.core.auth.pii import mask_id_number, mask_phone
from cityops.core.auth.roles import can_view_pii, has_permission
from cityops.core.auth.scope import authorize, division_level, scope_filter, scope_prefix
from cityops.core.db import utcnow
from cityops.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityops.governance.disputes import repository as repo
from cityops.governance.disputes.models import STATUSES, Dispute, DisputeParty, MediationSession
from cityops.governance.disputes.schemas import (
    DisputeCreate,
    DisputeFigure,
    DisputeFiguresRead,
    DisputePage,
    DisputeRead,
    DisputeSummary,
    OutcomeCreate,
    PartyRead,
    RelatedDispute,
    RelationReason,
    SessionCreate,
    SessionRead,
    UnitFigures,
)
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
CASE_TYPE = "dispute"
MANAGE = "governance.manage"
# Two disputes at the same place: within this distance, the later within a year of the earlier.
PLACE_RADIUS_M = 100.0
PLACE_WINDOW = timedelta(days=365)
MAX_EXPORT_ROWS = 100_000
FIGURES = ("reported", "resolved", "resolved_at_level", "repeat")
# The case moves an agreement takes, from each state, until the case is resolved.
TOWARDS_RESOLVED = {
    "reported": "accept",
    "escalated": "accept",
    "delegated": "accept",
    "reopened": "accept",
    "returned": "dispatch",
    "accepted": "start",
    "dispatched": "start",
    "in_progress": "resolve",
}
DONE_STATES = frozenset({"resolved", "verified", "closed"})


# --- helpers ------------------------------------------------------------------------------------


def _scope(viewer: User) -> ColumnElement[bool]:
    return scope_filter(viewer, Dispute.division_code)


def _require_manage(viewer: User | None) -> None:
    if viewer is not None and not has_permission(viewer, MANAGE):
        raise Forbidden(f"your role may not record disputes (needs permission {MANAGE!r})")


def _get(session: Session, viewer: User, dispute_id: int) -> Dispute:
    dispute = repo.get(session, dispute_id)
    if dispute is None:
        raise NotFound(f"dispute {dispute_id} not found")
    authorize(viewer, division_code=dispute.division_code, resource="dispute", resource_id=dispute_id)
    return dispute


def check_visible(session: Session, *, viewer: User, dispute_id: int) -> None:
    """404 unless the dispute exists in the viewer's scope (checked before a body is read)."""
    _get(session, viewer, dispute_id)


def _case(session: Session, dispute: Dispute) -> Case:
    case = repo.case(session, dispute.case_id)
    if case is None:
        raise NotFound(f"the case of dispute {dispute.id} no longer exists")
    return case


def categories() -> list[tuple[str, str, str]]:
    """(code, Chinese name, English name) of every dispute category."""
    case_type = case_types.registry().find(CASE_TYPE)
    return [(c.code, c.name_zh, c.name_en) for c in case_type.all_categories()]


def _category_name(code: str) -> str:
    try:
        return case_types.registry().find(CASE_TYPE).category(code).name_zh
    except (NotFound, ValidationFailed):
        return code


def mask_address(address: str | None) -> str | None:
    """The first characters (the district) stay, the rest goes."""
    if not address:
        return address
    return address[:3] + "*" * max(len(address) - 3, 1)


def _party_read(party: DisputeParty, *, visible: bool) -> PartyRead:
    if visible:
        return PartyRead(
            id=party.id, name=party.name, phone=party.phone, id_number=party.id_number, address=party.address
        )
    return PartyRead(
        id=party.id,
        name=cases_service.mask_name(party.name) or "",
        phone=mask_phone(party.phone),
        id_number=mask_id_number(party.id_number),
        address=mask_address(party.address),
    )


def _summary_values(row: Any, parties: Sequence[DisputeParty], repeat: bool) -> dict[str, Any]:
    dispute, number, status, level, unit_name = row
    return {
        "id": dispute.id,
        "case_id": dispute.case_id,
        "case_number": number,
        "case_status": status,
        "level": level,
        "handling_unit": unit_name,
        "division_code": dispute.division_code,
        "village_code": dispute.village_code,
        "category": dispute.category,
        "category_name": _category_name(dispute.category),
        "title": dispute.title,
        "place": dispute.place,
        "status": dispute.status,
        "parties": [cases_service.mask_name(p.name) or "" for p in parties],
        "repeat": repeat,
        "synthetic": dispute.synthetic,
        "created_at": dispute.created_at,
    }


# --- intake and mediation -----------------------------------------------------------------------


def create_dispute(
    session: Session,
    *,
    viewer: User | None,
    data: DisputeCreate,
    index: PlaceIndex,
    now: datetime | None = None,
    synthetic: bool = False,
) -> Dispute:
    """Take in a dispute: its case is reported (routed to the village centre, with its deadline) and
    the parties recorded. `viewer=None` is the system (the demo generator)."""
    _require_manage(viewer)
    fields: dict[str, Any] = {"parties": len(data.parties)}
    if data.amount_yuan is not None:
        fields["amount_yuan"] = data.amount_yuan
    if data.risk is not None:
        fields["risk"] = data.risk
    case = cases_service.report_case(
        session,
        data=CaseCreate(
            type_code=CASE_TYPE,
            category=data.category,
            title=data.title,
            description=data.description,
            lon=data.lon,
            lat=data.lat,
            source="web",
            fields=fields,
        ),
        index=index,
        reporter=viewer,
        now=now,
    )
    if viewer is not None:
        # A centre records the disputes of its own area; the request rolls the case back otherwise.
        authorize(viewer, division_code=case.division_code, resource="location", hide=False)
    dispute = Dispute(
        case_id=case.id,
        division_code=case.division_code,
        village_code=case.village_code,
        category=data.category,
        title=data.title.strip(),
        place=data.place.strip(),
        lon=case.lon,
        lat=case.lat,
        synthetic=synthetic,
        created_by_id=viewer.id if viewer else None,
        created_at=case.created_at,
    )
    session.add(dispute)
    session.flush()
    session.add_all(
        [
            DisputeParty(
                dispute_id=dispute.id,
                name=p.name,
                phone=p.phone or None,
                id_number=p.id_number,
                address=p.address or None,
            )
            for p in data.parties
        ]
    )
    session.flush()
    return dispute


def _required(value: Any, name: str, what: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationFailed(f"give {what}", field=name)
    return value.strip() if isinstance(value, str) else value


def _load(session: Session, viewer: User | None, dispute_id: int) -> Dispute:
    """The dispute in the viewer's scope; `viewer=None` is the system (the demo generator)."""
    if viewer is not None:
        dispute = _get(session, viewer, dispute_id)
        _require_manage(viewer)
        return dispute
    found = repo.get(session, dispute_id)
    if found is None:
        raise NotFound(f"dispute {dispute_id} not found")
    return found


def add_session(
    session: Session,
    *,
    viewer: User | None,
    dispute_id: int,
    data: SessionCreate,
    now: datetime | None = None,
) -> MediationSession:
    dispute = _load(session, viewer, dispute_id)
    if dispute.status == "agreed":
        raise Conflict("an agreement has been reached; no more sessions", field="outcome")
    now = now or utcnow()
    held_on: date = _required(data.held_on, "held_on", "the date of the session")
    if held_on > now.astimezone(LOCAL_TZ).date():
        raise ValidationFailed("a session cannot be recorded before it is held", field="held_on")
    if held_on < dispute.created_at.astimezone(LOCAL_TZ).date():
        raise ValidationFailed("the session is before the dispute was recorded", field="held_on")
    row = MediationSession(
        dispute_id=dispute.id,
        held_on=held_on,
        mediator=_required(data.mediator, "mediator", "the mediator"),
        place=_required(data.place, "place", "the place"),
        outcome=_required(data.outcome, "outcome", "the outcome (agreement, continue or referred)"),
        notes=data.notes.strip(),
        level=_case(session, dispute).level,
        recorded_by_id=viewer.id if viewer else None,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _resolve_case(session: Session, case: Case, actor: User | None, text: str, now: datetime) -> None:
    """Move the case on to resolved at its current level (accept, start, resolve as needed)."""
    while case.status not in DONE_STATES:
        action = TOWARDS_RESOLVED.get(case.status)
        if action is None:
            raise Conflict(f"the case {case.number} is {case.status} and cannot be resolved", field="kind")
        body = ActionRequest(
            version=case.version,
            result=text if action == "resolve" else None,
            comment="调解达成协议" if action == "resolve" else None,
        )
        case = cases_service.act(session, actor=actor, case_id=case.id, action=action, body=body, now=now)


def record_outcome(
    session: Session,
    *,
    viewer: User | None,
    dispute_id: int,
    data: OutcomeCreate,
    now: datetime | None = None,
) -> Dispute:
    """Agreement (the case is resolved at its level) or referral (the case goes one level up)."""
    dispute = _load(session, viewer, dispute_id)
    if dispute.status == "agreed":
        raise Conflict("an agreement has already been recorded", field="kind")
    kind = _required(data.kind, "kind", "the outcome: agreement or referral")
    now = now or utcnow()
    case = _case(session, dispute)
    if kind == "agreement":
        text = _required(data.agreement, "agreement", "the text of the agreement")
        _resolve_case(session, case, viewer, text, now)
        dispute.status, dispute.agreement = "agreed", text
    else:
        above = level_above(case.level)
        if above is None:
            raise ValidationFailed(
                "the case is at city level; there is no level to refer it to", field="to_level"
            )
        if data.to_level is not None and data.to_level != above:
            raise ValidationFailed(f"a referral goes to the next level up: {above}", field="to_level")
        reason = _required(data.reason, "reason", "the reason for the referral")
        if case.status in ("escalated", "reopened"):
            # Taken up at this level before it can go further up.
            case = cases_service.act(
                session,
                actor=viewer,
                case_id=case.id,
                action="accept",
                now=now,
                body=ActionRequest(version=case.version),
            )
        cases_service.act(
            session,
            actor=viewer,
            case_id=case.id,
            action="escalate",
            now=now,
            body=ActionRequest(version=case.version, reason=reason, org_unit_code=data.to_unit_code or None),
        )
        dispute.status, dispute.referral_level = "referred", above
        dispute.referral_unit_code, dispute.referral_reason = data.to_unit_code or None, reason
    dispute.outcome_at = now
    session.flush()
    return dispute


# --- repeat disputes ----------------------------------------------------------------------------


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6_371_000 * math.hypot(x, y)


@dataclass
class Repeats:
    """Dispute id -> the earlier disputes it repeats (same party or same place), in the viewer's scope."""

    earlier: dict[int, dict[int, RelationReason]]

    def of(self, dispute_id: int) -> dict[int, RelationReason]:
        return self.earlier.get(dispute_id, {})


def repeats(session: Session, *, viewer: User, until: datetime | None = None) -> Repeats:
    """Same parties (ID number, or name and phone) at any earlier time, or within PLACE_RADIUS_M of
    an earlier dispute of the past PLACE_WINDOW. Computed over the viewer's scope only, so a link never
    points at a dispute the viewer may not open."""
    condition = _scope(viewer)
    rows = repo.points(session, condition, until)
    created = {r[0]: r[3] for r in rows}
    earlier: dict[int, dict[int, RelationReason]] = defaultdict(dict)
    by_key: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for dispute_id, id_number, name, phone in repo.party_keys(session, condition, until):
        if id_number:
            by_key[("id", id_number.upper())].append(dispute_id)
        if phone:
            by_key[("np", name, phone)].append(dispute_id)
    for ids in by_key.values():
        unique = sorted(set(ids), key=lambda i: (created[i], i))
        for later_pos, later in enumerate(unique):
            for first in unique[:later_pos]:
                earlier[later][first] = "same_party"
    # Same place: buckets at least the radius wide (a degree of longitude is at least half a degree of
    # latitude below 60°), so a neighbour is always in one of the 9 buckets around; checked exactly.
    cell = PLACE_RADIUS_M / 111_000
    buckets: dict[tuple[int, int], list[tuple[int, datetime, float, float]]] = defaultdict(list)
    for dispute_id, _case_id, _division, at, lon, lat in rows:
        buckets[(int(lon // (2 * cell)), int(lat // cell))].append((dispute_id, at, lon, lat))
    for (bx, by), members in buckets.items():
        near = [m for dx in (-1, 0, 1) for dy in (-1, 0, 1) for m in buckets.get((bx + dx, by + dy), [])]
        for dispute_id, at, lon, lat in members:
            for other_id, other_at, olon, olat in near:
                if (
                    (other_at, other_id) < (at, dispute_id)
                    and at - other_at <= PLACE_WINDOW
                    and _metres(lon, lat, olon, olat) <= PLACE_RADIUS_M
                ):
                    earlier[dispute_id].setdefault(other_id, "same_place")
    return Repeats(dict(earlier))


def related(session: Session, *, viewer: User, dispute: Dispute) -> list[RelatedDispute]:
    """Earlier disputes this one repeats, and later ones that repeat it."""
    found = repeats(session, viewer=viewer)
    links = dict(found.of(dispute.id))
    for later, firsts in found.earlier.items():
        if dispute.id in firsts:
            links.setdefault(later, firsts[dispute.id])
    others = {d.id: d for d in (repo.get(session, i) for i in links) if d is not None}
    return sorted(
        (
            RelatedDispute(id=i, title=others[i].title, created_at=others[i].created_at, reason=reason)
            for i, reason in links.items()
            if i in others
        ),
        key=lambda r: r.created_at,
    )


# --- reading ------------------------------------------------------------------------------------


def get_dispute(
    session: Session, *, viewer: User, dispute_id: int, request: Request | None = None
) -> DisputeRead:
    """One dispute with its parties (masked without pii.view; an unmasked read is audited), its
    sessions and the disputes it repeats or is repeated by."""
    dispute = _get(session, viewer, dispute_id)
    row = repo.one_row(session, dispute.id)
    parties = repo.parties(session, [dispute.id])[dispute.id]
    visible = can_view_pii(viewer)
    if visible and parties:
        audit.record(
            session,
            viewer,
            "pii_read",
            "dispute",
            dispute.id,
            division_code=dispute.division_code,
            request=request,
            detail={"fields": ["name", "phone", "id_number", "address"]},
        )
    links = related(session, viewer=viewer, dispute=dispute)
    case = _case(session, dispute)
    return DisputeRead(
        **_summary_values(row, parties, any(link.created_at <= dispute.created_at for link in links)),
        description=case.description,
        lon=dispute.lon,
        lat=dispute.lat,
        agreement=dispute.agreement,
        referral_level=dispute.referral_level,
        referral_unit_code=dispute.referral_unit_code,
        referral_reason=dispute.referral_reason,
        outcome_at=dispute.outcome_at,
        pii_visible=visible,
        party_details=[_party_read(p, visible=visible) for p in parties],
        sessions=[
            SessionRead(
                id=s.id,
                held_on=s.held_on,
                mediator=s.mediator,
                place=s.place,
                outcome=s.outcome,
                notes=s.notes,
                level=s.level,
                created_at=s.created_at,
            )
            for s in repo.sessions(session, dispute.id)
        ],
        related=links,
    )


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    category: str | None = None
    q: str | None = None
    division: str | None = None
    repeat: bool = False
    figure: str | None = None
    level: str | None = None
    start: date | None = None
    end: date | None = None


def _division_condition(viewer: User, division: str | None) -> ColumnElement[bool]:
    if not division:
        return _scope(viewer)
    try:
        prefix = scope_prefix(division)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field="division") from None
    return and_(_scope(viewer), Dispute.division_code.startswith(prefix, autoescape=True))


def _list_query(session: Session, viewer: User, f: Filters) -> tuple[Any, Repeats | None]:
    if f.status and f.status not in STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}", field="status")
    if f.category and f.category not in {c for c, _zh, _en in categories()}:
        raise ValidationFailed(f"unknown dispute category {f.category!r}", field="category")
    ids: set[int] | None = None
    found: Repeats | None = None
    if f.figure:
        ids = figure_ids(
            session,
            viewer=viewer,
            figure=f.figure,
            level=f.level,
            division=f.division,
            start=f.start,
            end=f.end,
        )
    if f.repeat:
        found = repeats(session, viewer=viewer)
        ids = set(found.earlier) if ids is None else ids & set(found.earlier)
    query = repo.list_query(
        condition=_division_condition(viewer, f.division),
        status=f.status,
        category=f.category,
        q=(f.q or "").strip() or None,
        ids=ids,
    )
    return query, found


def list_disputes(
    session: Session, *, viewer: User, filters: Filters = Filters(), limit: int = 50, offset: int = 0
) -> DisputePage:
    """Disputes in the viewer's scope, newest first; parties always masked in lists."""
    query, found = _list_query(session, viewer, filters)
    rows, total = repo.page(session, query, limit=limit, offset=offset)
    parties = repo.parties(session, (r[0].id for r in rows))
    if found is None and rows:
        found = repeats(session, viewer=viewer)
    items = [
        DisputeSummary(**_summary_values(r, parties[r[0].id], bool(found and found.of(r[0].id))))
        for r in rows
    ]
    return DisputePage(items=items, total=total, limit=limit, offset=offset)


EXPORT_HEADERS = (
    "编号 Number",
    "案件号 Case",
    "标题 Title",
    "类别 Category",
    "地点 Place",
    "当事人 Parties",
    "状态 Status",
    "案件状态 Case status",
    "层级 Level",
    "办理单位 Handling unit",
    "区划 Division",
    "重复纠纷 Repeat",
    "合成数据 Synthetic",
    "登记时间 Recorded at",
)


def export_rows(session: Session, *, viewer: User, filters: Filters = Filters()) -> Iterator[list[Any]]:
    """Every dispute of the filtered list, masked like the list, for the Excel export."""
    page = list_disputes(session, viewer=viewer, filters=filters, limit=MAX_EXPORT_ROWS)
    for d in page.items:
        yield [
            d.id,
            d.case_number,
            d.title,
            d.category_name,
            d.place,
            "、".join(d.parties),
            d.status,
            d.case_status,
            d.level,
            d.handling_unit or "",
            d.division_code,
            "是" if d.repeat else "",
            "是" if d.synthetic else "",
            d.created_at,
        ]


# --- figures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    division: str
    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), LOCAL_TZ)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(), LOCAL_TZ)


@dataclass
class Tally:
    reported: set[int]
    levels: dict[int, str]  # dispute id -> level its case was resolved at in the period
    repeat: set[int]
    division_of: dict[int, str]
    coords: dict[int, tuple[float, float]]


def _tally(
    session: Session, viewer: User, division: str | None, start: date | None, end: date | None
) -> tuple[Period, Tally]:
    # The cases service checks the unit (404 outside the scope) and the period, with its defaults.
    case_levels = cases_service.resolution_levels(
        session, viewer=viewer, division=division, start=start, end=end
    )
    end = end or datetime.now(LOCAL_TZ).date()
    where = Period(division or viewer.scope_code or "", start or end.replace(day=1), end)
    rows = repo.points(session, _division_condition(viewer, where.division), where.until)
    found = repeats(session, viewer=viewer, until=where.until)
    reported = {r[0] for r in rows if r[3] >= where.since}
    return where, Tally(
        reported=reported,
        levels={r[0]: case_levels[r[1]] for r in rows if r[1] in case_levels},
        repeat={i for i in reported if found.of(i)},
        division_of={r[0]: r[2] for r in rows},
        coords={r[0]: (r[4], r[5]) for r in rows},
    )


def _ids(t: Tally, figure: str, level: str | None) -> set[int]:
    if figure == "reported":
        return t.reported
    if figure == "resolved":
        return set(t.levels)
    if figure == "repeat":
        return t.repeat
    return {i for i, lv in t.levels.items() if lv == level}


def figure_ids(
    session: Session,
    *,
    viewer: User,
    figure: str,
    level: str | None = None,
    division: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> set[int]:
    """The disputes behind one figure (the drill-down)."""
    if figure not in FIGURES:
        raise ValidationFailed(f"unknown figure {figure!r}; known: {', '.join(FIGURES)}", field="figure")
    if figure == "resolved_at_level" and level not in LEVELS:
        raise ValidationFailed(f"figure {figure!r} needs a level: {', '.join(LEVELS)}", field="level")
    _where, tallied = _tally(session, viewer, division, start, end)
    return _ids(tallied, figure, level)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _unit(code: str, name: str, t: Tally, ids: set[int] | None = None) -> UnitFigures:
    def keep(s: set[int]) -> set[int]:
        return s if ids is None else s & ids

    per = {lv: len(keep(_ids(t, "resolved_at_level", lv))) for lv in LEVELS}
    resolved = len(keep(set(t.levels)))
    return UnitFigures(
        division_code=code,
        name=name,
        reported=len(keep(t.reported)),
        resolved=resolved,
        **per,
        kept_in_village=_share(per["village"], resolved),
        kept_in_township=_share(per["village"] + per["township"], resolved),
        repeat=len(keep(t.repeat)),
    )


def figures_of(
    session: Session,
    *,
    viewer: User,
    division: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> DisputeFiguresRead:
    """Disputes reported, resolved at each level, the share kept in the village and within the
    township, and repeat disputes, for a unit and period; per unit one level down as well."""
    where, t = _tally(session, viewer, division, start, end)
    total = _unit(where.division, "", t)

    def url(figure: str, level: str | None = None) -> str:
        params = {
            "figure": figure,
            **({"level": level} if level else {}),
            "division": where.division,
            "start": where.start.isoformat(),
            "end": where.end.isoformat(),
        }
        return "/api/governance/disputes?" + urlencode(params)

    figures = [
        DisputeFigure(name="reported", value=total.reported, disputes_url=url("reported")),
        DisputeFigure(name="resolved", value=total.resolved, disputes_url=url("resolved")),
    ]
    figures += [
        DisputeFigure(
            name="resolved_at_level",
            level=lv,
            value=getattr(total, lv),
            disputes_url=url("resolved_at_level", lv),
        )
        for lv in LEVELS
    ]
    if total.kept_in_village is not None:
        figures.append(
            DisputeFigure(
                name="kept_in_village",
                value=total.kept_in_village,
                disputes_url=url("resolved_at_level", "village"),
            )
        )
    if total.kept_in_township is not None:
        figures.append(DisputeFigure(name="kept_in_township", value=total.kept_in_township))
    figures.append(DisputeFigure(name="repeat", value=total.repeat, disputes_url=url("repeat")))
    units: list[UnitFigures] = []
    if division_level(where.division) in ("city", "county", "township"):
        for child in places_service.child_rows(session, code=where.division):
            prefix = scope_prefix(child.code)
            mine = {i for i, code in t.division_of.items() if code.startswith(prefix)}
            units.append(_unit(child.code, child.name, t, mine))
    return DisputeFiguresRead(
        division_code=where.division, start=where.start, end=where.end, figures=figures, units=units
    )


MAX_POINTS = 20_000


def points(
    session: Session,
    *,
    viewer: User,
    division: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> dict[str, Any]:
    """The disputes recorded in a unit and period as a GeoJSON FeatureCollection for the hotspot map
    (no names or titles: the map is for every reader); properties: id, status, repeat."""
    where, t = _tally(session, viewer, division, start, end)
    wanted = sorted(t.reported)[-MAX_POINTS:]
    statuses = repo.statuses(session, wanted)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(t.coords[i])},
            "properties": {"id": i, "status": statuses.get(i, ""), "repeat": i in t.repeat},
        }
        for i in wanted
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "division_code": where.division,
        "start": where.start.isoformat(),
        "end": where.end.isoformat(),
        "truncated": len(t.reported) > MAX_POINTS,
    }


def open_count(session: Session, *, viewer: User, division: str) -> int:
    """Disputes of a division not yet settled by agreement, in the viewer's scope."""
    return repo.count_open(session, _division_condition(viewer, division))


def count_disputes(session: Session) -> int:
    return repo.count(session)
