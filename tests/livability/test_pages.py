"""The living-circle pages: the map page with the summaries, a community's report card, the gap list with
suggested sites, in Chinese and English; and the map in a browser (layers, isochrone on click)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityops.accounts.demo import DEMO_PASSWORD
from cityops.core.db import Database
from cityops.livability import service
from tests.accounts.helpers import login
from tests.web.test_browser import assets_built, browser  # noqa: F401 - fixtures used below


def test_the_overview_shows_the_city_figures_and_every_county(client: TestClient, db: Database) -> None:
    login(client, "leader")
    page = client.get("/livability")
    assert page.status_code == 200, page.text
    with db.sessions() as session:
        report = service.report(session)
    html = page.text
    assert "一刻钟生活圈" in html and "300米见绿" in html and "合成演示数据" in html
    figure = re.search(r'data-figure="green_300">([^<]+)<', html)
    assert figure is not None and figure.group(1) == f"{report.city.green_300.rate * 100:.1f}%"
    for county in report.counties:
        assert f'data-code="{county.code}"' in html
    assert 'href="/livability"' in client.get("/").text  # the nav entry
    english = client.get("/livability", params={"lang": "en", "category": "kindergarten"})
    assert "15-minute living circle" in english.text and "Green within 300 m" in english.text
    assert '<option value="kindergarten" selected>Kindergarten</option>' in english.text


def test_a_community_report_card_lists_its_access_and_missing_items(client: TestClient, db: Database) -> None:
    with db.sessions() as session:
        rows = service.report(session, with_communities=True).communities or []
    row = next(r for r in rows if r.in_scope and r.on_network and r.missing and "green_300" in r.missing)
    login(client, "leader")
    card = client.get(f"/livability/communities/{row.code}")
    assert card.status_code == 200, card.text
    assert row.name in card.text and 'data-rule="green_300"' in card.text
    missing = re.search(r'<ul data-list="missing">(.*?)</ul>', card.text, re.S)
    assert missing is not None and missing.group(1).count("<li>") == len(row.missing)
    assert "300米见绿" in missing.group(1)
    assert client.get("/livability/communities/000000000000").status_code == 404


def test_the_gap_list_shows_the_suggested_sites(client: TestClient, db: Database) -> None:
    login(client, "leader")
    page = client.get("/livability/gaps", params={"category": "elderly_day_care"})
    assert page.status_code == 200, page.text
    with db.sessions() as session:
        suggestion = service.suggest_sites(session, category="elderly_day_care", count=10)
    assert suggestion.sites
    assert page.text.count('data-site="') == len(suggestion.sites)
    assert f"{suggestion.sites[0].population:,}" in page.text
    login(client, "citizen")
    assert client.get("/livability/gaps").status_code in (302, 303, 403)


@pytest.mark.browser
def test_the_map_colours_communities_and_draws_an_isochrone_on_click(
    assets_built: None,  # noqa: F811
    live_server: str,
    browser: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server}/login?next=/livability")
    page.fill("input[name=username]", "leader")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("form[action^='/login'] [type=submit]").click()
    expect(page).to_have_url(f"{live_server}/livability")
    expect(page.locator("#living-map")).to_have_attribute("data-ready", "1")
    assert page.locator("path.community.covered").count() > 0
    assert page.locator("path.community.gap").count() > 0
    page.select_option("#layer", "kindergarten")
    expect(page.locator("#living-map")).to_have_attribute("data-ready", "1")
    expect(page).to_have_url(f"{live_server}/livability?category=kindergarten")
    # A click on a covered community inside the visible map: its popup links to its report card, and the
    # area reachable on foot from it is drawn.
    box = page.locator("#living-map").bounding_box()
    assert box is not None
    inside = page.evaluate(
        """(box) => {
        for (const el of document.querySelectorAll("path.community.covered")) {
            const r = el.getBoundingClientRect();
            const x = r.x + r.width / 2, y = r.y + r.height / 2;
            const inX = x > box.x + 40 && x < box.x + box.width - 40;
            if (inX && y > box.y + 40 && y < box.y + box.height - 40) {
                return [x, y];
            }
        }
        return null;
    }""",
        box,
    )
    assert inside is not None
    page.mouse.click(inside[0], inside[1])
    expect(page.locator(".leaflet-popup-content a")).to_have_attribute(
        "href", re.compile("/livability/communities/")
    )
    expect(page.locator("#living-map")).to_have_attribute("data-isochrone", "1")
    assert page.locator("path.isochrone").count() >= 1
    assert not errors, errors
