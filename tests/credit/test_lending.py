"""Credit lending (信易贷): products validated with field errors, a bank sees an entity's credit report only
under its authorisation, matching explains each rule, applications and decisions, figures from records."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.core.auth.models import OrgUnit, User
from cityops.core.db import Database
from cityops.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from cityops.credit import lending
from cityops.credit.models import CreditRecord, Entity, LoanApplication, ReportAuthorisation
from tests.accounts.helpers import login
from tests.accounts.test_cli import env_for, run

NOW = datetime(2026, 9, 1, 2, tzinfo=UTC)


def user(session: Any, username: str) -> User:
    found = session.scalar(select(User).where(User.username == username))
    assert found is not None
    return found


def bank_officer(session: Any, bank: lending.Bank) -> User:
    """A member of the bank's own (external) org unit who manages its lending, scoped to one county."""
    unit = OrgUnit(
        code=f"bank-{bank.code}", name=bank.name, kind="external", level="city", division_code="410600"
    )
    session.add(unit)
    session.flush()
    bank.org_unit_id = unit.id
    officer = User(
        username=f"officer-{bank.code}",
        display_name="信贷员",
        password_hash="x",
        role="admin",
        org_unit_id=unit.id,
        scope_code="410611",
    )
    session.add(officer)
    session.flush()
    return officer


@pytest.fixture
def firm(db: Database) -> int:
    """A wholesale firm (section F) of class B, five years in business, tax grade A, not yet on the
    lending platform."""
    with db.session() as session:
        seen = select(ReportAuthorisation.entity_id).union(
            select(LoanApplication.entity_id),
            select(CreditRecord.entity_id).where(CreditRecord.kind == "tax_grade"),  # its grade is ours
        )
        entity = session.scalars(
            select(Entity).where(Entity.status == "active", Entity.id.not_in(seen)).order_by(Entity.id)
        ).first()
        assert entity is not None
        entity.industry_code, entity.industry_section = "51", "F"
        entity.established_on = date(2021, 6, 1)
        entity.risk_class = "B"
        session.add(
            CreditRecord(
                entity_id=entity.id,
                kind="tax_grade",
                source="test-tax",
                source_record_id="T1",
                title="2025年度纳税信用等级",
                grade="A",
                decided_on=date(2026, 4, 1),
            )
        )
        session.flush()
        return entity.id


def product(bank_id: int, name: str, **rules: Any) -> lending.ProductCreate:
    return lending.ProductCreate(
        bank_id=bank_id, name=name, max_amount=1_000_000, rate=4.0, term_months=12, **rules
    )


