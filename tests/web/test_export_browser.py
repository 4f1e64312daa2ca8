"""Headless-browser test of the background export: the inbox's export link shows a progress bar that
reaches 100 % and the workbook downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cityops.accounts.demo import DEMO_PASSWORD
from cityops.app import create_app
from cityops.config import Settings
from cityops.core.db import Database
from tests.accounts.helpers import login
from tests.cases.helpers import report, scope_of
from tests.core.test_exports import add_cases
from tests.web.test_browser import assets_built, browser

pytestmark = pytest.mark.browser
__all__ = ["assets_built", "browser"]  # fixtures shared with the other browser test
USER = "village1.operator"
WAIT_MS = 60_000  # a safety net, never a pause


def test_export_from_the_inbox_shows_progress_and_downloads(
    settings: Settings, db: Database, live_server: str, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with TestClient(create_app(settings, db=db)) as client:
        login(client, USER)
        first = report(client, db, scope_of(db, USER), title="浏览器导出案件")
        add_cases(db, first, 1_499)
        listed = client.get("/api/cases", params={"box": "unit", "open_only": "true", "limit": 1})
        total = listed.json()["total"]
    assert total >= 1_500

    page = browser.new_page(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server}/login?next=/cases")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("form[action^='/login'] [type=submit]").click()
    expect(page).to_have_url(f"{live_server}/cases")

    link = page.locator("a[data-export=cases]")
    expect(link).to_have_text("导出 Excel")
    with page.expect_download(timeout=WAIT_MS) as download_info:
        link.click()
        panel = page.locator(".export-progress[data-for=cases]")
        expect(panel.locator("progress")).to_be_visible()
        expect(panel).to_have_attribute("data-percent", "100", timeout=WAIT_MS)
        expect(panel.locator("progress")).to_have_js_property("value", 100)
        expect(panel).to_contain_text("导出完成")
        expect(panel).to_contain_text("100 %")
    page.screenshot(path=str(tmp_path / "export.png"))
    print(f"screenshot: {tmp_path / 'export.png'}")
    download = download_info.value
    assert download.suggested_filename == "案件列表.xlsx"
    saved = tmp_path / "export.xlsx"
    download.save_as(saved)
    rows = list(load_workbook(saved, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert len(rows) == total + 1 and first["number"] in {r[0] for r in rows}
    assert not errors, errors
