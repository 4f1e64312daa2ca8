"""Credit records from departments' systems: a batch through the API with a department's token, a retry
that adds nothing twice, a refused batch that stores nothing and names each bad record, the checks of
each kind, the records of an entity in scope, the file import by CLI, and publication ending by itself."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.sessions import issue_token
from cityops.core.db import Database, utcnow
from cityops.core.errors import ValidationFailed
from cityops.core.scheduler import run_due
from cityops.credit import records
from cityops.credit.models import CreditRecord, Entity
from tests.accounts.helpers import login
from tests.accounts.test_cli import env_for, run

SOURCE = "hebi-emergency-penalty"


def token_for(db: Database, username: str) -> dict[str, str]:
    """The header of an API token of a demo account, as a department's system holds one."""
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        _row, token = issue_token(session, user=user, name=f"{username} system", days=None)
    return {"Authorization": f"Bearer {token}"}


def entity_codes(db: Database, n: int = 3) -> list[str]:
    with db.sessions() as session:
        return list(session.scalars(select(Entity.code).order_by(Entity.id).limit(n)))


def batch(codes: list[str], today: date) -> list[dict[str, Any]]:
    return [
        {
            "entity_code": codes[0],
            "kind": "penalty",
            "source_record_id": "鹤应急罚〔2026〕1号",
            "title": "未按规定进行安全生产教育培训",
            "severity": "general",
            "amount": 20_000,
            "decided_on": (today - timedelta(days=30)).isoformat(),
            "publicity_until": (today + timedelta(days=150)).isoformat(),
        },
        {
            "entity_code": codes[1],
            "kind": "licence",
            "source_record_id": "危化经-0042",
            "title": "危险化学品经营许可证",
            "decided_on": (today - timedelta(days=400)).isoformat(),
            "valid_until": (today + timedelta(days=700)).isoformat(),
        },
        {
            "entity_code": codes[2],
            "kind": "penalty",
            "source_record_id": "鹤应急罚〔2026〕2号",
            "title": "未按规定设置安全警示标志",
            "severity": "minor",
            "decided_on": (today - timedelta(days=10)).isoformat(),
        },
    ]


def count(db: Database, source: str = SOURCE) -> int:
    with db.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(CreditRecord).where(CreditRecord.source == source)
            )
            or 0
        )


def test_a_retry_updates_instead_of_duplicating(client: TestClient, db: Database) -> None:
    headers = token_for(db, "emergency.handler")
    today = records.today_of(utcnow())
    sent = batch(entity_codes(db), today)
    first = client.post("/api/credit/records", headers=headers, json={"source": SOURCE, "records": sent})
    assert first.status_code == 200, first.text
    assert (first.json()["created"], first.json()["updated"], first.json()["unchanged"]) == (3, 0, 0)
    assert [i["outcome"] for i in first.json()["items"]] == ["created"] * 3
    ids = [i["id"] for i in first.json()["items"]]
    again = client.post("/api/credit/records", headers=headers, json={"source": SOURCE, "records": sent})
    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 3)
    sent[1]["valid_until"] = (today + timedelta(days=900)).isoformat()  # the licence was extended
    third = client.post("/api/credit/records", headers=headers, json={"source": SOURCE, "records": sent})
    assert [i["outcome"] for i in third.json()["items"]] == ["unchanged", "updated", "unchanged"]
    assert [i["id"] for i in third.json()["items"]] == ids
    assert count(db) == 3
    with db.sessions() as session:
        units = set(
            session.scalars(
                select(OrgUnit.code)
                .join(CreditRecord, CreditRecord.org_unit_id == OrgUnit.id)
                .where(CreditRecord.source == SOURCE)
            )
        )
        licence = session.scalar(select(CreditRecord).where(CreditRecord.source_record_id == "危化经-0042"))
    assert units == {"dept-emergency"}  # the sender's own department
    assert licence is not None and licence.valid_until == today + timedelta(days=900)


def test_a_refused_batch_stores_nothing_and_names_each_record(client: TestClient, db: Database) -> None:
    headers = token_for(db, "emergency.handler")
    today = records.today_of(utcnow())
    sent = batch(entity_codes(db), today)
    sent.append(
        {
            "entity_code": sent[0]["entity_code"],
            "kind": "penalty",
            "source_record_id": "x-3",
            "title": "无程度的处罚",
            "decided_on": today.isoformat(),
        }
    )  # 3: no severity
    sent.append(
        {
            "entity_code": sent[0]["entity_code"],
            "kind": "tax_grade",
            "source_record_id": "x-4",
            "title": "2025年度纳税信用级别",
            "decided_on": today.isoformat(),
        }
    )  # 4: no grade
    sent.append(
        {
            "entity_code": "91410611MA99999999",
            "kind": "honour",
            "source_record_id": "x-5",
            "title": "诚信示范",
            "decided_on": today.isoformat(),
        }
    )  # 5: not a valid code
    sent.append(
        {
            "entity_code": sent[0]["entity_code"],
            "kind": "penalty",
            "source_record_id": "x-6",
            "title": "公示过长",
            "severity": "minor",
            "decided_on": today.isoformat(),
            "publicity_until": (today + timedelta(days=365)).isoformat(),
        }
    )  # 6: minor: 3 months at most
    response = client.post("/api/credit/records", headers=headers, json={"source": SOURCE, "records": sent})
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [
        (3, "severity"),
        (4, "grade"),
        (5, "entity_code"),
        (6, "publicity_until"),
    ]
    assert "nothing of the batch was stored" in response.json()["message"]
    assert count(db) == 0  # the three good records were not stored either


