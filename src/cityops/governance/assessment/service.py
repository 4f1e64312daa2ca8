"""Risk assessment of projects and major decisions (一评): a high-risk project is stopped until every
mitigation it calls for is recorded as done.

A project moves assessing -> approved -> proceeding. Approval needs an assessment; a high risk also
needs at least one mitigation and every mitigation done, otherwise 409 naming what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.scope import authorize, scope_filter
from cityops.core.db import utcnow
from cityops.core.errors import Conflict, NotFound, ValidationFailed
from cityops.governance.assessment import repository as repo
from cityops.governance.assessment.models import (
    STATUSES,
    Mitigation,
    RiskAssessment,
    RiskProject,
)
from cityops.governance.assessment.schemas import (
    AdvanceRequest,
    AssessmentCreate,
    AssessmentRead,
    MitigationCreate,
    MitigationDone,
    MitigationRead,
    ProjectCounts,
    ProjectCreate,
    ProjectPage,
    ProjectRead,
    ProjectSummary,
    UnitRef,
)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MAX_EXPORT_ROWS = 100_000
NEXT_STATUS = {"approved": "assessing", "proceeding": "approved"}


def unit_ref(unit: OrgUnit | None) -> UnitRef | None:
    return UnitRef(id=unit.id, code=unit.code, name=unit.name) if unit is not None else None


def _unit(session: Session, code: str, field: str) -> OrgUnit:
    unit = repo.unit_by_code(session, code)
    if unit is None:
        raise ValidationFailed(f"no org unit with code {code!r}", field=field)
    return unit


def _authorize(viewer: User, project: RiskProject | None, project_id: int) -> RiskProject:
    if project is None:
        raise NotFound(f"project {project_id} not found")
    authorize(
        viewer,
        division_code=project.division_code,
        org_unit_id=project.owner_unit_id,
        resource="project",
        resource_id=project_id,
    )
    return project


def _condition(viewer: User) -> ColumnElement[bool]:
    return scope_filter(viewer, RiskProject.division_code, RiskProject.owner_unit_id)


def _is_blocked(project: RiskProject, total: int, open_: int) -> bool:
    return project.risk_level == "high" and (total == 0 or open_ > 0)


def _summary_values(project: RiskProject, unit: OrgUnit | None, total: int, open_: int) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "kind": project.kind,
        "status": project.status,
        "risk_level": project.risk_level,
        "blocked": _is_blocked(project, total, open_),
        "open_mitigations": open_,
        "owner_unit": unit_ref(unit),
        "division_code": project.division_code,
        "created_at": project.created_at,
        "approved_at": project.approved_at,
    }


def missing_for_approval(session: Session, project: RiskProject) -> list[str]:
    """Why the project may not be approved yet, one line each (empty: it may)."""
    if project.risk_level is None:
        return ["risk assessment"]
    if project.risk_level != "high":
        return []
    measures = repo.mitigations(session, project.id)
    if not measures:
        return ["at least one mitigation for the high risk"]
    return [f"mitigation #{m.id}: {m.measure}" for m in measures if m.done_at is None]


# --- reading ------------------------------------------------------------------------------------


def to_read(session: Session, project: RiskProject, *, now: datetime | None = None) -> ProjectRead:
    measures = repo.mitigations(session, project.id)
    units = repo.units(session, [project.owner_unit_id, *(m.responsible_unit_id for m in measures)])
    today = (now or utcnow()).astimezone(LOCAL_TZ).date()
    open_ = sum(1 for m in measures if m.done_at is None)
    return ProjectRead(
        **_summary_values(project, units.get(project.owner_unit_id or 0), len(measures), open_),
        description=project.description,
        lon=project.lon,
        lat=project.lat,
        blocked_at=project.blocked_at,
        missing=missing_for_approval(session, project),
        assessments=[
            AssessmentRead(
                id=a.id,
                level=a.level,
                factors=[str(f) for f in a.factors],
                conclusion=a.conclusion,
                assessed_by_name=a.assessed_by_name,
                assessed_at=a.assessed_at,
            )
            for a in repo.assessments(session, project.id)
        ],
        mitigations=[
            MitigationRead(
                id=m.id,
                measure=m.measure,
                responsible_unit=unit_ref(units.get(m.responsible_unit_id or 0)),
                due_date=m.due_date,
                done_at=m.done_at,
                done_note=m.done_note,
                overdue=m.done_at is None and m.due_date is not None and m.due_date < today,
            )
            for m in measures
        ],
    )


def get_project(session: Session, *, viewer: User, project_id: int) -> ProjectRead:
    return to_read(session, _authorize(viewer, repo.get(session, project_id), project_id))


def check_visible(session: Session, *, viewer: User, project_id: int) -> None:
    """404 unless the project exists in the viewer's scope (routes check this before the body)."""
    _authorize(viewer, repo.get(session, project_id), project_id)


