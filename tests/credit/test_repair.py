"""Credit repair: a penalty served with its four documents, eligibility after the minimum publication
(the clock is the `now` each service takes), repair through a credit_repair case, publication ended by
a repair or by the maximum period, reminders, missing materials, a failed document, the signed exchange."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.cases import service as case_service
from cityops.config import Settings
from cityops.core.auth.models import User
from cityops.core.db import Database
from cityops.core.errors import Conflict, ValidationFailed
from cityops.core.notifications import Notification
from cityops.credit import records, repair
from cityops.credit.models import (
    CreditRecord,
    Entity,
    EntityMessage,
    ExchangePartner,
    PenaltyDocument,
    PenaltyServing,
    RepairApplication,
)
from cityops.places import service as places_service
from tests.accounts.helpers import login

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Hebi, a Monday


def pdf_text(data: bytes) -> str:
    """The text of the PDF's (uncompressed) text strings: reportlab writes CID text as UTF-16BE."""
    out = []
    for raw in re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", data):
        unescaped = re.sub(
            rb"\\([0-7]{1,3}|.)",
            lambda m: (
                bytes([int(m[1], 8)])
                if m[1][:1].isdigit()
                else {b"n": b"\n", b"r": b"\r", b"t": b"\t"}.get(m[1], m[1])
            ),
            raw,
        )
        out.append(unescaped.decode("utf-16-be", errors="replace"))
    return "".join(out)


def user(session: Any, username: str) -> User:
    found = session.scalar(select(User).where(User.username == username))
    assert found is not None
    return found


def an_entity(session: Any) -> Entity:
    found = session.scalars(
        select(Entity).where(Entity.status == "active", Entity.lon.is_not(None)).order_by(Entity.id)
    ).first()
    assert found is not None
    return found


def penalty(entity_id: int, number: str = "鹤市监罚〔2026〕12号", **overrides: Any) -> repair.PenaltyCreate:
    values: dict[str, Any] = {
        "entity_id": entity_id,
        "decision_number": number,
        "title": "销售不符合食品安全标准的食品",
        "severity": "general",
        "decided_on": T0.date(),
        "fine": 5000,
        "facts": "抽检不合格",
        "basis": "《中华人民共和国食品安全法》第一百二十四条",
        "served_to": "张三（法定代表人）",
        "channel": "in_person",
        **overrides,
    }
    return repair.PenaltyCreate(**values)


