"""The public page a scanned 鹤信码 opens shows public information only; the inspector view shows everything
an inspector needs, to inspectors only, and every view is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.config import Settings
from cityops.core.auth.models import AuditEntry
from cityops.core.db import Database, utcnow
from cityops.credit import qrcode, records, scoring
from cityops.credit.models import Entity
from tests.accounts.helpers import login

SOURCE = "hebi-test-public"
REP_NAME, REP_ID = "欧阳公示", "410611199001011238"


@pytest.fixture
def entity(db: Database) -> Entity:
    """An entity with a legal representative and one record of each kind: some public today, some not."""
    today = records.today_of(utcnow())
    with db.session() as session:
        found = session.scalars(
            select(Entity).where(Entity.industry_code == "62").order_by(Entity.id)
        ).first()
        assert found is not None
        found.legal_rep_name, found.legal_rep_id_number = REP_NAME, REP_ID
        code = found.code

        def rec(n: str, kind: str, title: str, days: int, **more: object) -> records.RecordIn:
            return records.RecordIn(
                entity_code=code,
                kind=kind,
                source_record_id=n,
                title=title,
                decided_on=today - timedelta(days=days),
                **more,
            )  # type: ignore[arg-type]

        records.save_records(
            session,
            source=SOURCE,
            actor=None,
            items=[
                rec("1", "licence", "公示食品经营许可证", 100, valid_until=today + timedelta(days=900)),
                rec(
                    "2",
                    "penalty",
                    "公示期内的处罚",
                    30,
                    severity="general",
                    publicity_until=today + timedelta(days=150),
                ),
                rec("3", "penalty", "不公示的轻微处罚", 5, severity="minor"),
                rec(
                    "4",
                    "penalty",
                    "公示期已过的处罚",
                    400,
                    severity="general",
                    publicity_until=today - timedelta(days=35),
                ),
                rec("5", "abnormal", "列入经营异常名录的事由", 60),
                rec("6", "dishonest", "内部可见的严重失信", 60, publicity_until=today + timedelta(days=900)),
                rec("7", "tax_grade", "内部可见的纳税信用级别", 200, grade="C"),
                rec("8", "arrears", "内部可见的欠费", 20, amount=3000),
                rec("9", "honour", "公示的荣誉称号", 300, valid_until=today + timedelta(days=700)),
                rec("10", "commitment", "公示的信用承诺书", 10, valid_until=today + timedelta(days=355)),
                rec("11", "licence", "已撤销的许可证", 100, status="revoked"),
            ],
        )
        scoring.recompute(session)
    with db.sessions() as session:
        stored = session.get(Entity, found.id)
    assert stored is not None and stored.risk_class is not None
    return stored


def test_the_public_page_shows_public_information_only(
    client: TestClient, entity: Entity, settings: Settings
) -> None:
    page = client.get(qrcode.public_path(settings, entity.code))  # not signed in: whoever scanned it
    assert page.status_code == 200, page.text
    text = page.text
    for shown in (
        "公示食品经营许可证",
        "公示期内的处罚",
        "列入经营异常名录的事由",
        "公示的荣誉称号",
        "公示的信用承诺书",
    ):
        assert shown in text
    for hidden in (
        "不公示的轻微处罚",
        "公示期已过的处罚",
        "内部可见的严重失信",
        "内部可见的纳税信用级别",
        "内部可见的欠费",
        "已撤销的许可证",
    ):
        assert hidden not in text
    # Never personal information, never the internal class or score.
    assert REP_NAME not in text and REP_ID not in text and REP_NAME[:1] + "*" not in text
    assert "风险分类" not in text and "信用分" not in text and "data-risk-class" not in text
    assert f"{entity.score}" not in text
    english = client.get(qrcode.public_path(settings, entity.code) + "&lang=en")
    assert "Public credit information" in english.text and "Risk class" not in english.text


def test_the_inspector_view_explains_and_is_audited(client: TestClient, db: Database, entity: Entity) -> None:
    login(client, "inspector")
    page = client.get(f"/credit/entities/{entity.code}/inspect")
    assert page.status_code == 200, page.text
    text = page.text
    assert f'data-risk-class="{entity.risk_class}"' in text
    for everything in (
        "内部可见的严重失信",
        "不公示的轻微处罚",
        "已撤销的许可证",
        "食品经营",
        "严重失信",
        "经营异常",
    ):
        assert everything in text  # records of every kind, and the tags from industry and records
    assert 'data-table="score-explanation"' in text and 'data-table="class-history"' in text
    assert REP_NAME not in text  # the inspector role sees it masked (no pii.view)
    with db.sessions() as session:
        entry = session.scalar(
            select(AuditEntry).where(
                AuditEntry.resource_type == "credit_entity_inspection",
                AuditEntry.resource_id == str(entity.id),
            )
        )
    assert entry is not None and entry.username == "inspector" and entry.action == "read"


def test_the_score_api_adds_up(client: TestClient, db: Database, entity: Entity) -> None:
    login(client, "inspector")
    found = client.get(f"/api/credit/entities/{entity.code}/score")
    assert found.status_code == 200, found.text
    body = found.json()
    total = (
        body["base"]
        + sum(line["points"] for line in body["lines"])
        + sum(c["adjustment"] for c in body["caps"])
    )
    assert round(min(max(total, 0), 100), 1) == pytest.approx(body["score"], abs=0.06)
    assert (body["stored_score"], body["stored_class"]) == (entity.score, entity.risk_class)
    assert {line["kind"] for line in body["lines"]} >= {"dishonest", "tax_grade", "penalty"}
    with db.sessions() as session:
        assert (
            session.scalar(select(AuditEntry).where(AuditEntry.resource_type == "credit_entity_score"))
            is not None
        )


@pytest.mark.parametrize("username", ["city.operator", "leader", "emergency.handler"])
def test_the_inspector_view_needs_credit_inspect(client: TestClient, entity: Entity, username: str) -> None:
    login(client, username)
    assert client.get(f"/credit/entities/{entity.code}/inspect").status_code == 403
    assert client.get(f"/api/credit/entities/{entity.code}/score").status_code == 403