def _check_filters(status: str | None, risk_level: str | None) -> None:
    if status and status not in STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(STATUSES)}", field="status")
    if risk_level and risk_level not in ("low", "medium", "high"):
        raise ValidationFailed("risk_level must be low, medium or high", field="risk_level")


def list_projects(
    session: Session,
    *,
    viewer: User,
    status: str | None = None,
    risk_level: str | None = None,
    blocked: bool | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> ProjectPage:
    """Projects in the viewer's scope, newest first, with the stopped / released counts of the scope."""
    _check_filters(status, risk_level)
    condition = _condition(viewer)
    query = repo.list_query(
        condition=condition,
        status=status,
        risk_level=risk_level,
        blocked=blocked,
        q=(q or "").strip() or None,
    )
    rows, total = repo.page(session, query, limit=limit, offset=offset)
    mitigation_counts = repo.mitigation_counts(session, (p.id for p in rows))
    units = repo.units(session, (p.owner_unit_id for p in rows))
    items = [
        ProjectSummary(
            **_summary_values(p, units.get(p.owner_unit_id or 0), *mitigation_counts.get(p.id, (0, 0)))
        )
        for p in rows
    ]
    all_, high, blocked_n, released = repo.counts(session, condition)
    return ProjectPage(
        items=items,
        total=total,
        limit=limit,
        offset=offset,
        counts=ProjectCounts(total=all_, high=high, blocked=blocked_n, released=released),
    )


EXPORT_HEADERS = (
    "ID",
    "Project",
    "Kind",
    "Owner department",
    "Division",
    "Risk level",
    "Blocked",
    "Open mitigations",
    "Status",
    "Registered",
    "Approved",
)


def export_rows(
    session: Session,
    *,
    viewer: User,
    status: str | None = None,
    risk_level: str | None = None,
    blocked: bool | None = None,
    q: str | None = None,
) -> Iterator[list[Any]]:
    page = list_projects(
        session,
        viewer=viewer,
        status=status,
        risk_level=risk_level,
        blocked=blocked,
        q=q,
        limit=MAX_EXPORT_ROWS,
    )
    for p in page.items:
        yield [
            p.id,
            p.name,
            p.kind,
            p.owner_unit.name if p.owner_unit else "",
            p.division_code,
            p.risk_level or "",
            "yes" if p.blocked else "",
            p.open_mitigations,
            p.status,
            p.created_at,
            p.approved_at,
        ]


# --- writing ------------------------------------------------------------------------------------


def register_project(
    session: Session, *, actor: User, data: ProjectCreate, now: datetime | None = None
) -> RiskProject:
    """A new project or decision in the actor's scope, to be assessed."""
    division = data.division_code or actor.scope_code
    if not division:
        raise ValidationFailed("give the division of the project", field="division_code")
    division = division[:12]
    if repo.unit_by_code(session, f"centre-{division}") is None:
        raise ValidationFailed(f"no division {division!r}", field="division_code")
    authorize(actor, division_code=division, resource="division", resource_id=division, hide=False)
    if (data.lon is None) != (data.lat is None):
        raise ValidationFailed(
            "give both lon and lat, or neither", field="lat" if data.lat is None else "lon"
        )
    owner = _unit(session, data.owner_unit_code, "owner_unit_code")
    now = now or utcnow()
    project = RiskProject(
        name=data.name.strip(),
        kind=data.kind,
        description=data.description,
        owner_unit_id=owner.id,
        division_code=division,
        lon=data.lon,
        lat=data.lat,
        status="assessing",
        created_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(project)
    session.flush()
    return project


def _writable(session: Session, actor: User, project_id: int) -> RiskProject:
    project = _authorize(actor, repo.get(session, project_id), project_id)
    return project


def assess(
    session: Session, *, actor: User, project_id: int, data: AssessmentCreate, now: datetime | None = None
) -> RiskProject:
    """Record an assessment; its level becomes the project's. Only before approval."""
    project = _writable(session, actor, project_id)
    if project.status != "assessing":
        raise Conflict(
            f"project {project.id} is already {project.status}; it cannot be re-assessed", field="level"
        )
    now = now or utcnow()
    session.add(
        RiskAssessment(
            project_id=project.id,
            level=data.level,
            factors=[f.strip() for f in data.factors],
            conclusion=data.conclusion,
            assessed_by_id=actor.id,
            assessed_by_name=actor.display_name,
            assessed_at=now,
        )
    )
    project.risk_level = data.level
    project.blocked_at = now if data.level == "high" else None
    project.updated_at = now
    session.flush()
    return project


def add_mitigation(
    session: Session, *, actor: User, project_id: int, data: MitigationCreate, now: datetime | None = None
) -> Mitigation:
    project = _writable(session, actor, project_id)
    if project.status == "proceeding":
        raise Conflict(f"project {project.id} is already proceeding", field="measure")
    unit = _unit(session, data.responsible_unit_code, "responsible_unit_code")
    now = now or utcnow()
    measure = Mitigation(
        project_id=project.id,
        measure=data.measure.strip(),
        responsible_unit_id=unit.id,
        due_date=data.due_date,
        created_at=now,
    )
    session.add(measure)
    project.updated_at = now
    session.flush()
    return measure


def complete_mitigation(
    session: Session,
    *,
    actor: User,
    project_id: int,
    mitigation_id: int,
    data: MitigationDone,
    now: datetime | None = None,
) -> Mitigation:
    """Record a mitigation as done (once)."""
    project = _writable(session, actor, project_id)
    measure = repo.mitigation(session, project.id, mitigation_id)
    if measure is None:
        raise NotFound(f"mitigation {mitigation_id} of project {project_id} not found")
    if measure.done_at is not None:
        raise Conflict(f"mitigation {mitigation_id} was already recorded as done", field="mitigation_id")
    now = now or utcnow()
    measure.done_at = now
    measure.done_note = data.note
    project.updated_at = now
    session.flush()
    return measure


def advance(
    session: Session, *, actor: User, project_id: int, data: AdvanceRequest, now: datetime | None = None
) -> RiskProject:
    """assessing -> approved -> proceeding; a blocked project answers 409 with what is missing."""
    project = _writable(session, actor, project_id)
    expected = NEXT_STATUS[data.to]
    if project.status != expected:
        raise Conflict(
            f"project {project.id} is {project.status}; it can move to {data.to} only from {expected}",
            field="to",
            detail={"status": project.status},
        )
    missing = missing_for_approval(session, project)
    if missing:
        raise Conflict(
            f"project {project.id} is blocked ({project.risk_level or 'not assessed'} risk); "
            f"missing: {'; '.join(missing)}",
            code="project_blocked",
            field="to",
            detail={"missing": missing},
        )
    now = now or utcnow()
    project.status = data.to
    if data.to == "approved":
        project.approved_at = now
    project.updated_at = now
    session.flush()
    return project


def count_projects(session: Session) -> int:
    return repo.count_all(session)
