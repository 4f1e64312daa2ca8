"""The credit API: the code check, the entity list with its filters and Excel export, an entity with its
legal representative masked per role, the import, and who may see what."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from cityops.core.auth.models import AuditEntry
from cityops.core.db import Database
from cityops.core.export import XLSX_MEDIA_TYPE
from tests.accounts.helpers import login, logout
from tests.credit.helpers import BUILT, new_code, register_csv, village_point

ID_NUMBER = "410611199001011238"


def import_file(client: TestClient, data: bytes, filename: str = "register.csv") -> dict[str, Any]:
    response = client.post("/api/credit/entities/import", files={"file": (filename, data, "text/csv")})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def registered(client: TestClient, db: Database) -> dict[str, int]:
    """A firm in village 1 (with its legal representative's ID number) and a shop in village 2, imported
    by the market regulation inspector; their ids."""
    one, two = village_point(db, "village1.operator"), village_point(db, "village2.operator")
    login(client, "inspector")
    body = import_file(
        client,
        register_csv(
            [
                {
                    "统一社会信用代码": new_code(1),
                    "名称": "一村测试化工有限公司",
                    "行业代码": "C2614",
                    "注册资本": "500万元",
                    "成立日期": "2012-05-06",
                    "登记状态": "存续",
                    "经度": str(one[0]),
                    "纬度": str(one[1]),
                    "法定代表人": "张三丰",
                    "证件号码": ID_NUMBER,
                },
                {
                    "统一社会信用代码": new_code(2, head="92"),
                    "名称": "二村测试便利店",
                    "行业代码": "5292",
                    "登记状态": "吊销",
                    "经度": str(two[0]),
                    "纬度": str(two[1]),
                    "法定代表人": "李四",
                },
            ]
        ),
    )
    assert (body["created"], body["rejected"]) == (2, []), body
    found = client.get("/api/credit/entities", params={"q": "测试"}).json()["items"]
    logout(client)
    return {e["name"]: e["id"] for e in found}


def test_the_code_check_says_why(client: TestClient) -> None:
    login(client, "citizen")  # the standard is public: anyone signed in may check a code
    valid = client.get("/api/credit/code-check", params={"code": BUILT["N2"]}).json()
    assert valid["valid"] and valid["kind"] == "other" and valid["entity_type"] == "村级集体经济组织"
    invalid = client.get("/api/credit/code-check", params={"code": "91110000710926O94P"}).json()
    assert not invalid["valid"] and invalid["reason"] == "character" and "'O'" in invalid["message"]


def test_list_filters(client: TestClient, registered: dict[str, int]) -> None:
    login(client, "admin")

    def names(**params: str) -> set[str]:
        response = client.get("/api/credit/entities", params={"limit": "500", **params})
        assert response.status_code == 200, response.text
        return {e["name"] for e in response.json()["items"]}

    everything = client.get("/api/credit/entities").json()
    assert everything["total"] >= 300  # the small demo city's entities and the two imported
    assert names(q="测试") == {"一村测试化工有限公司", "二村测试便利店"}
    assert names(q=new_code(1)) == {"一村测试化工有限公司"}  # the whole code finds its entity
    assert names(q="测试", kind="individual") == {"二村测试便利店"}
    assert names(q="测试", section="C") == {"一村测试化工有限公司"}
    assert names(q="测试", industry="52") == {"二村测试便利店"}
    assert names(q="测试", status="revoked") == {"二村测试便利店"}
    firm = client.get(f"/api/credit/entities/{registered['一村测试化工有限公司']}").json()
    assert names(q="测试", division=firm["village_code"]) == {"一村测试化工有限公司"}
    assert names(q="测试", division=firm["division_code"][:6]) >= {"一村测试化工有限公司"}
    kinds = {
        e["kind"] for e in client.get("/api/credit/entities", params={"kind": "cooperative"}).json()["items"]
    }
    assert kinds == {"cooperative"}
    for bad in ({"kind": "company"}, {"section": "Z"}, {"status": "sleeping"}, {"division": "41x"}):
        response = client.get("/api/credit/entities", params=bad)
        assert response.status_code == 422 and response.json()["field"] == next(iter(bad)), response.text
    summary = client.get("/api/credit/entities", params={"q": "一村测试"}).json()["items"][0]
    assert summary["legal_rep_name"] == "张**"  # lists always mask


def test_the_excel_export_is_the_filtered_list(client: TestClient, registered: dict[str, int]) -> None:
    login(client, "admin")
    response = client.get("/api/credit/entities", params={"q": "测试", "format": "xlsx"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(XLSX_MEDIA_TYPE)
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    rows = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert rows[0][:3] == ("统一社会信用代码", "主体名称", "主体类型")
    by_code = {r[0]: r for r in rows[1:]}
    assert set(by_code) == {new_code(1), new_code(2, head="92")}
    firm = by_code[new_code(1)]
    assert firm[2] == "企业" and firm[3] == "C" and firm[4] == "26 化学原料和化学制品制造业"
    assert firm[5] == 500 and firm[8] == "存续（在业）" and firm[12] == "张**"
    assert ID_NUMBER not in str(rows)
    english = client.get("/api/credit/entities", params={"q": "测试", "format": "xlsx", "lang": "en"})
    header = next(load_workbook(io.BytesIO(english.content)).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert header[:3] == ("Credit code", "Entity name", "Entity kind")


def test_the_legal_representative_is_masked_without_pii_view(
    client: TestClient, db: Database, registered: dict[str, int]
) -> None:
    firm_id = registered["一村测试化工有限公司"]
    login(client, "inspector")  # the market regulator sees the register, not personal information
    masked = client.get(f"/api/credit/entities/{firm_id}").json()
    assert masked["pii_visible"] is False
    assert masked["legal_rep_name"] == "张**" and masked["legal_rep_id_number"] == "410611********1238"
    assert {d["code"] for d in masked["departments"]} >= {"dept-market", "dept-industry", "dept-emergency"}
    assert masked["code_check"]["valid"] and masked["industry"]["section_name"] == "制造业"
    logout(client)
    login(client, "admin")
    plain = client.get(f"/api/credit/entities/{firm_id}").json()
    assert plain["pii_visible"] is True
    assert plain["legal_rep_name"] == "张三丰" and plain["legal_rep_id_number"] == ID_NUMBER
    with db.sessions() as session:
        audited = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "pii_read",
                AuditEntry.resource_type == "credit_entity",
                AuditEntry.resource_id == str(firm_id),
            )
        ).all()
        assert [a.username for a in audited] == ["admin"]  # the masked read was not one


def test_scope_village_operators_and_departments(client: TestClient, registered: dict[str, int]) -> None:
    firm, shop = registered["一村测试化工有限公司"], registered["二村测试便利店"]
    login(client, "village1.operator")
    assert client.get(f"/api/credit/entities/{firm}").status_code == 200
    assert client.get(f"/api/credit/entities/{shop}").status_code == 404
    listed = {e["name"] for e in client.get("/api/credit/entities", params={"q": "测试"}).json()["items"]}
    assert listed == {"一村测试化工有限公司"}
    logout(client)
    # A department's staff have no division scope: they see what their department supervises.
    login(client, "emergency.handler")
    assert client.get(f"/api/credit/entities/{firm}").status_code == 200  # chemicals: 应急管理局
    assert client.get(f"/api/credit/entities/{shop}").status_code == 404
    page = client.get("/api/credit/entities", params={"limit": "500"}).json()
    assert firm in {e["id"] for e in page["items"]}
    assert all(e["industry"] and e["industry"]["section"] in "BCG" for e in page["items"])
    logout(client)
    login(client, "citizen")
    assert client.get("/api/credit/entities").status_code == 403
    assert client.get(f"/api/credit/entities/{firm}").status_code == 403


def test_only_the_register_keepers_import(client: TestClient, db: Database) -> None:
    data = register_csv([{"统一社会信用代码": new_code(3), "名称": "鹤壁市淇滨区某某有限公司"}])
    login(client, "village1.operator")
    refused = client.post("/api/credit/entities/import", files={"file": ("r.csv", data, "text/csv")})
    assert refused.status_code == 403
    logout(client)
    login(client, "inspector")
    assert client.post("/api/credit/entities/import").json()["field"] == "file"
    pdf = client.post("/api/credit/entities/import", files={"file": ("r.pdf", b"%PDF", "application/pdf")})
    assert pdf.status_code == 422 and pdf.json()["field"] == "file"
    first = import_file(client, data)
    again = import_file(client, data)
    assert (first["created"], again["created"], again["unchanged"]) == (1, 0, 1)
    with db.sessions() as session:
        entry = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.resource_type == "credit_entities")
            .order_by(AuditEntry.id.desc())
        ).first()
        assert entry is not None and entry.username == "inspector"
        assert entry.detail == {
            "import": "register.csv",
            "created": 0,
            "updated": 0,
            "unchanged": 1,
            "rejected": 0,
        }
