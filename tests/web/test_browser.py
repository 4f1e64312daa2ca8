"""Headless-browser test: the real app served by uvicorn, driven through Debian's chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from cityops.accounts.demo import DEMO_PASSWORD
from tests.conftest import IN_CI

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DEMO_USER = "county.operator"
VENDOR = Path(__file__).resolve().parents[2] / "src" / "cityops" / "web" / "static" / "vendor"


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def assets_built() -> None:
    if not (VENDOR / "leaflet" / "leaflet.js").is_file():
        _missing("web assets are not built; run `npm ci && node scripts/copy-assets.mjs`")


@pytest.fixture
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        _missing(f"chromium is not installed at {CHROMIUM}; `apt-get install chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def test_log_in_switch_language_and_open_the_map(assets_built: None, live_server: str, browser: Any,
                                                  tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    foreign: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: foreign.append(req.url)
            if urlparse(req.url).netloc not in ("", urlparse(live_server).netloc)
            and not req.url.startswith("data:") else None)

    # A visitor is sent to the login page and back to the page asked for afterwards.
    page.goto(f"{live_server}/map")
    expect(page).to_have_url(f"{live_server}/login?next=/map")
    page.fill("input[name=username]", DEMO_USER)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("form[action^='/login'] [type=submit]").click()
    expect(page).to_have_url(f"{live_server}/map")

    # Chinese by default, then English after the switch, remembered across pages.
    nav_map = page.locator("nav.mainnav a[data-nav=map]")
    expect(nav_map).to_have_text("地图")
    page.locator("a[data-lang=en]").click()
    expect(nav_map).to_have_text("Map")
    page.goto(f"{live_server}/")
    expect(page.locator("nav.mainnav a[data-nav=home]")).to_have_text("Home")

    # The map draws the county polygons from the places API, with no internet.
    page.goto(f"{live_server}/map")
    expect(page.locator("#map")).to_have_attribute("data-ready", "all")
    polygons = page.locator("path.leaflet-interactive")
    assert polygons.count() > 0
    expect(page.locator(".leaflet-tooltip.county-label").first).to_be_visible()
    expect(page.locator(".leaflet-control-layers")).to_contain_text("Villages / communities")

    # Search by name zooms to the place and opens its popup, with the synthetic-geometry label where due.
    page.fill("#map-search-q", "淇滨区")
    page.locator("#map-search [type=submit]").click()
    popup = page.locator(".leaflet-popup .place-popup[data-code='410611']")
    expect(popup).to_be_visible()
    expect(popup).to_contain_text("County")
    expect(popup).to_contain_text("Official boundary")
    expect(popup.locator("a")).to_have_attribute("href", "/places/410611")
    page.screenshot(path=str(tmp_path / "map.png"))
    print(f"screenshot: {tmp_path / 'map.png'}")

    assert not errors, errors
    assert not foreign, f"requests left the server: {foreign}"