def files_in(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def move(
    session: Any, actor: User, application_id: int, action: str, now: datetime, reason: str = ""
) -> repair.RepairRead:
    return repair.decide(
        session,
        actor=actor,
        application_id=application_id,
        now=now,
        data=repair.RepairDecision.model_validate({"action": action, "reason": reason}),
    )


def complete_application(session: Any, inspector: User, entity: Entity, root: Path) -> repair.RepairRead:
    """A minor penalty issued at T0 (repairable at once) and a complete application for it."""
    issued = repair.issue_penalty(
        session, actor=inspector, data=penalty(entity.id, severity="minor"), now=T0, files_root=root
    )
    return repair.apply_for_repair(
        session,
        actor=inspector,
        index=places_service.build_index(session),
        now=T0,
        data=repair.RepairApply(
            record_id=issued.record_id,
            corrected=True,
            obligations_fulfilled=True,
            fine_paid_on=T0.date(),
            commitment_text="承诺",
        ),
    )


def test_a_penalty_is_served_repaired_through_a_case_and_its_publication_ends(
    db: Database, settings: Settings
) -> None:
    root = Path(settings.attachments_dir)
    with db.session() as session:
        inspector = user(session, "inspector")
        entity = an_entity(session)
        issued = repair.issue_penalty(
            session, actor=inspector, data=penalty(entity.id), files_root=root, now=T0
        )
        record_id, entity_id, name = issued.record_id, entity.id, entity.name
    # The four documents, served together, each a PDF naming the entity and the decision.
    assert [d.kind for d in issued.documents] == ["decision", "repair_notice", "commitment", "guidance"]
    texts = {d.kind: pdf_text(repair.files.open_path(root, d.sha256).read_bytes()) for d in issued.documents}
    for kind, title in (
        ("decision", "行政处罚决定书"),
        ("repair_notice", "信用修复告知书"),
        ("commitment", "信用承诺书"),
        ("guidance", "合规经营指导建议书"),
    ):
        assert title in texts[kind] and name in texts[kind], kind
    assert "罚款人民币5000元" in texts["decision"]
    assert "2026-06-02" in texts["repair_notice"]  # from when a repair may be applied for
    assert issued.serving is not None and issued.serving.served_to == "张三（法定代表人）"
    assert issued.serving.channel == "in_person" and issued.serving.served_at == T0
    # A general penalty: published one year, repairable after three months.
    assert issued.publicity_until == date(2027, 3, 1) and issued.eligible_on == date(2026, 6, 2)

    with db.sessions() as session:
        places = places_service.build_index(session)
    # A month later: not yet, and the answer says from when.
    with db.session() as session, pytest.raises(ValidationFailed) as refused:
        repair.apply_for_repair(
            session,
            actor=user(session, "inspector"),
            index=places,
            now=T0 + timedelta(days=30),
            data=repair.RepairApply(record_id=record_id, corrected=True),
        )
    assert "2026-06-02" in refused.value.message and refused.value.detail == {"eligible_on": "2026-06-02"}

    # The entity is told once, the day it becomes eligible (not the day before).
    def messages() -> list[EntityMessage]:
        with db.sessions() as session:
            return list(session.scalars(select(EntityMessage).where(EntityMessage.record_id == record_id)))

    repair.remind(db, now=datetime(2026, 6, 1, 2, tzinfo=UTC))
    assert messages() == []
    repair.remind(db, now=datetime(2026, 6, 2, 2, tzinfo=UTC))
    repair.remind(db, now=datetime(2026, 6, 3, 2, tzinfo=UTC))
    [message] = messages()
    assert message.entity_id == entity_id and name in message.addressed_to and "2026-06-02" in message.body
    with db.session() as session:  # the gateway reads what to send and acknowledges it
        inspector = user(session, "inspector")
        assert message.id in [m.id for m in repair.outbox(session, actor=inspector)]
        repair.mark_sent(
            session, actor=inspector, message_id=message.id, now=datetime(2026, 6, 2, 3, tzinfo=UTC)
        )
        assert message.id not in [m.id for m in repair.outbox(session, actor=inspector)]

    applied_at = datetime(2026, 6, 3, 2, tzinfo=UTC)
    with db.session() as session:
        inspector = user(session, "inspector")
        app = repair.apply_for_repair(
            session,
            actor=inspector,
            index=places,
            now=applied_at,
            data=repair.RepairApply(
                record_id=record_id,
                corrected=True,
                obligations_fulfilled=True,
                fine_paid_on=date(2026, 3, 20),
                commitment_text="本单位承诺依法诚信经营。",
            ),
        )
        assert app.status == "submitted" and app.missing == [] and app.case_id is not None
        assert app.deadline_at is not None and app.deadline_at > applied_at
        case = case_service.get_case(session, viewer=user(session, "admin"), case_id=app.case_id)
        assert case.type_code == "credit_repair" and case.status == "reported"
        assert case.org_unit is not None and case.org_unit.code == "dept-market"
        # The generic case actions cannot move it: only the repair service does.
        assert case.allowed_actions == []
        # A second application for the same penalty waits for this one.
        with pytest.raises(Conflict):
            repair.apply_for_repair(
                session,
                actor=inspector,
                index=places,
                now=applied_at,
                data=repair.RepairApply(record_id=record_id),
            )
        move(session, inspector, app.id, "accept", applied_at + timedelta(hours=1))
        granted = move(session, inspector, app.id, "grant", applied_at + timedelta(hours=2))
        assert granted.status == "repaired"
        case = case_service.get_case(session, viewer=user(session, "admin"), case_id=app.case_id)
        assert case.status == "closed"
        timeline = case_service.timeline(session, viewer=user(session, "admin"), case_id=app.case_id)
        assert [line.action for line in timeline] == ["report", "accept", "resolve"]
    with db.sessions() as session:
        record = session.get(CreditRecord, record_id)
        assert record is not None and record.status == "repaired"  # no longer published
        assert record.details["repaired_on"] == "2026-06-03"
        commitment = session.get(CreditRecord, granted.commitment_record_id)
        assert (
            commitment is not None and commitment.kind == "commitment" and commitment.entity_id == entity_id
        )


def test_a_repair_obtained_with_false_materials_is_revoked(db: Database, settings: Settings) -> None:
    with db.session() as session:
        inspector, admin = user(session, "inspector"), user(session, "admin")
        app = complete_application(session, inspector, an_entity(session), Path(settings.attachments_dir))
        for action in ("accept", "grant"):
            move(session, inspector, app.id, action, T0)
        with pytest.raises(ValidationFailed):  # not without its reason
            move(session, inspector, app.id, "revoke", T0)
        revoked = move(session, inspector, app.id, "revoke", T0 + timedelta(days=5), reason="缴款凭证系伪造")
        assert revoked.status == "refused" and revoked.refusal_reason == "撤销信用修复：缴款凭证系伪造"
        record = session.get(CreditRecord, app.record_id)
        assert record is not None and record.status == "active"  # published again until 2026-06-01
        assert app.case_id is not None
        timeline = case_service.timeline(session, viewer=admin, case_id=app.case_id)
        assert [line.action for line in timeline] == ["report", "accept", "resolve", "reopen", "reject"]
        with pytest.raises(Conflict):
            move(session, inspector, app.id, "grant", T0)


def test_publication_ends_by_itself_at_the_maximum_period(db: Database, settings: Settings) -> None:
    with db.session() as session:
        entity = an_entity(session)
        issued = repair.issue_penalty(
            session,
            actor=user(session, "inspector"),
            now=T0,
            files_root=Path(settings.attachments_dir),
            data=penalty(entity.id, severity="minor", fine=None),
        )
    assert issued.publicity_until == date(2026, 6, 1)  # three months at most

    def status() -> str:
        with db.sessions() as session:
            record = session.get(CreditRecord, issued.record_id)
            assert record is not None
            return record.status

    job = records.publicity_job()
    job.run(db, datetime(2026, 6, 1, 15, tzinfo=UTC))  # 23:00 on its last day in Hebi
    assert status() == "active"
    job.run(db, datetime(2026, 6, 1, 16, 30, tzinfo=UTC))  # 00:30 the next day
    assert status() == "ended"


def test_an_application_missing_materials_is_refused_naming_each(db: Database, settings: Settings) -> None:
    with db.session() as session:
        inspector = user(session, "inspector")
        entity = an_entity(session)
        issued = repair.issue_penalty(
            session,
            actor=inspector,
            data=penalty(entity.id),
            now=T0,
            files_root=Path(settings.attachments_dir),
        )
        places = places_service.build_index(session)
        now = datetime(2026, 7, 1, 2, tzinfo=UTC)
        app = repair.apply_for_repair(
            session,
            actor=inspector,
            index=places,
            now=now,
            data=repair.RepairApply(record_id=issued.record_id, corrected=True, obligations_fulfilled=True),
        )
        # The fine was not shown paid, and no commitment was made.
        assert app.status == "refused" and app.missing == ["obligations_fulfilled", "commitment"]
        assert app.refusal_reason is not None
        assert (
            "已履行行政处罚义务（罚款已缴纳）" in app.refusal_reason
            and "已作出并公示信用承诺" in app.refusal_reason
        )
        assert "失信行为已纠正" not in app.refusal_reason
        assert app.case_id is not None
        case = case_service.get_case(session, viewer=user(session, "admin"), case_id=app.case_id)
        assert case.status == "rejected"
        # Refused applications may be followed by a complete one.
        again = repair.apply_for_repair(
            session,
            actor=inspector,
            index=places,
            now=now,
            data=repair.RepairApply(
                record_id=issued.record_id,
                corrected=True,
                obligations_fulfilled=True,
                fine_paid_on=date(2026, 4, 1),
                commitment_text="承诺守信经营",
            ),
        )
        assert again.status == "submitted"
        record = session.get(CreditRecord, issued.record_id)
        assert record is not None and record.status == "active"


def test_staff_are_reminded_before_an_applications_deadline(db: Database, settings: Settings) -> None:
    with db.session() as session:
        inspector = user(session, "inspector")
        entity = an_entity(session)
        app = complete_application(session, inspector, entity, Path(settings.attachments_dir))
        inspector_id, deadline, entity_name = inspector.id, app.deadline_at, entity.name
    assert deadline is not None

    def notices() -> list[Notification]:
        with db.sessions() as session:
            return list(
                session.scalars(
                    select(Notification).where(
                        Notification.user_id == inspector_id,
                        Notification.link == f"/credit/repair/applications/{app.id}",
                    )
                )
            )

    repair.remind(db, now=T0 + timedelta(hours=1))
    assert notices() == []
    near = deadline - timedelta(hours=2)
    repair.remind(db, now=near)
    repair.remind(db, now=near + timedelta(minutes=5))  # once only
    [notice] = notices()
    assert notice.title == repair.DEADLINE_TITLE and notice.params["entity"] == entity_name


def test_a_document_that_fails_leaves_nothing(db: Database, settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "documents.yaml"
    shutil.copyfile(repair.DOCUMENTS_PATH, broken)
    text = broken.read_text(encoding="utf-8").replace(
        '{{ entity.name }}："\n    - "针对你单位被处罚的问题',
        '{{ entity.nmae }}："\n    - "针对你单位被处罚的问题',
    )
    broken.write_text(text, encoding="utf-8")
    root = Path(settings.attachments_dir)
    with db.session() as session:
        before = session.scalar(select(func.count(CreditRecord.id)))
        entity = an_entity(session)
        with pytest.raises(repair.DocumentFailed) as failed:
            repair.issue_penalty(
                session,
                actor=user(session, "inspector"),
                data=penalty(entity.id),
                files_root=root,
                now=T0,
                templates=broken,
            )
    assert "'guidance'" in failed.value.message and "合规经营指导建议书" in failed.value.message
    assert "nmae" in failed.value.message
    with db.sessions() as session:
        assert session.scalar(select(func.count(CreditRecord.id))) == before
        assert session.scalar(select(func.count(PenaltyDocument.id))) == 0
        assert session.scalar(select(func.count(PenaltyServing.record_id))) == 0
    assert files_in(root) == []


def test_issuing_over_the_api(client: TestClient, db: Database) -> None:
    with db.sessions() as session:
        entity_id = an_entity(session).id
    login(client, "inspector")
    body = {**penalty(entity_id).model_dump(mode="json"), "decided_on": date.today().isoformat()}
    created = client.post("/api/credit/penalties", json=body)
    assert created.status_code == 201, created.text
    found = created.json()
    assert len(found["documents"]) == 4
    pdf = client.get(found["documents"][0]["url"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and "行政处罚决定书" in pdf_text(pdf.content)
    again = client.post("/api/credit/penalties", json=body)  # a retry of the same decision
    assert again.status_code == 409 and "already been issued" in again.json()["message"]
    unpublished = client.post(
        "/api/credit/penalties", json={**body, "decision_number": "X-2", "publish": False}
    )
    assert unpublished.status_code == 422 and unpublished.json()["field"] == "publish"
    control = client.post("/api/credit/penalties", json={**body, "decision_number": "X-\u0000", "title": "a"})
    assert control.status_code == 422 and "U+0000" in control.text
    eligibility = client.get(f"/api/credit/penalties/{found['record_id']}/eligibility").json()
    assert eligibility["eligible"] is False and eligibility["eligible_on"] == found["eligible_on"]
    with db.sessions() as session:
        assert session.scalar(select(func.count(RepairApplication.id))) == 0
    login(client, "village1.grid")  # no credit.view
    assert client.post("/api/credit/penalties", json={**body, "decision_number": "X-3"}).status_code == 403


# --- the exchange -----------------------------------------------------------------------------------


@pytest.fixture
def partner_record(db: Database) -> tuple[int, str]:
    """A penalty pushed by Anyang's platform about one of our entities, and the partner registered."""
    with db.session() as session:
        entity = an_entity(session)
        record = CreditRecord(
            entity_id=entity.id,
            kind="penalty",
            source="anyang-samr",
            source_record_id="AY-77",
            title="虚假宣传",
            severity="general",
            decided_on=date(2025, 1, 2),
            publicity_until=date(2026, 1, 1) + timedelta(days=3650),
            status="active",
        )
        session.add(record)
        session.add(ExchangePartner(code="anyang-410500", name="安阳市信用平台"))
        session.flush()
        return record.id, entity.code


def signed(
    settings: Settings,
    code: str,
    *,
    nonce: str = "anyang-0001",
    partner: str = "anyang-410500",
    signed_at: datetime | None = None,
    key_of: str | None = None,
) -> dict[str, Any]:
    message = repair.ExchangeMessage(
        partner=partner,
        nonce=nonce,
        signed_at=signed_at or datetime.now(UTC),
        result=repair.ExchangeResult(
            entity_code=code,
            source="anyang-samr",
            source_record_id="AY-77",
            status="repaired",
            repaired_on=date(2026, 5, 1),
        ),
    )
    key = repair.partner_key(settings.derived_secret, key_of or partner)
    return repair.sign(message, key).model_dump(mode="json")


def test_a_partners_signed_result_is_applied_once(
    client: TestClient, settings: Settings, db: Database, partner_record: tuple[int, str]
) -> None:
    record_id, code = partner_record
    good = signed(settings, code)
    response = client.post("/api/credit/repair-exchange", json=good)
    assert response.status_code == 200, response.text
    assert response.json() == {"record_id": record_id, "status": "repaired", "changed": True}
    replay = client.post("/api/credit/repair-exchange", json=good)
    assert replay.status_code == 409 and "replay" in replay.json()["message"]
    with db.sessions() as session:
        record = session.get(CreditRecord, record_id)
        assert record is not None and record.status == "repaired"
        assert record.details["repaired_by"] == "anyang-410500"


def test_the_exchange_refuses_what_it_cannot_trust(
    client: TestClient, settings: Settings, db: Database, partner_record: tuple[int, str]
) -> None:
    record_id, code = partner_record
    unknown = client.post("/api/credit/repair-exchange", json=signed(settings, code, partner="xinxiang"))
    assert unknown.status_code == 401 and "unknown partner 'xinxiang'" in unknown.json()["message"]
    forged = client.post("/api/credit/repair-exchange", json=signed(settings, code, key_of="someone-else"))
    assert forged.status_code == 401 and "bad signature" in forged.json()["message"]
    tampered = signed(settings, code)
    tampered["message"]["result"]["source_record_id"] = "AY-78"
    assert client.post("/api/credit/repair-exchange", json=tampered).status_code == 401
    stale = signed(settings, code, signed_at=datetime.now(UTC) - timedelta(hours=1))
    response = client.post("/api/credit/repair-exchange", json=stale)
    assert response.status_code == 401 and "window" in response.json()["message"]
    with db.sessions() as session:
        record = session.get(CreditRecord, record_id)
        assert record is not None and record.status == "active"


def test_our_repairs_go_out_signed_for_each_partner(
    client: TestClient, settings: Settings, db: Database, partner_record: tuple[int, str]
) -> None:
    with db.session() as session:
        inspector = user(session, "inspector")
        entity = an_entity(session)
        app = complete_application(session, inspector, entity, Path(settings.attachments_dir))
        move(session, inspector, app.id, "accept", T0)
        move(session, inspector, app.id, "grant", T0)
    login(client, "inspector")
    response = client.get("/api/credit/repair-exchange/outgoing", params={"partner": "anyang-410500"})
    assert response.status_code == 200, response.text
    [message] = response.json()
    assert message["message"]["result"]["source_record_id"] == "鹤市监罚〔2026〕12号"
    assert message["message"]["result"]["entity_code"] == entity.code
    parsed = repair.SignedMessage.model_validate(message)
    key = repair.partner_key(settings.derived_secret, "anyang-410500")
    assert repair.sign(parsed.message, key).signature == parsed.signature
    other = client.get("/api/credit/repair-exchange/outgoing", params={"partner": "nobody"})
    assert other.status_code == 404


def test_the_repair_pages_in_chinese_and_english(client: TestClient, db: Database) -> None:
    with db.sessions() as session:
        entity = an_entity(session)
        entity_id, name = entity.id, entity.name
    login(client, "inspector")
    body = {
        **penalty(entity_id, severity="minor").model_dump(mode="json"),
        "decided_on": date.today().isoformat(),
    }
    issued = client.post("/api/credit/penalties", json=body).json()
    applied = client.post(
        "/api/credit/repair/applications",
        json={
            "record_id": issued["record_id"],
            "corrected": True,
            "obligations_fulfilled": True,
            "fine_paid_on": date.today().isoformat(),
            "commitment_text": "承诺",
        },
    )
    assert applied.status_code == 201, applied.text
    app_id = applied.json()["id"]
    listing = client.get("/credit/repair")
    assert listing.status_code == 200 and name in listing.text and "信用修复申请" in listing.text
    page = client.get(f"/credit/penalties/{issued['record_id']}")
    assert page.status_code == 200
    for title in ("行政处罚决定书", "信用修复告知书", "信用承诺书", "合规经营指导建议书"):
        assert title in page.text
    assert "Credit repair notice" in client.get(f"/credit/penalties/{issued['record_id']}?lang=en").text
    client.get("/credit/repair?lang=zh")
    for action in ("accept", "grant"):
        moved = client.post(
            f"/credit/repair/applications/{app_id}/decision", data={"action": action}, follow_redirects=False
        )
        assert moved.status_code == 303, moved.text
    done = client.get(f"/credit/repair/applications/{app_id}")
    assert 'data-status="repaired"' in done.text and "已修复" in done.text
    # A move the state no longer allows is shown on the page with the reason, not a crash.
    again = client.post(f"/credit/repair/applications/{app_id}/decision", data={"action": "grant"})
    assert again.status_code == 409 and "not &#39;grant&#39;" in again.text


@pytest.mark.postgres
def test_repair_and_lending_on_postgres(pg_url: str, tmp_path: Path) -> None:
    from cityops import all_models
    from cityops.core.db import Base
    from cityops.core.seeding import seed
    from cityops.credit import lending

    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        seed(db, scale="small", seed=7, quiet=True, files_root=tmp_path / "seed-files")
        with db.sessions() as session:
            shown = lending.figures(session)
        assert shown.banks == 3 and shown.registered_firms == 40 and shown.loans_issued > 0
        with db.session() as session:
            inspector = user(session, "inspector")
            app = complete_application(session, inspector, an_entity(session), tmp_path / "files")
            for action in ("accept", "grant"):
                move(session, inspector, app.id, action, T0)
        repair.remind(db, now=T0 + timedelta(days=1))
        with db.sessions() as session:
            record = session.get(CreditRecord, app.record_id)
            assert record is not None and record.status == "repaired"
            assert repair.count_applications(session) == {"repaired": 1}
    finally:
        db.dispose()
