from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from cityops.app import create_app
from cityops.core.db import Database
from tests.accounts.helpers import login
from tests.conftest import make_settings


def map_config(html: str) -> dict[str, object]:
    found = re.search(r"data-config='([^']*)'", html)
    assert found, "the map element carries its configuration"
    return dict(json.loads(found.group(1).replace("&#34;", '"')))


def map_strings(html: str) -> dict[str, str]:
    found = re.search(r'<script type="application/json" id="map-i18n">(.*?)</script>', html, re.S)
    assert found
    return dict(json.loads(found.group(1)))


def test_pages_send_visitors_to_the_login_page(client: TestClient) -> None:
    for path in ("/", "/map", "/map?lang=en"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=/")


def test_home_page_links_to_the_map_and_the_places_statistics(client: TestClient) -> None:
    login(client, "county.operator")
    page = client.get("/")
    assert page.status_code == 200
    assert 'data-card="map"' in page.text
    assert 'href="/places/stats"' in page.text
    assert 'data-nav="map"' in page.text
    assert "退出登录" in page.text  # the user menu with the sign-out form
    assert re.search(r'<form method="post" action="/logout"', page.text)


def test_layout_carries_the_csrf_token_for_forms_and_htmx(client: TestClient) -> None:
    token = login(client, "county.operator")["csrf_token"]
    page = client.get("/")
    assert f'<meta name="csrf-token" content="{token}">' in page.text
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in page.text
    assert f'name="csrf_token" value="{token}"' in page.text


def test_user_menu_shows_name_and_translated_role(client: TestClient) -> None:
    login(client, "county.operator")  # a centre operator
    english = client.get("/?lang=en")
    assert '<span class="userrole" data-role="centre_operator">Centre operator</span>' in english.text
    chinese = client.get("/?lang=zh")
    assert '<span class="userrole" data-role="centre_operator">综治中心工作人员</span>' in chinese.text


def test_map_page_loads_leaflet_locally_and_reads_the_places_api(client: TestClient) -> None:
    login(client, "county.operator")
    page = client.get("/map")
    assert page.status_code == 200
    assert '<script src="/static/vendor/leaflet/leaflet.js">' in page.text
    assert '<link rel="stylesheet" href="/static/vendor/leaflet/leaflet.css">' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from the internet
    config = map_config(page.text)
    assert config["tileUrl"] == ""  # no base tiles unless configured
    # The URLs the page's script calls answer for the same user.
    counties = client.get(str(config["geojsonUrl"]), params={"level": "county"})
    assert counties.status_code == 200
    features = counties.json()["features"]
    assert features
    assert {"code", "name", "level", "parent_code", "synthetic"} <= set(features[0]["properties"])
    found = client.get(str(config["searchUrl"]), params={"q": "淇滨区"})
    assert found.status_code == 200
    assert any(item["code"] == "410611" for item in found.json()["items"])
    place = client.get(str(config["placeUrl"]).replace("{code}", "410611"))
    assert place.status_code == 200


def test_map_strings_follow_the_language(client: TestClient) -> None:
    login(client, "county.operator")
    chinese = map_strings(client.get("/map").text)
    english = map_strings(client.get("/map?lang=en").text)
    assert chinese["grids"] == "网格"
    assert english["grids"] == "Grids"
    assert chinese["synthetic"] == "合成边界"
    assert chinese.keys() == english.keys()


def test_map_uses_the_configured_intranet_tile_server(tmp_path: Path, db: Database) -> None:
    tiles = "http://tiles.gov.local/{z}/{x}/{y}.png"
    custom = make_settings(tmp_path, tile_url=tiles)
    with TestClient(create_app(custom, db=db)) as tile_client:
        login(tile_client, "county.operator")
        assert map_config(tile_client.get("/map").text)["tileUrl"] == tiles


def test_roles_without_places_access_get_no_map(client: TestClient) -> None:
    login(client, "citizen")
    home = client.get("/")
    assert home.status_code == 200
    assert 'data-nav="map"' not in home.text
    assert 'data-card="map"' not in home.text
    refused = client.get("/map")
    assert refused.status_code == 403
    assert "无权访问" in refused.text


def test_static_assets_are_served(client: TestClient) -> None:
    for path in ("/static/css/cityops.css", "/static/css/map.css", "/static/js/map.js",
                 "/static/vendor/htmx/htmx.min.js", "/static/vendor/leaflet/leaflet.js",
                 "/static/vendor/leaflet/images/layers.png", "/static/vendor/echarts/echarts.min.js"):
        assert client.get(path).status_code == 200, path