def test_without_credit_report_a_batch_is_forbidden(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    today = records.today_of(utcnow())
    response = client.post(
        "/api/credit/records", json={"source": SOURCE, "records": batch(entity_codes(db), today)}
    )
    assert response.status_code == 403 and "credit.report" in response.json()["message"]
    assert count(db) == 0


def test_a_department_reports_its_own_department_only(client: TestClient, db: Database) -> None:
    today = records.today_of(utcnow())
    sent = batch(entity_codes(db), today)[:1]
    sent[0]["department"] = "dept-market"
    response = client.post(
        "/api/credit/records",
        headers=token_for(db, "emergency.handler"),
        json={"source": SOURCE, "records": sent},
    )
    assert response.status_code == 422
    assert response.json()["detail"]["errors"][0]["field"] == "department"


TODAY = date(2026, 6, 1)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"kind": "penalty", "severity": None}, "severity", "needs its severity"),
        ({"kind": "licence", "severity": "minor"}, "severity", "only a penalty"),
        ({"kind": "tax_grade"}, "grade", "needs its grade"),
        ({"kind": "tax_grade", "grade": "Z"}, "grade", "needs its grade"),
        ({"kind": "honour", "grade": "A"}, "grade", "only a tax_grade"),
        ({"kind": "penalty", "severity": "general", "publicity_until": None}, "publicity_until", "needs its"),
        (
            {"kind": "penalty", "severity": "general", "publicity_until": TODAY - timedelta(days=70)},
            "publicity_until",
            "at least 3 months",
        ),
        (
            {"kind": "penalty", "severity": "serious", "publicity_until": TODAY + timedelta(days=4 * 365)},
            "publicity_until",
            "at most",
        ),
        ({"kind": "abnormal", "publicity_until": TODAY - timedelta(days=400)}, "publicity_until", "before"),
        ({"decided_on": TODAY + timedelta(days=1)}, "decided_on", "in the future"),
        ({"kind": "weather"}, "kind", "unknown kind"),
        ({"title": "  "}, "title", "1-200"),
        ({"amount": -5}, "amount", "0 or more"),
        ({"entity_code": "91110000710926094Q"}, "entity_code", "check character"),
    ],
)
def test_each_kind_is_checked(change: dict[str, Any], field: str, words: str) -> None:
    values: dict[str, Any] = {
        "entity_code": "91110000710926094P",
        "kind": "honour",
        "source_record_id": "r1",
        "title": "守合同重信用企业",
        "decided_on": TODAY - timedelta(days=100),
    }
    values.update(change)
    with pytest.raises(ValidationFailed) as refused:
        records.check_record(records.RecordIn(**values), today=TODAY)
    assert refused.value.field == field and words in refused.value.message


def test_sensible_records_pass() -> None:
    penalty = records.RecordIn(
        entity_code="9111 0000 7109 2609 4P",
        kind="penalty",
        source_record_id=" p1 ",
        title="虚假宣传",
        severity="serious",
        decided_on=TODAY,
        publicity_until=TODAY + timedelta(days=3 * 365),
    )
    checked = records.check_record(penalty, today=TODAY)
    assert (checked.entity_code, checked.source_record_id) == ("91110000710926094P", "p1")
    grade = records.RecordIn(
        entity_code="91110000710926094P",
        kind="tax_grade",
        source_record_id="t1",
        title="2025年度纳税信用级别",
        grade="m",
        decided_on=TODAY,
    )
    assert records.check_record(grade, today=TODAY).grade == "M"


def test_an_entity_s_records_in_scope(client: TestClient, db: Database) -> None:
    today = records.today_of(utcnow())
    codes = entity_codes(db)
    client.post(
        "/api/credit/records",
        headers=token_for(db, "emergency.handler"),
        json={"source": SOURCE, "records": batch(codes, today)},
    )
    login(client, "inspector")
    found = client.get(f"/api/credit/entities/{codes[0]}/records")
    assert found.status_code == 200, found.text
    mine = [r for r in found.json()["items"] if r["source"] == SOURCE]
    assert [(r["kind"], r["severity"], r["public"]) for r in mine] == [("penalty", "general", True)]
    assert mine[0]["department"] == "鹤壁市应急管理局"
    unpublished = client.get(f"/api/credit/entities/{codes[2]}/records").json()["items"]
    # A minor penalty without a publicity period stays unpublished.
    assert [r["public"] for r in unpublished if r["source"] == SOURCE] == [False]
    assert client.get("/api/credit/entities/91110000710926094P/records").status_code == 404


