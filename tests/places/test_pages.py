"""The places pages: browse the hierarchy and the statistics page."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.accounts.helpers import login


@pytest.fixture
def staff(client: TestClient) -> TestClient:
    login(client, "leader")
    return client


def test_browse_from_the_city_down_to_grids(staff: TestClient) -> None:
    page = staff.get("/places")
    assert page.status_code == 200
    assert "鹤壁市" in page.text and 'data-code="410621"' in page.text and "浚县" in page.text
    county = staff.get("/places/410621").text
    assert "鹤壁市" in county  # breadcrumb
    township = re.search(r'href="/places/(410621\d{3})"', county)
    assert township is not None
    village_page = staff.get(f"/places/{township.group(1)}").text
    village = re.search(r'href="/places/(\d{12})"', village_page)
    assert village is not None
    grids_page = staff.get(f"/places/{village.group(1)}").text
    assert 'data-table="grids"' in grids_page
    grid = re.search(r'href="/places/(\d{15})"', grids_page)
    assert grid is not None
    grid_page = staff.get(f"/places/{grid.group(1)}")
    assert grid_page.status_code == 200 and "网格" in grid_page.text


def test_search_box(staff: TestClient) -> None:
    page = staff.get("/places", params={"q": "钜桥"}).text
    assert 'data-code="410611101"' in page
    none = staff.get("/places", params={"q": "不存在的地方"}).text
    assert "没有与“不存在的地方”匹配" in none


def test_statistics_page_has_table_and_chart(staff: TestClient) -> None:
    page = staff.get("/places/stats")
    assert page.status_code == 200
    assert page.text.count("<svg") >= 3 and "<rect" in page.text
    assert 'data-table="counties"' in page.text and ">2,397<" in page.text
    english = staff.get("/places/stats", params={"lang": "en"}).text
    assert "Places statistics" in english and "Xunxian" in english


def test_unknown_code_is_a_404_page(staff: TestClient) -> None:
    page = staff.get("/places/123456")
    assert page.status_code == 404 and "123456" in page.text


def test_pages_need_a_signed_in_user(client: TestClient) -> None:
    response = client.get("/places/stats", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
