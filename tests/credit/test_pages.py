"""The entity register's pages: the list (Chinese by default, English on request), the code check, the
import with its report, and an entity."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cityops.core.db import Database
from tests.accounts.helpers import login
from tests.credit.helpers import new_code, register_csv, village_point


def test_the_list_is_in_the_navigation_and_in_chinese_by_default(client: TestClient) -> None:
    login(client, "inspector")
    page = client.get("/credit/entities")
    assert page.status_code == 200
    assert 'data-nav="credit"' in page.text and "市场主体库" in page.text
    assert "统一社会信用代码" in page.text and 'data-form="import"' in page.text  # the inspector keeps it
    assert 'href="/api/credit/entities?format=xlsx"' in page.text
    english = client.get("/credit/entities?lang=en&kind=individual")
    assert "Entity register" in english.text and "Individual business" in english.text
    assert 'href="/api/credit/entities?kind=individual&amp;format=xlsx"' in english.text


def test_pages_are_for_those_who_see_the_register(client: TestClient) -> None:
    login(client, "citizen")
    assert 'data-nav="credit"' not in client.get("/").text
    assert client.get("/credit/entities").status_code == 403


def test_the_code_check_on_the_list_page(client: TestClient) -> None:
    login(client, "leader")
    page = client.get("/credit/entities", params={"check": "91110000710926094Q"})
    assert (
        'data-code-check="invalid"' in page.text
        and "校验码不对" in page.text
        and "&#39;P&#39; expected" in page.text
    )
    assert 'data-form="import"' not in page.text  # leaders read the register, they do not keep it
    valid = client.get("/credit/entities", params={"check": "91110000710926094P"})
    assert 'data-code-check="valid"' in valid.text and "工商 / 企业" in valid.text


def test_import_from_the_page_shows_the_report_and_the_entity_page_masks(
    client: TestClient, db: Database
) -> None:
    lon, lat = village_point(db, "village1.operator")
    data = register_csv(
        [
            {
                "统一社会信用代码": new_code(1),
                "名称": "页面导入测试有限公司",
                "经度": str(lon),
                "纬度": str(lat),
                "法定代表人": "张三丰",
                "证件号码": "410611199001011238",
            },
            {"统一社会信用代码": "91410611MA00000000", "名称": "坏代码"},
        ]
    )
    login(client, "inspector")
    page = client.post("/credit/entities/import", files={"file": ("register.csv", data, "text/csv")})
    assert page.status_code == 200, page.text
    assert "导入完成：新增 1 户" in page.text and "拒收 1 行" in page.text
    assert 'data-table="import-problems"' in page.text and "<td>3</td>" in page.text
    refused = client.post("/credit/entities/import", files={"file": ("register.txt", b"x", "text/plain")})
    assert refused.status_code == 422 and "give a .csv or .xlsx file" in refused.text
    found = client.get("/api/credit/entities", params={"q": "页面导入"}).json()["items"][0]
    entity = client.get(f"/credit/entities/{found['id']}")
    assert entity.status_code == 200
    assert "页面导入测试有限公司" in entity.text and 'data-pii="masked"' in entity.text
    assert "张**" in entity.text and "410611********1238" in entity.text and "张三丰" not in entity.text
    assert "按经纬度定位" in entity.text and "鹤壁市市场监督管理局" in entity.text
    assert client.get("/credit/entities/2147483647").status_code == 404
