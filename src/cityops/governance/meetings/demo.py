"""Synthetic meetings of the four levels (labelled synthetic): monthly joint meetings of the townships with
the most cases, a county consultation and a city analysis meeting, agendas drawn from the seeded cases
and some decisions recorded, all through the service as the city centre's operator."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from cityops.cases import service as cases_service
from cityops.core.db import Database, utcnow
from cityops.core.errors import CityopsError
from cityops.core.seeding import Generator, SeedContext
from cityops.governance.assessment import repository as units_repo
from cityops.governance.meetings import service
from cityops.governance.meetings.schemas import DecisionCreate, MeetingCreate, MinutesUpdate

OPERATOR = "city.operator"
# (townships, monthly meetings each)
PLAN = {"small": (1, 2), "full": (8, 4)}
ATTENDEES = ("综治中心主任", "派出所所长", "司法所所长", "信访办主任", "网格长", "法律顾问")
DECISIONS = (
    "由司法所牵头调解，十日内反馈",
    "交相关部门依法处理",
    "列入重点关注，网格员每周回访",
    "召集双方当事人再次协商",
)


def run(ctx: SeedContext) -> None:
    rng = ctx.rng("governance.meetings")
    townships, per = PLAN[ctx.scale]
    now = utcnow()
    with ctx.db.session() as session:
        actor = units_repo.user_by_username(session, OPERATOR)
        if actor is None:
            return
        busiest = Counter(
            p.division_code[:9]
            for p in cases_service.case_points(session, since=now - timedelta(days=4 * 365))
        )
        divisions = [code for code, _n in busiest.most_common(townships)]
        if divisions:
            divisions += [divisions[0][:6]] + ([actor.scope_code] if actor.scope_code else [])
    advance = ctx.task("governance: four meetings", total=len(divisions) * per)
    for division in divisions:
        for month in range(per, 0, -1):
            with ctx.db.session() as session:
                actor = units_repo.user_by_username(session, OPERATOR)
                assert actor is not None
                held_at = now - timedelta(days=30 * month - rng.uniform(0, 5))
                try:
                    meeting = service.schedule(
                        session,
                        actor=actor,
                        now=held_at - timedelta(days=3),
                        data=MeetingCreate(
                            division_code=division,
                            held_at=held_at,
                            title=None,
                            attendees=rng.sample(ATTENDEES, 4),
                        ),
                    )
                except CityopsError:
                    break  # no centre for this division in a small places set
                # The first meeting takes up everything still open from the seeded history.
                first = month == per
                service.draw_agenda(
                    session,
                    actor=actor,
                    meeting_id=meeting.id,
                    since=now - timedelta(days=4 * 365) if first else None,
                )
                for item in service.get_meeting(session, viewer=actor, meeting_id=meeting.id).agenda[:3]:
                    service.decide(
                        session,
                        actor=actor,
                        meeting_id=meeting.id,
                        item_id=item.id,
                        index=None,
                        now=held_at,
                        data=DecisionCreate(decision=rng.choice(DECISIONS)),
                    )
                service.record_minutes(
                    session,
                    actor=actor,
                    meeting_id=meeting.id,
                    now=held_at,
                    data=MinutesUpdate(
                        minutes="会议逐项研究了上级转来和本级受理的矛盾纠纷、风险隐患（合成演示数据）。",
                        held=True,
                    ),
                )
            advance(1)


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.count_meetings(session) > 0


GENERATOR = Generator(name="governance.meetings", run=run, is_seeded=is_seeded)