def test_publication_ends_by_itself(db: Database) -> None:
    now = utcnow()
    today = records.today_of(now)
    code = entity_codes(db, 1)[0]
    with db.session() as session:
        records.save_records(
            session,
            source=SOURCE,
            actor=None,
            today=today,
            items=[
                records.RecordIn(
                    entity_code=code,
                    kind="penalty",
                    source_record_id="p-end",
                    title="虚假宣传",
                    severity="general",
                    decided_on=today - timedelta(days=100),
                    publicity_until=today + timedelta(days=10),
                )
            ],
        )
    job = records.publicity_job()

    def status() -> str:
        with db.sessions() as session:
            found = session.scalar(
                select(CreditRecord.status).where(CreditRecord.source_record_id == "p-end")
            )
        assert found is not None
        return found

    assert run_due(db, [job], now=now + timedelta(days=10)) == [job.name]
    assert status() == "active"  # its last day of publicity
    assert run_due(db, [job], now=now + timedelta(days=11)) == [job.name]
    assert status() == "ended"


def test_import_records_by_cli(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    db = Database(env["CITYOPS_DATABASE_URL"])
    codes = entity_codes(db)
    db.dispose()
    today = records.today_of(utcnow())
    rows = [
        ["统一社会信用代码", "类别", "记录编号", "标题", "严重程度", "决定日期", "公示截止日期"],
        [
            codes[0],
            "行政处罚",
            "鹤市监罚〔2026〕7号",
            "虚假宣传",
            "一般",
            (today - timedelta(days=5)).isoformat(),
            (today + timedelta(days=175)).isoformat(),
        ],
        [codes[1], "荣誉", "HONOUR-1", "守合同重信用企业", "", (today - timedelta(days=50)).isoformat(), ""],
    ]
    good = tmp_path / "records.csv"
    good.write_text("\n".join(",".join(r) for r in rows), encoding="utf-8")
    created = run(env, "credit", "import-records", str(good), "--source", "hebi-samr-penalty-file")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "created 2, updated 0, unchanged 0"
    assert (
        run(env, "credit", "import-records", str(good), "--source", "hebi-samr-penalty-file").stdout.strip()
        == "created 0, updated 0, unchanged 2"
    )
    bad = tmp_path / "bad.csv"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows(
        [
            *rows,
            [codes[2], "行政处罚", "X-9", "无程度", "", today.isoformat(), ""],
            [codes[2], "纳税信用", "X-10", "2025年度", "", "明天", ""],
        ]
    )
    bad.write_text(out.getvalue(), encoding="utf-8")
    refused = run(env, "credit", "import-records", str(bad), "--source", "hebi-samr-penalty-file")
    assert refused.returncode == 1
    assert "line 4: severity: a penalty needs its severity" in refused.stderr
    assert "line 5: decided_on: '明天' is not a date" in refused.stderr
    assert "nothing was stored" in refused.stderr and "Traceback" not in refused.stderr


def test_import_an_excel_file_through_the_api(client: TestClient, db: Database) -> None:
    from openpyxl import Workbook

    codes = entity_codes(db)
    today = records.today_of(utcnow())
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["统一社会信用代码", "类别", "记录编号", "标题", "纳税信用级别", "决定日期"])
    sheet.append([codes[0], "纳税信用", "T-2025-1", "2025年度纳税信用级别", "A", today - timedelta(days=3)])
    sheet.append([codes[1], "纳税信用", "T-2025-2", "2025年度纳税信用级别", "", today - timedelta(days=3)])
    out = io.BytesIO()
    book.save(out)
    files = {
        "file": (
            "纳税信用.xlsx",
            out.getvalue(),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    }
    headers = token_for(db, "emergency.handler")
    refused = client.post(
        "/api/credit/records/import", headers=headers, files=files, data={"source": "hebi-tax"}
    )
    assert refused.status_code == 422, refused.text
    assert [(e["index"], e["field"]) for e in refused.json()["detail"]["errors"]] == [(3, "grade")]
    assert count(db, "hebi-tax") == 0
    sheet.delete_rows(3)
    out = io.BytesIO()
    book.save(out)
    files["file"] = ("纳税信用.xlsx", out.getvalue(), files["file"][2])
    saved = client.post(
        "/api/credit/records/import", headers=headers, files=files, data={"source": "hebi-tax"}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["created"] == 1 and saved.json()["items"][0]["index"] == 2  # the file's line
