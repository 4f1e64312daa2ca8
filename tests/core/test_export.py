from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import load_workbook

from cityops.core.export import workbook_bytes, xlsx_response


def test_workbook_has_headers_rows_and_local_times() -> None:
    data = workbook_bytes("用户", ["姓名", "时间"], [["张三", datetime(2024, 1, 1, 0, 0, tzinfo=UTC)]])
    ws = load_workbook(io.BytesIO(data)).active
    assert [c.value for c in ws[1]] == ["姓名", "时间"]
    assert ws["A2"].value == "张三"
    assert ws["B2"].value == datetime(2024, 1, 1, 8, 0)  # shown in Beijing time


def test_response_names_the_file_in_chinese() -> None:
    response = xlsx_response("用户列表.xlsx", "users", ["a"], [[1]])
    assert response.media_type.endswith("spreadsheetml.sheet")
    assert "filename*=UTF-8''%E7%94%A8" in response.headers["content-disposition"]
