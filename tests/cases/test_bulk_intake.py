"""The bulk intake (`open_cases`, a warning's hundreds of tasks at once) opens the cases the single intake
would: numbered without repeats, routed to the village's centre or the category's department, due at
the given deadline or the type's SLA, each with its first timeline line and its CaseReported event; an
intake it refuses leaves the others opened."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from cityops.cases import search
from cityops.cases import service as case_service
from cityops.cases.models import Case, CaseEvent
from cityops.cases.schemas import CaseCreate
from cityops.core.auth.models import OrgUnit, User
from cityops.core.db import Database, utcnow
from cityops.core.errors import CityopsError, ValidationFailed
from cityops.core.events import OutboxEntry
from cityops.places import service as places_service
from cityops.places.models import Division
from tests.cases.helpers import point_in_village

# What a row of the single intake and of the bulk one must agree on (the number aside).
SAME = ("type_code", "category", "title", "description", "status", "level", "division_code", "grid_code",
        "village_code", "lon", "lat", "org_unit_id", "reporter_name", "reporter_phone", "reporter_user_id",
        "source", "public", "fields", "created_at", "updated_at", "deadline_at", "assignee_id", "closed_at")


def villages(db: Database, count: int) -> list[str]:
    with db.sessions() as session:
        return list(session.scalars(select(Division.code).where(Division.level == "village")
                                    .order_by(Division.code).limit(count)))


def task(db: Database, village: str, category: str, n: int, **overrides: Any) -> CaseCreate:
    lon, lat, _grid = point_in_village(db, village)
    values: dict[str, Any] = {
        "type_code": "warning_task", "category": category, "title": f"转移避险：{village}",
        "description": f"红色洪水预警（第{n}项）。按预案转移低洼地带群众。", "lon": lon, "lat": lat,
        "source": "warning", "fields": {"warning_id": 7, "plan_item": f"flood.item{n}", "target": village}}
    values.update(overrides)
    return CaseCreate(**values)


def intakes(db: Database, now: datetime) -> list[case_service.Intake]:
    """Village tasks (the village centre's), department tasks (the emergency bureau's) and a complaint
    of another type, with a deadline of their own or the type's SLA."""
    found = []
    for n, village in enumerate(villages(db, 4)):
        found.append(case_service.Intake(task(db, village, "evacuate", n), None, now + timedelta(minutes=60)))
        found.append(case_service.Intake(task(db, village, "rescue", n), None, now + timedelta(minutes=30)))
        found.append(case_service.Intake(task(db, village, "patrol", n)))  # the type's SLA
    lon, lat, _grid = point_in_village(db, villages(db, 1)[0])
    found.append(case_service.Intake(CaseCreate(
        type_code="dispute", category="neighbour", title="邻居宅基地边界争议", description="两户争执",
        lon=lon, lat=lat, reporter_name="王小明", reporter_phone="13812345678", fields={"parties": 2})))
    return found


def row(case: Case) -> dict[str, Any]:
    return {name: getattr(case, name) for name in SAME}


