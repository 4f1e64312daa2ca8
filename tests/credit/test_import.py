"""Import of the market-regulation register: a report per line, rows whole or not at all, idempotent on
the credit code."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from cityops.core.db import Database
from cityops.core.errors import ValidationFailed
from cityops.credit import service
from cityops.credit.models import Entity
from cityops.credit.schemas import ImportResult
from cityops.places import service as places_service
from tests.credit.helpers import BUILT, HEADER, new_code, register_csv, village_point

ID_NUMBER = "410611199001011238"


def run_import(db: Database, data: bytes, filename: str = "register.csv") -> ImportResult:
    with db.session() as session:
        index = places_service.build_index(session)
        return service.import_entities(
            session, data=data, filename=filename, index=index, actor=None, today=date(2026, 12, 1)
        )


def entity(db: Database, code: str) -> Entity | None:
    with db.sessions() as session:
        return session.scalar(select(Entity).where(Entity.code == code))


def good_rows(db: Database) -> list[dict[str, str]]:
    lon, lat = village_point(db, "village1.operator")
    return [
        {
            "统一社会信用代码": new_code(1),
            "名称": "鹤壁市淇滨区测试商贸有限公司",
            "市场主体类型": "有限责任公司（自然人投资或控股）",
            "行业代码": "F5212",
            "注册资本": "100万元",
            "成立日期": "2019年3月2日",
            "登记状态": "存续（在业）",
            "住所": "河南省鹤壁市淇滨区金山街道庞村12号",
            "法定代表人": "张三",
            "证件号码": ID_NUMBER,
        },
        {
            "统一社会信用代码": new_code(2, head="92"),
            "名称": "鑫隆便利店",
            "市场主体类型": "个体工商户",
            "行业代码": "52",
            "注册资本": "5",
            "成立日期": "2021-06-01",
            "登记状态": "在业",
            "经度": str(lon),
            "纬度": str(lat),
            "法定代表人": "李四",
        },
        {
            "统一社会信用代码": BUILT["N2"],
            "名称": "庞村股份经济合作社",
            "市场主体类型": "农村集体经济组织",
            "住所": "淇县",
        },
    ]


def test_good_rows_are_saved_with_their_place_and_departments(db: Database) -> None:
    result = run_import(db, register_csv(good_rows(db)))
    assert (result.created, result.updated, result.unchanged, result.rejected) == (3, 0, 0, [])
    firm = entity(db, new_code(1))
    assert firm is not None and firm.kind == "enterprise" and firm.industry_code == "52"
    assert firm.industry_section == "F" and firm.capital == 1_000_000 and firm.capital_currency == "CNY"
    assert firm.established_on == date(2019, 3, 2) and firm.status == "active"
    # No coordinates: the address names 淇滨区, 金山街道 and 庞村, which has a single grid.
    assert firm.located_by == "address" and firm.village_code == "410611001202"
    assert firm.division_code == firm.grid_code == "410611001202001"
    shop = entity(db, new_code(2, head="92"))
    assert shop is not None and shop.kind == "individual" and shop.capital == 50_000  # 5 means 5万
    assert shop.located_by == "point" and shop.grid_code and shop.lon is not None
    collective = entity(db, BUILT["N2"])
    assert collective is not None and collective.kind == "other" and collective.division_code == "410622"
    with db.sessions() as session:
        read = service.get_entity(session, viewer=None, entity_id=firm.id)
        assert {d.code for d in read.departments} == {"dept-market", "dept-commerce"}
        departments = service.get_entity(session, viewer=None, entity_id=collective.id).departments
        assert {d.code for d in departments} == {"dept-agriculture"}


def test_bad_rows_are_reported_by_line_and_field_and_nothing_of_them_is_saved(db: Database) -> None:
    rows = [
        *good_rows(db)[:1],
        {"统一社会信用代码": new_code(3), "名称": "坏行业", "行业代码": "99"},
        {"统一社会信用代码": "91410611MA00000000", "名称": "坏代码"},
        {"统一社会信用代码": new_code(4, head="92"), "名称": "类型不符", "市场主体类型": "有限公司"},
        {"统一社会信用代码": new_code(5), "名称": "城外", "经度": "10", "纬度": "10"},
        {"统一社会信用代码": new_code(1), "名称": "重复的代码"},
        {
            "统一社会信用代码": new_code(6),
            "名称": "坏身份证",
            "法定代表人": "王五",
            "证件号码": "410611199001011234",
        },
        {"统一社会信用代码": new_code(7), "名称": "未来成立", "成立日期": "2099-01-01"},
        {"统一社会信用代码": new_code(8), "名称": "坏资本", "注册资本": "很多"},
        {"统一社会信用代码": new_code(9), "名称": "坏状态", "登记状态": "休眠"},
        {"统一社会信用代码": new_code(10), "名称": ""},
    ]
    result = run_import(db, register_csv(rows))
    assert result.created == 1
    problems = [(p.line, p.field) for p in result.rejected]
    assert problems == [
        (3, "industry"),
        (4, "code"),
        (5, "kind"),
        (6, "lon"),
        (7, "code"),
        (8, "legal_rep_id"),
        (9, "established"),
        (10, "capital"),
        (11, "status"),
        (12, "name"),
    ]
    reasons = {p.line: p.reason for p in result.rejected}
    assert reasons[4] == "wrong check character: '0' given, 'J' expected"
    assert (
        reasons[5].startswith("type '有限公司' does not agree with the code") and "个体工商户" in reasons[5]
    )
    assert reasons[6].startswith("point (10.0, 10.0) lies outside the city")
    assert reasons[7] == f"code {new_code(1)} is already on line 2"
    assert reasons[12] == "a new entity needs its name"
    # The refused rows left nothing: not even the fields that were right (the 王五 of line 8).
    for n in range(3, 11):
        assert entity(db, new_code(n)) is None and entity(db, new_code(n, head="92")) is None
    assert entity(db, new_code(1)) is not None


def test_the_same_file_again_changes_nothing_and_a_changed_row_updates(db: Database) -> None:
    rows = good_rows(db)
    first = run_import(db, register_csv(rows))
    before = entity(db, new_code(1))
    assert first.created == 3 and before is not None
    again = run_import(db, register_csv(rows))
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 3, [])
    rows[0] = {
        **rows[0],
        "名称": "鹤壁市淇滨区测试商贸有限公司（更名）",
        "登记状态": "注销",
        "注册资本": "200万元",
    }
    changed = run_import(db, register_csv(rows))
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 2)
    after = entity(db, new_code(1))
    assert after is not None and after.id == before.id and after.name.endswith("（更名）")
    assert after.status == "cancelled" and after.capital == 2_000_000
    assert after.legal_rep_id_number == ID_NUMBER  # columns left empty keep what the entity had
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Entity).where(Entity.code == new_code(1))) == 1


def test_an_update_keeps_what_the_file_leaves_out(db: Database) -> None:
    run_import(db, register_csv(good_rows(db)))
    only_status = register_csv([{"统一社会信用代码": new_code(1), "登记状态": "吊销，未注销"}])
    result = run_import(db, only_status)
    assert (result.updated, result.rejected) == (1, [])
    found = entity(db, new_code(1))
    assert found is not None and found.status == "revoked" and found.name == "鹤壁市淇滨区测试商贸有限公司"


def test_supervising_departments_by_name_or_code_replace_the_defaults(db: Database) -> None:
    rows = [
        {
            "统一社会信用代码": new_code(12),
            "名称": "鹤壁市淇滨区加油站有限公司",
            "行业代码": "5265",
            "监管部门": "鹤壁市应急管理局、dept-fire",
        },
        {"统一社会信用代码": new_code(13), "名称": "鹤壁市淇滨区某某有限公司", "监管部门": "不存在的局"},
    ]
    result = run_import(db, register_csv(rows))
    assert result.created == 1
    assert [(p.line, p.field) for p in result.rejected] == [(3, "departments")]
    assert result.rejected[0].reason.startswith("unknown department '不存在的局'")
    found = entity(db, new_code(12))
    assert found is not None
    with db.sessions() as session:
        read = service.get_entity(session, viewer=None, entity_id=found.id)
    assert {d.code for d in read.departments} == {"dept-emergency", "dept-fire"}
    rows[0]["监管部门"] = "dept-emergency"
    again = run_import(db, register_csv(rows[:1]))
    assert (again.updated, again.unchanged) == (1, 0)  # the departments changed, nothing else
    with db.sessions() as session:
        assert [d.code for d in service.get_entity(session, viewer=None, entity_id=found.id).departments] == [
            "dept-emergency"
        ]


def test_excel_files_are_read_with_dates_and_numbers_as_excel_keeps_them(db: Database) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(HEADER))
    sheet.append(
        [
            new_code(11),
            "淇县丰泽种植专业合作社",
            "农民专业合作社",
            "0111",
            50,
            date(2018, 5, 4),
            "存续",
            "淇县北阳镇",
            None,
            None,
            "赵六",
            None,
        ]
    )
    buffer = io.BytesIO()
    book.save(buffer)
    result = run_import(db, buffer.getvalue(), "register.xlsx")
    assert [(p.line, p.field) for p in result.rejected] == [(2, "kind")]  # 91 is an enterprise's code
    sheet["A2"] = new_code(11, head="93")
    buffer = io.BytesIO()
    book.save(buffer)
    result = run_import(db, buffer.getvalue(), "register.xlsx")
    assert result.created == 1 and result.rejected == []
    found = entity(db, new_code(11, head="93"))
    assert found is not None and found.kind == "cooperative" and found.capital == 500_000
    assert found.established_on == date(2018, 5, 4) and found.industry_code == "01"
    assert found.located_by == "address" and found.division_code.startswith("410622")


def test_a_file_that_is_no_table_is_refused_whole(db: Database) -> None:
    with pytest.raises(ValidationFailed) as caught:
        run_import(db, b"%PDF-1.4", "register.pdf")
    assert caught.value.field == "file"
    with pytest.raises(ValidationFailed):
        run_import(db, b"not a workbook", "register.xlsx")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100万元", (1_000_000, "CNY")),
        ("100", (1_000_000, "CNY")),
        (12.5, (125_000, "CNY")),
        ("50万美元", (500_000, "USD")),
        ("300000元", (300_000, "CNY")),
        ("1,000万元人民币", (10_000_000, "CNY")),
    ],
)
def test_capital_is_read_as_registers_write_it(value: object, expected: tuple[int, str]) -> None:
    assert service.parse_capital(value) == expected


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("有限责任公司（自然人独资）", "enterprise"),
        ("个体工商户", "individual"),
        ("农民专业合作社", "cooperative"),
        ("民办非企业单位", "social_org"),
        ("股份经济合作社", "other"),
        ("普通合伙企业", "enterprise"),
    ],
)
def test_the_registers_type_words(text: str, kind: str) -> None:
    assert service.parse_kind(text) == kind
