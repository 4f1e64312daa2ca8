"""Synthetic projects and major decisions under risk assessment (labelled synthetic): full scale has 60,
12 of them high risk and stopped until their mitigations are done (the seed's "12 risky projects
stopped"); small scale has a handful. Everything goes through the service, as the city centre's
operator."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy.orm import Session

from cityops.core.auth.models import User
from cityops.core.db import Database, utcnow
from cityops.core.seeding import Generator, SeedContext
from cityops.governance.assessment import repository as repo
from cityops.governance.assessment import service
from cityops.governance.assessment.schemas import (
    AdvanceRequest,
    AssessmentCreate,
    MitigationCreate,
    MitigationDone,
    ProjectCreate,
)

OPERATOR = "city.operator"
# (blocked high, released high, medium, low)
MIX = {"small": (2, 1, 1, 1), "full": (12, 6, 20, 22)}
SUBJECTS = (
    ("淇河生态廊道征地拆迁", "planning", "project"),
    ("城中村改造", "housing", "project"),
    ("垃圾焚烧发电厂选址", "urban", "project"),
    ("居民阶梯水价调整", "water", "decision"),
    ("公交线路优化调整", "transport", "decision"),
    ("农村学校布局调整", "education", "decision"),
    ("化工园区扩区", "industry", "project"),
    ("老旧小区加装电梯", "housing", "project"),
    ("高速公路连接线征地", "transport", "project"),
    ("殡仪馆迁建", "civil-affairs", "project"),
    ("集体土地流转", "agriculture", "decision"),
    ("国有企业改制", "sasac", "decision"),
    ("农贸市场搬迁", "commerce", "project"),
    ("污水处理厂扩建", "environment", "project"),
    ("医保报销比例调整", "medical-security", "decision"),
    ("煤矿关停退出", "emergency", "decision"),
)
FACTORS = (
    "征地补偿标准",
    "群众安置意愿",
    "环境影响",
    "施工噪声扰民",
    "就业安置",
    "历史遗留问题",
    "利益群体诉求",
    "舆情风险",
    "资金保障",
)
MEASURES = (
    ("召开听证会充分听取群众意见", "justice"),
    ("制定补偿安置方案并公示", "planning"),
    ("开展环境影响评价公众参与", "environment"),
    ("设立矛盾纠纷调处专班", "petitions"),
    ("落实施工期降噪措施", "housing"),
    ("做好舆情监测与回应", "big-data"),
)


def _project(
    session: Session, rng: random.Random, actor: User, divisions: list[str], i: int, level: str, outcome: str
) -> None:
    subject, dept, kind = SUBJECTS[i % len(SUBJECTS)]
    division = rng.choice(divisions)
    when = utcnow() - timedelta(days=rng.uniform(20, 700))
    name = f"{subject}（合成数据 {i + 1:03d}）"
    project = service.register_project(
        session,
        actor=actor,
        now=when,
        data=ProjectCreate(
            name=name,
            kind=kind,
            owner_unit_code=f"dept-{dept}",
            division_code=division,
            description=f"{subject}项目社会稳定风险评估（合成演示数据）",
        ),
    )
    when += timedelta(days=rng.uniform(3, 15))
    service.assess(
        session,
        actor=actor,
        project_id=project.id,
        now=when,
        data=AssessmentCreate(
            level=level,
            factors=rng.sample(FACTORS, 3),
            conclusion="评估结论："
            + {
                "low": "风险较低，可以实施",
                "medium": "风险可控，落实措施后实施",
                "high": "风险较高，暂缓实施，落实化解措施后再议",
            }[level],
        ),
    )
    if level == "high":
        for measure, unit in rng.sample(MEASURES, rng.randint(2, 3)):
            due = (when + timedelta(days=rng.randint(15, 60))).date()
            m = service.add_mitigation(
                session,
                actor=actor,
                project_id=project.id,
                now=when,
                data=MitigationCreate(measure=measure, responsible_unit_code=f"dept-{unit}", due_date=due),
            )
            # A stopped project keeps at least one measure open; a released one has them all done.
            if outcome == "released" or rng.random() < 0.4:
                service.complete_mitigation(
                    session,
                    actor=actor,
                    project_id=project.id,
                    mitigation_id=m.id,
                    now=when + timedelta(days=rng.randint(5, 40)),
                    data=MitigationDone(note="已落实"),
                )
        if outcome == "blocked":
            measure, unit = MEASURES[3]
            service.add_mitigation(
                session,
                actor=actor,
                project_id=project.id,
                now=when,
                data=MitigationCreate(
                    measure=measure + "（未完成）",
                    responsible_unit_code=f"dept-{unit}",
                    due_date=(when + timedelta(days=30)).date(),
                ),
            )
            return
    if outcome == "assessing":
        return
    when += timedelta(days=rng.uniform(20, 60))
    service.advance(session, actor=actor, project_id=project.id, now=when, data=AdvanceRequest(to="approved"))
    if rng.random() < 0.6:
        service.advance(
            session,
            actor=actor,
            project_id=project.id,
            now=when + timedelta(days=10),
            data=AdvanceRequest(to="proceeding"),
        )


def run(ctx: SeedContext) -> None:
    rng = ctx.rng("governance.assessment")
    blocked, released, medium, low = MIX[ctx.scale]
    plan = (
        [("high", "blocked")] * blocked
        + [("high", "released")] * released
        + [("medium", rng.choice(("assessing", "approved"))) for _ in range(medium)]
        + [("low", "approved") for _ in range(low)]
    )
    rng.shuffle(plan)
    advance = ctx.task("governance: project risk assessments", total=len(plan))
    with ctx.db.session() as session:
        actor = repo.user_by_username(session, OPERATOR)
        divisions = repo.centre_divisions(session, "township") or repo.centre_divisions(session, "county")
        if actor is None or not divisions:
            return
        for i, (level, outcome) in enumerate(plan):
            _project(session, rng, actor, divisions, i, level, outcome)
            advance(1)


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.count_projects(session) > 0


GENERATOR = Generator(name="governance.assessment", run=run, is_seeded=is_seeded)