def test_the_bulk_intake_opens_the_cases_the_single_intake_would(db: Database) -> None:
    now = utcnow()
    wanted = intakes(db, now)
    with db.session() as session:
        index = places_service.build_index(session)
        single = [
            case_service.report_case(session, data=i.data, index=index, now=now, deadline_at=i.deadline_at)
            for i in wanted]
        opened = case_service.open_cases(session, intakes=wanted, index=index, now=now)
    assert not any(isinstance(o, CityopsError) for o in opened)
    ids = [o.id for o in opened if not isinstance(o, CityopsError)]
    with db.sessions() as session:
        units = {u.id: u.code for u in session.scalars(select(OrgUnit))}
        bulk = [session.get(Case, case_id) for case_id in ids]
        alone = [session.get(Case, c.id) for c in single]
        lines = {e.case_id: e for e in session.scalars(select(CaseEvent).where(CaseEvent.case_id.in_(ids)))}
        line_count = session.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.case_id.in_(ids)))
        events = {e.payload["case_id"]: e.payload for e in session.scalars(
            select(OutboxEntry).where(OutboxEntry.topic == "cases.reported"))}
        alone_lines = {e.case_id: e for e in session.scalars(
            select(CaseEvent).where(CaseEvent.case_id.in_([c.id for c in single])))}

    numbers = [c.number for c in alone] + [c.number for c in bulk if c is not None]
    assert len(set(numbers)) == len(numbers) == 2 * len(wanted)
    serials = [int(n.rsplit("-", 1)[1]) for n in numbers]
    assert serials == list(range(serials[0], serials[0] + len(numbers)))  # in order, none skipped
    for intake, mine, theirs, answer in zip(wanted, bulk, alone, opened, strict=True):
        assert mine is not None and theirs is not None and not isinstance(answer, CityopsError)
        assert row(mine) == row(theirs)
        assert (answer.number, answer.org_unit_id, answer.deadline_at) == (mine.number, mine.org_unit_id,
                                                                           mine.deadline_at)
        assert mine.search_text == search.search_text(mine.number, mine.title, mine.description)
        assert mine.version == theirs.version == 1
        if intake.deadline_at is not None:
            assert mine.deadline_at == intake.deadline_at
        else:
            assert mine.deadline_at is not None and mine.deadline_at > now
        unit = units[mine.org_unit_id or 0]
        if intake.data.category == "rescue":
            assert unit == "dept-emergency"
        elif intake.data.type_code == "warning_task":
            assert unit == f"centre-{mine.village_code}"
        line, their_line = lines[mine.id], alone_lines[theirs.id]
        assert (line.action, line.from_status, line.to_status, line.level, line.org_unit_id, line.data) == (
            their_line.action, their_line.from_status, their_line.to_status, their_line.level,
            their_line.org_unit_id, their_line.data)
        assert line.data["routed_to"] == unit
        event, their_event = events[mine.id], events[theirs.id]
        assert event["number"] == mine.number
        differ = {"case_id", "number"}
        assert {k: v for k, v in event.items() if k not in differ} == {
            k: v for k, v in their_event.items() if k not in differ}
    assert line_count == len(ids)  # one report line each


def test_an_intake_the_bulk_path_refuses_leaves_the_others_opened(db: Database) -> None:
    now = utcnow()
    first, second = villages(db, 2)
    with db.sessions() as session:
        citizen = session.scalar(select(User).where(User.username == "citizen"))
        before = session.scalar(select(func.count(Case.id)))
    assert citizen is not None
    wanted = [
        case_service.Intake(task(db, first, "evacuate", 0), None, now + timedelta(hours=1)),
        case_service.Intake(task(db, first, "evacuate", 1, lon=0.5, lat=0.5)),  # far outside the city
        case_service.Intake(task(db, second, "nonsense", 2)),
        case_service.Intake(task(db, second, "evacuate", 3), citizen),  # the platform's type, not a report
        case_service.Intake(task(db, second, "patrol", 4)),
    ]
    with db.session() as session:
        index = places_service.build_index(session)
        opened = case_service.open_cases(session, intakes=wanted, index=index, now=now)
    refusals = [o for o in opened if isinstance(o, CityopsError)]
    assert [type(o) for o in refusals] == [ValidationFailed] * 3
    assert [getattr(o, "field", None) for o in refusals] == ["lon", "category", "type_code"]
    assert "opened by the platform" in refusals[2].message
    made = [o for o in opened if not isinstance(o, CityopsError)]
    assert [opened.index(o) for o in made] == [0, 4]
    with db.sessions() as session:
        assert session.scalar(select(func.count(Case.id))) == (before or 0) + 2
        rows = [session.get(Case, o.id) for o in made]
    assert [(c.village_code, c.category) for c in rows if c is not None] == [(first, "evacuate"),
                                                                           (second, "patrol")]
    numbers = sorted(int(c.number.rsplit("-", 1)[1]) for c in rows if c is not None)
    assert numbers[1] == numbers[0] + 1  # refusals take no number
