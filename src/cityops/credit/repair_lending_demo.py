"""Synthetic credit repair and lending for the demo, through the same service functions as real use.

Lending (both scales): three synthetic banks with five products, and authorisations, applications and
decisions for a sample of active entities (the matching decides which product each applies for).
Repair (full scale only, so the small test seed keeps its case counts): penalties issued by the market
regulator with their four documents, served over the past two years; of those past their minimum
publication, some repaired through their case, some waiting, some refused for missing materials.
Everything is labelled synthetic; decision numbers carry （合成）."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.core.seeding import SeedContext
from cityops.credit import lending, repair
from cityops.credit.models import Entity
from cityops.credit.records import CHINA, today_of
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

LENDING_FIRMS = {"full": 2_000, "small": 40}
PENALTIES = {"full": 60, "small": 0}
OFFENCES = (
    ("销售过期食品", "general", 5_000),
    ("未按规定公示年度报告", "minor", None),
    ("虚假宣传", "general", 20_000),
    ("无证经营", "serious", 50_000),
    ("计量器具未经检定", "minor", 2_000),
    ("特种设备未按规定检验", "general", 30_000),
)


def run(ctx: SeedContext) -> None:
    rng = ctx.rng("credit-repair-lending")
    with ctx.db.sessions() as session:
        active = list(session.scalars(select(Entity.id).where(Entity.status == "active").order_by(Entity.id)))
    if not active:
        return
    firms = rng.sample(active, min(LENDING_FIRMS[ctx.scale], len(active)))
    with ctx.db.session() as session:
        lending.seed_demo(session, rng, now=ctx.now, entity_ids=firms)
    count = PENALTIES[ctx.scale]
    if not count:
        return
    advance = ctx.task("credit: penalties and repairs", total=count)
    today = today_of(ctx.now)
    with ctx.db.session() as session:
        index = places_service.build_index(session)
        for n, entity_id in enumerate(rng.sample(active, min(count, len(active))), start=1):
            title, severity, fine = rng.choice(OFFENCES)
            decided = today - timedelta(days=rng.randrange(20, 720))
            served_at = datetime.combine(decided, time(10), tzinfo=CHINA)
            issued = repair.issue_penalty(
                session,
                actor=None,
                files_root=ctx.files_root,
                now=served_at,
                synthetic=True,
                data=repair.PenaltyCreate(
                    entity_id=entity_id,
                    decision_number=f"鹤市监罚〔{decided.year}〕D{n:03d}号（合成）",
                    title=title,
                    severity=severity,
                    decided_on=decided,
                    fine=fine,
                    served_to="法定代表人（合成）",
                    channel=rng.choice(("in_person", "mail", "electronic")),
                ),
            )
            _maybe_repair(session, rng, index, issued, today)
            advance(1)


def _maybe_repair(
    session: Session, rng: random.Random, index: PlaceIndex, issued: repair.PenaltyRead, today: date
) -> None:
    """For a penalty past its minimum publication and still in force: an application some days after
    it became eligible, complete or not, and for most complete ones the repair granted."""
    if issued.publicity_until is None or issued.status != "active" or issued.eligible_on >= today:
        return
    if rng.random() < 0.4:
        return
    applied = min(issued.eligible_on + timedelta(days=rng.randrange(0, 30)), today)
    at = datetime.combine(applied, time(9, 30), tzinfo=CHINA)
    complete = rng.random() < 0.8
    app = repair.apply_for_repair(
        session,
        actor=None,
        index=index,
        now=at,
        synthetic=True,
        data=repair.RepairApply(
            record_id=issued.record_id,
            corrected=True,
            obligations_fulfilled=complete,
            fine_paid_on=applied - timedelta(days=3) if complete and issued.fine else None,
            commitment_text="本单位承诺依法诚信经营，接受社会监督。（合成）",
        ),
    )
    if app.status != "submitted" or applied > today - timedelta(days=7) or rng.random() < 0.15:
        return  # refused at once, or still waiting to be examined
    repair.decide(
        session,
        actor=None,
        application_id=app.id,
        now=at + timedelta(days=1),
        data=repair.RepairDecision(action="accept"),
    )
    repair.decide(
        session,
        actor=None,
        application_id=app.id,
        now=at + timedelta(days=3),
        data=repair.RepairDecision(action="grant"),
    )