def test_products_are_checked_field_by_field(client: TestClient, db: Database) -> None:
    with db.session() as session:
        bank = lending.create_bank(
            session, actor=user(session, "admin"), data=lending.BankCreate(code="test-bank", name="测试银行")
        )
        bank_id = bank.id
        for rules, field in (
            (dict(risk_classes=["A", "E"]), "risk_classes.1"),
            (dict(sections=["Z"]), "sections.0"),
            (dict(divisions=["99"]), "divisions.0"),
            (dict(tax_grades=["AA"]), "tax_grades.0"),
        ):
            with pytest.raises(ValidationFailed) as refused:
                lending.publish_product(session, actor=None, data=product(bank.id, "坏产品", **rules))
            assert refused.value.field == field
        with pytest.raises(Forbidden):  # an inspector acts for no bank
            lending.publish_product(session, actor=user(session, "inspector"), data=product(bank.id, "x"))
    login(client, "admin")
    wrong = client.post(
        "/api/credit/lending/products",
        json={"bank_id": bank_id, "name": "利率过高", "max_amount": 100, "rate": 50, "term_months": 12},
    )
    assert wrong.status_code == 422 and wrong.json()["detail"]["errors"][0]["field"] == "rate"
    wrong = client.post(
        "/api/credit/lending/products",
        json={
            "bank_id": bank_id,
            "name": "x",
            "max_amount": 100,
            "rate": 5,
            "term_months": 12,
            "sections": ["Q", "9"],
        },
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "sections.1"
    good = client.post(
        "/api/credit/lending/products",
        json={
            "bank_id": bank_id,
            "name": "好产品",
            "max_amount": 100,
            "rate": 5,
            "term_months": 12,
            "risk_classes": ["b", "A"],
        },
    )
    assert good.status_code == 201 and good.json()["risk_classes"] == ["A", "B"]


def test_a_bank_sees_a_credit_report_only_under_an_authorisation(db: Database, firm: int) -> None:
    with db.session() as session:
        bank = lending.create_bank(session, actor=None, data=lending.BankCreate(code="b1", name="一号银行"))
        other = lending.create_bank(session, actor=None, data=lending.BankCreate(code="b2", name="二号银行"))
        officer = bank_officer(session, bank)
        with pytest.raises(NotFound):
            lending.credit_report(session, viewer=officer, bank_id=bank.id, entity_id=firm, now=NOW)
        # Consent given to another bank does not open it to this one.
        lending.authorise(
            session,
            actor=user(session, "inspector"),
            now=NOW,
            data=lending.AuthorisationCreate(entity_id=firm, bank_id=other.id, days=30),
        )
        with pytest.raises(NotFound):
            lending.credit_report(session, viewer=officer, bank_id=bank.id, entity_id=firm, now=NOW)
        granted = lending.authorise(
            session,
            actor=user(session, "inspector"),
            now=NOW,
            data=lending.AuthorisationCreate(entity_id=firm, bank_id=bank.id, days=30),
        )
        report = lending.credit_report(session, viewer=officer, bank_id=bank.id, entity_id=firm, now=NOW)
        assert report.risk_class == "B" and report.tax_grade == "A" and report.years_in_business == 5
        # Not another bank's staff, and not after it expires or is revoked.
        with pytest.raises(Forbidden):
            lending.credit_report(session, viewer=officer, bank_id=other.id, entity_id=firm, now=NOW)
        with pytest.raises(NotFound):
            lending.credit_report(
                session, viewer=officer, bank_id=bank.id, entity_id=firm, now=NOW + timedelta(days=31)
            )
        lending.revoke(
            session,
            actor=user(session, "inspector"),
            authorisation_id=granted.id,
            now=NOW + timedelta(days=1),
        )
        with pytest.raises(NotFound):
            lending.credit_report(
                session, viewer=officer, bank_id=bank.id, entity_id=firm, now=NOW + timedelta(days=2)
            )


def test_matching_explains_each_rule(db: Database, firm: int) -> None:
    with db.session() as session:
        bank = lending.create_bank(session, actor=None, data=lending.BankCreate(code="b1", name="一号银行"))
        fits = lending.publish_product(
            session,
            actor=None,
            data=product(
                bank.id, "批发贷", risk_classes=["A", "B"], sections=["F"], min_years=3, tax_grades=["A", "B"]
            ),
        )
        only_a = lending.publish_product(
            session, actor=None, data=product(bank.id, "优质贷", risk_classes=["A"])
        )
        old = lending.publish_product(session, actor=None, data=product(bank.id, "老字号贷", min_years=10))
        farm = lending.publish_product(session, actor=None, data=product(bank.id, "惠农贷", divisions=["01"]))
        found = {
            m.product.id: m
            for m in lending.match(session, viewer=user(session, "inspector"), entity_id=firm, now=NOW)
        }
    assert found[fits.id].matches and [c.rule for c in found[fits.id].checks] == [
        "risk_class",
        "industry",
        "years",
        "tax_grade",
    ]
    [check] = found[only_a.id].checks
    assert not found[only_a.id].matches and check.rule == "risk_class" and "class B" in check.detail
    assert (
        not found[old.id].matches
        and "5 years in business; at least 10 wanted" in found[old.id].checks[0].detail
    )
    assert not found[farm.id].matches and found[farm.id].checks[0].rule == "industry"
    ranked = [m.product.id for m in found.values() if m.product.id in (fits.id, only_a.id, old.id, farm.id)]
    assert ranked.index(fits.id) == 0  # the matching ones first


def test_applications_decisions_and_figures(
    db: Database, firm: int, tmp_path: Path, template_db: Path
) -> None:
    with db.session() as session:
        before = lending.figures(session)
        inspector = user(session, "inspector")
        bank = lending.create_bank(session, actor=None, data=lending.BankCreate(code="b1", name="一号银行"))
        officer = bank_officer(session, bank)
        loan = lending.publish_product(session, actor=officer, data=product(bank.id, "经营贷"))
        asked = lending.ApplicationCreate(entity_id=firm, product_id=loan.id, amount=500_000)
        with pytest.raises(ValidationFailed) as refused:
            lending.apply(session, actor=inspector, data=asked, now=NOW)
        assert refused.value.field == "entity_id" and "has not authorised 一号银行" in refused.value.message
        lending.authorise(session, actor=inspector, now=NOW, data=lending.AuthorisationCreate(entity_id=firm))
        with pytest.raises(ValidationFailed) as refused:
            lending.apply(
                session, actor=inspector, now=NOW, data=asked.model_copy(update={"amount": 2_000_000})
            )
        assert refused.value.field == "amount"
        app = lending.apply(session, actor=inspector, data=asked, now=NOW)
        with pytest.raises(Conflict):
            lending.apply(session, actor=inspector, data=asked, now=NOW)
        with pytest.raises(ValidationFailed) as refused:
            lending.decide(
                session,
                actor=officer,
                application_id=app.id,
                now=NOW,
                data=lending.ApplicationDecision(action="approve"),
            )
        assert refused.value.field == "credit_line"
        with pytest.raises(Conflict):
            lending.decide(
                session,
                actor=officer,
                application_id=app.id,
                now=NOW,
                data=lending.ApplicationDecision(action="issue", loan_amount=1),
            )
        lending.decide(
            session,
            actor=officer,
            application_id=app.id,
            now=NOW,
            data=lending.ApplicationDecision(action="approve", credit_line=300_000),
        )
        with pytest.raises(ValidationFailed) as refused:
            lending.decide(
                session,
                actor=officer,
                application_id=app.id,
                now=NOW,
                data=lending.ApplicationDecision(action="issue", loan_amount=400_000),
            )
        assert refused.value.field == "loan_amount"
        issued = lending.decide(
            session,
            actor=officer,
            application_id=app.id,
            now=NOW,
            data=lending.ApplicationDecision(action="issue", loan_amount=250_000),
        )
        assert issued.status == "issued" and issued.credit_line == 300_000 and issued.loan_amount == 250_000
        second = lending.apply(session, actor=inspector, data=asked, now=NOW)
        with pytest.raises(ValidationFailed):
            lending.decide(
                session,
                actor=officer,
                application_id=second.id,
                now=NOW,
                data=lending.ApplicationDecision(action="refuse"),
            )
        refused_app = lending.decide(
            session,
            actor=officer,
            application_id=second.id,
            now=NOW,
            data=lending.ApplicationDecision(action="refuse", reason="流水不足"),
        )
        assert refused_app.refusal_reason == "流水不足"
        # The bank's staff see their bank's applications.
        # The bank's staff see their bank's applications (the test's officer sees its county's too).
        seen = {a.id: a.bank_name for a in lending.list_applications(session, viewer=officer, limit=500)}
        assert {app.id, second.id} <= set(seen) and seen[app.id] == "一号银行"
        after = lending.figures(session)
    assert after.registered_firms == before.registered_firms + 1
    assert after.credit_lines_granted == before.credit_lines_granted + 1
    assert after.credit_line_total == before.credit_line_total + 300_000
    assert after.loans_issued == before.loans_issued + 1 and after.loan_total == before.loan_total + 250_000
    assert after.applications == before.applications + 2

    env = env_for(tmp_path, template_db)
    env["CITYOPS_DATABASE_URL"] = str(db.engine.url)
    shown = run(env, "credit", "lending", "figures", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == after.model_dump(mode="json")


def test_the_lending_hall(client: TestClient, db: Database, firm: int) -> None:
    with db.session() as session:
        bank = lending.create_bank(session, actor=None, data=lending.BankCreate(code="b1", name="一号银行"))
        lending.publish_product(session, actor=None, data=product(bank.id, "批发贷", sections=["F"]))
        lending.publish_product(session, actor=None, data=product(bank.id, "惠农贷", divisions=["01"]))
    login(client, "inspector")
    hall = client.get(f"/credit/lending?entity_id={firm}")
    assert hall.status_code == 200 and "信易贷大厅" in hall.text and "批发贷" in hall.text
    assert hall.text.count('data-matches="yes"') >= 1 and 'data-matches="no"' in hall.text
    english = client.get(f"/credit/lending?entity_id={firm}&lang=en")
    assert "Lending hall" in english.text and "Matches for an entity" in english.text
    login(client, "village1.grid")
    assert client.get("/credit/lending").status_code == 403
