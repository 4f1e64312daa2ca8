"""Grid workers' field work: household visits, problem reports and patrols, each issue a case."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pyproj import Geod

from cityops.accounts.demo import DEMO_PASSWORD
from cityops.config import Settings
from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.cases.helpers import point_in_village, scope_of
from tests.conftest import IN_CI


def png(width: int = 2, height: int = 2, *, seed: int = 0) -> bytes:
    """A small valid PNG (a different image per seed)."""
    raw = b"".join(
        b"\x00" + b"".join(bytes([(seed + x + y) % 256, 80, 160]) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def visit_form(db: Database, username: str, **overrides: Any) -> dict[str, Any]:
    """A visit at the centre of the grid worker's own grid, with one neighbour dispute found."""
    grid = scope_of(db, username)
    lon, lat, first_grid = point_in_village(db, grid[:12])
    assert first_grid == grid, "the demo grid worker works in the village's first grid"
    form: dict[str, Any] = {
        "kinds": ["visit", "resolve"],
        "address": "一村三组12号",
        "household_head": "王大山",
        "household_phone": "13912345678",
        "notes": "两户因排水沟争执",
        "lon": str(lon),
        "lat": str(lat),
        "issues": json.dumps(
            [
                {
                    "kind": "neighbour_dispute",
                    "title": "王家与李家排水沟纠纷",
                    "description": "雨后积水流入邻居院内",
                }
            ]
        ),
    }
    form.update(overrides)
    return form


def post_visit(client: TestClient, form: dict[str, Any], files: dict[str, Any] | None = None) -> Any:
    return client.post("/api/governance/visits", data=form, files=files or {})


def my_visits(client: TestClient) -> int:
    total: int = client.get("/api/governance/visits", params={"mine": True}).json()["total"]
    return total


def field_of(body: dict[str, Any]) -> str | None:
    """The field a refusal names: ours at the top, the framework's in detail.errors."""
    if body.get("field"):
        return str(body["field"])
    errors = body.get("detail", {}).get("errors") or [{}]
    return errors[0].get("field")


def test_a_visit_with_an_issue_makes_a_case_for_the_grids_village_centre(
    client: TestClient, db: Database
) -> None:
    login(client, "village1.grid")
    village = scope_of(db, "village1.grid")[:12]
    response = post_visit(client, visit_form(db, "village1.grid"))
    assert response.status_code == 201, response.text
    visit = response.json()
    assert visit["kinds"] == ["visit", "resolve"]
    assert visit["household_head"] == "王大山"  # the worker who wrote it down sees it
    [issue] = visit["issues"]
    assert issue["case_status"] == "reported"

    case = client.get(f"/api/cases/{issue['case_id']}").json()
    assert case["source"] == "grid_worker"
    assert case["org_unit"]["code"] == f"centre-{village}"
    assert case["type_code"] == "dispute" and case["category"] == "neighbour"
    assert case["title"] == "王家与李家排水沟纠纷"
    # The case links back to the visit, both ways.
    assert f"走访记录 #{visit['id']}" in case["description"]
    found = client.get("/api/governance/visits", params={"case_id": issue["case_id"]}).json()
    assert [v["id"] for v in found["items"]] == [visit["id"]]


def test_a_visit_outside_the_workers_grid_is_refused_naming_the_field(
    client: TestClient, db: Database
) -> None:
    login(client, "village1.grid")
    before = my_visits(client)
    lon, lat, _grid = point_in_village(db, scope_of(db, "village2.grid")[:12])
    response = post_visit(client, visit_form(db, "village1.grid", lon=str(lon), lat=str(lat)))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "lon"
    assert "outside your area" in response.json()["message"]
    assert my_visits(client) == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lon": "200"}, "lon"),
        ({"lat": "north"}, "lat"),
        ({"lon": "10.0", "lat": "10.0"}, "lon"),  # a valid point, but not in the city
        ({"kinds": ["party"]}, "kinds"),
        ({"household_phone": "call me"}, "household_phone"),
        ({"issues": json.dumps([{"kind": "ufo", "title": "x"}])}, "issues.0.kind"),
        ({"issues": "not json"}, "issues"),
        ({"visited_at": "2999-01-01T00:00:00+08:00"}, "visited_at"),
        ({"address": "   "}, "address"),
        ({"issues": json.dumps([{"kind": "rubbish", "title": "  "}])}, "issues.0.title"),
        (
            {"issues": json.dumps([{"kind": "neighbour_dispute", "title": "x", "fields": {"parties": 1}}])},
            "issues.0.fields.parties",
        ),
    ],
)
def test_bad_visit_input_is_refused_naming_the_field(
    client: TestClient, db: Database, overrides: dict[str, Any], field: str
) -> None:
    login(client, "village1.grid")
    response = post_visit(client, visit_form(db, "village1.grid", **overrides))
    assert response.status_code == 422, response.text
    assert (field_of(response.json()) or "").startswith(field), response.text


def test_the_photo_is_stored_by_its_hash(client: TestClient, db: Database, settings: Settings) -> None:
    login(client, "village1.grid")
    photo = png(seed=3)
    digest = hashlib.sha256(photo).hexdigest()
    response = post_visit(
        client, visit_form(db, "village1.grid", issues=""), files={"photo": ("door.png", photo, "image/png")}
    )
    assert response.status_code == 201, response.text
    visit = response.json()
    stored = Path(settings.attachments_dir) / digest[:2] / digest[2:4] / digest
    assert stored.read_bytes() == photo
    served = client.get(visit["photo_url"])
    assert served.status_code == 200 and served.content == photo
    assert served.headers["content-type"] == "image/png"
    # The same photo again takes no more room.
    again = post_visit(
        client, visit_form(db, "village1.grid", issues=""), files={"photo": ("copy.png", photo, "image/png")}
    )
    assert again.status_code == 201
    assert sorted(p.name for p in Path(settings.attachments_dir).rglob("*") if p.is_file()) == [digest]


@pytest.mark.parametrize(
    ("name", "content", "media_type", "status"),
    [
        ("notes.txt", b"just text", "text/plain", 415),
        ("fake.png", b"GIF89a not a png", "image/png", 415),
        ("huge.jpg", b"\xff\xd8\xff" + b"\0" * (10 * 1024 * 1024), "image/jpeg", 413),
    ],
)
def test_a_wrong_type_or_oversize_photo_is_refused(
    client: TestClient, db: Database, name: str, content: bytes, media_type: str, status: int
) -> None:
    login(client, "village1.grid")
    before = my_visits(client)
    response = post_visit(
        client, visit_form(db, "village1.grid"), files={"photo": (name, content, media_type)}
    )
    assert response.status_code == status, response.text
    assert response.json()["field"] == "photo"
    assert my_visits(client) == before


def test_a_problem_reported_on_the_spot_becomes_a_case_with_its_photo(
    client: TestClient, db: Database
) -> None:
    login(client, "village1.grid")
    lon, lat, _grid = point_in_village(db, scope_of(db, "village1.grid")[:12])
    photo = png(seed=9)
    response = client.post(
        "/api/governance/visits/reports",
        data={"kind": "fire_hazard", "title": "楼道堆放杂物堵塞消防通道", "lon": str(lon), "lat": str(lat)},
        files={"photo": ("hall.png", photo, "image/png")},
    )
    assert response.status_code == 201, response.text
    report = response.json()
    case = client.get(f"/api/cases/{report['case_id']}").json()
    assert case["source"] == "grid_worker" and case["type_code"] == "hazard"
    assert client.get(report["photo_url"]).content == photo


def test_a_patrols_distance_is_computed_from_its_track(client: TestClient, db: Database) -> None:
    login(client, "village1.grid")
    lon, lat, _grid = point_in_village(db, scope_of(db, "village1.grid")[:12])
    track = [(lon, lat), (lon + 0.001, lat), (lon + 0.001, lat + 0.001)]
    started = client.post(
        "/api/governance/patrols", json={"points": [{"lon": track[0][0], "lat": track[0][1]}]}
    )
    assert started.status_code == 201, started.text
    patrol_id = started.json()["id"]
    assert client.post("/api/governance/patrols", json={}).status_code == 409  # one at a time
    moved = client.post(
        f"/api/governance/patrols/{patrol_id}/points",
        json={"points": [{"lon": track[1][0], "lat": track[1][1]}]},
    )
    assert moved.status_code == 200, moved.text
    issue = client.post(
        f"/api/governance/patrols/{patrol_id}/issues",
        json={"kind": "street_light", "title": "路灯不亮", "lon": track[1][0], "lat": track[1][1]},
    )
    assert issue.status_code == 201, issue.text
    ended = client.post(
        f"/api/governance/patrols/{patrol_id}/end",
        json={"notes": "夜间巡查", "points": [{"lon": track[2][0], "lat": track[2][1]}]},
    )
    assert ended.status_code == 200, ended.text
    patrol = ended.json()

    geod = Geod(ellps="WGS84")
    expected = sum(geod.inv(a[0], a[1], b[0], b[1])[2] for a, b in itertools.pairwise(track))
    assert 150 < expected < 300  # about 90 m east and 111 m north
    assert patrol["distance_m"] == pytest.approx(expected, abs=0.2)
    assert patrol["point_count"] == 3 and patrol["ended_at"] is not None and patrol["notes"] == "夜间巡查"
    assert [i["case_number"] for i in patrol["issues"]] == [issue.json()["case_number"]]
    case = client.get(f"/api/cases/{issue.json()['case_id']}").json()
    assert case["source"] == "grid_worker" and f"巡查记录 #{patrol_id}" in case["description"]
    late = client.post(
        f"/api/governance/patrols/{patrol_id}/points", json={"points": [{"lon": lon, "lat": lat}]}
    )
    assert late.status_code == 409


def test_a_village_operator_cannot_see_another_villages_visits(client: TestClient, db: Database) -> None:
    login(client, "village2.grid")
    created = post_visit(client, visit_form(db, "village2.grid"))
    assert created.status_code == 201, created.text
    visit = created.json()
    patrol = client.post("/api/governance/patrols", json={}).json()
    logout(client)

    login(client, "village1.operator")
    assert client.get(f"/api/governance/visits/{visit['id']}").status_code == 404
    village1 = scope_of(db, "village1.operator")
    seen = client.get("/api/governance/visits", params={"limit": 500}).json()["items"]
    assert visit["id"] not in [v["id"] for v in seen]
    assert all(v["division_code"].startswith(village1) for v in seen)
    assert client.get(f"/api/governance/patrols/{patrol['id']}").status_code == 404
    assert client.post(f"/api/governance/patrols/{patrol['id']}/end", json={}).status_code == 404
    patrols = client.get("/api/governance/patrols", params={"limit": 500}).json()["items"]
    assert patrol["id"] not in [p["id"] for p in patrols]
    logout(client)

    login(client, "village2.operator")  # may see personal information: unmasked, audited
    mine = client.get(f"/api/governance/visits/{visit['id']}").json()
    assert mine["household_head"] == "王大山" and mine["household_phone"] == "13912345678"
    logout(client)

    login(client, "leader")  # the whole city, without pii.view: masked
    masked = client.get(f"/api/governance/visits/{visit['id']}").json()
    assert masked["household_head"] == "王**" and masked["household_phone"] == "139****5678"
    listed = client.get("/api/governance/visits", params={"village": visit["division_code"]}).json()
    assert "139****5678" in [v["household_phone"] for v in listed["items"]]
    assert "13912345678" not in json.dumps(listed)
    export = client.get(
        "/api/governance/visits", params={"village": visit["division_code"], "format": "xlsx"}
    )
    assert export.status_code == 200
    cells = [
        c
        for ws in load_workbook(io.BytesIO(export.content)).worksheets
        for row in ws.iter_rows(values_only=True)
        for c in row
    ]
    assert "139****5678" in cells and "13912345678" not in cells


def test_only_field_staff_record_and_the_phone_page_lists_my_cases(client: TestClient, db: Database) -> None:
    login(client, "leader")
    assert post_visit(client, visit_form(db, "village1.grid")).status_code == 403
    assert client.get("/m").status_code == 403
    logout(client)
    login(client, "village1.grid")
    case = post_visit(client, visit_form(db, "village1.grid")).json()["issues"][0]
    page = client.get("/m")
    assert page.status_code == 200
    assert "上报问题" in page.text and "入户走访" in page.text
    assert f'data-case="{case["case_number"]}"' in page.text
    assert 'data-nav="field"' in page.text
    logout(client)
    login(client, "village1.operator")  # centre staff record visits in their whole village
    assert client.get("/m").status_code == 200
    kinds = client.get("/api/governance/visits/issue-kinds").json()
    assert {"code": "neighbour_dispute", "type_code": "dispute", "category": "neighbour"}.items() <= kinds[
        0
    ].items()


# --- the phone page in a real browser -------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VENDOR = Path(__file__).resolve().parents[2] / "src" / "cityops" / "web" / "static" / "vendor"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def chromium() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None or not (VENDOR / "leaflet" / "leaflet.js").is_file():
        message = "chromium or the built web assets are missing"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.mark.browser
def test_a_grid_worker_reports_a_problem_from_a_phone(
    live_server: str, chromium: Any, db: Database, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    lon, lat, _grid = point_in_village(db, scope_of(db, "village1.grid")[:12])
    context = chromium.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        geolocation={"longitude": lon, "latitude": lat, "accuracy": 8},
        permissions=["geolocation"],
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server}/login?next=/m")
    page.fill("input[name=username]", "village1.grid")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.locator("form[action^='/login'] [type=submit]").click()
    expect(page).to_have_url(f"{live_server}/m")
    expect(page.locator("#m")).to_have_attribute("data-ready", "yes")

    # Fits the phone: nothing wider than the screen, big buttons.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    tab = page.locator("[data-tab=report]")
    expect(tab).to_contain_text("上报问题")
    assert tab.bounding_box()["height"] >= 48

    form = page.locator("#report-form")
    form.locator("select[name=kind]").select_option("rubbish")
    form.locator("input[name=title]").fill("河边垃圾堆放")
    form.locator("input[name=photo]").set_input_files(
        files=[{"name": "river.png", "mimeType": "image/png", "buffer": png(seed=5)}]
    )
    form.locator("[data-gps]").click()
    expect(form.locator("input[name=lon]")).not_to_have_value("")
    form.locator("[type=submit]").click()
    result = form.locator("[data-result]")
    expect(result).to_contain_text("已上报")
    number = re.search(r"[A-Z]+-\d{4}-\d{6}", result.inner_text()).group(0)  # type: ignore[union-attr]

    # The manual fallback: pick the place on the map instead.
    page.locator("[data-tab=visit]").click()
    visit = page.locator("#visit-form")
    visit.locator("[data-pick]").click()
    expect(visit.locator("[data-map]")).to_have_attribute("data-ready", "yes")
    visit.locator("[data-map]").click()
    expect(visit.locator("[data-loc-status]")).to_contain_text("地图")
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)

    # A patrol started and ended from the phone; the page keeps it across a reload.
    page.locator("[data-tab=patrol]").click()
    page.locator("#patrol-start").click()
    expect(page.locator("#patrol-status")).to_have_attribute("data-running", "yes")
    page.reload()
    expect(page.locator("#m")).to_have_attribute("data-ready", "yes")
    expect(page.locator("#patrol-status")).to_contain_text("巡查中")
    page.locator("[data-tab=patrol]").click()
    page.locator("#patrol-stop").click()
    expect(page.locator("#patrol-status")).to_contain_text("巡查已结束")

    page.goto(f"{live_server}/m")
    expect(page.locator("#m")).to_have_attribute("data-ready", "yes")
    page.locator("[data-tab=cases]").click()
    expect(page.locator(f"#case-list [data-case='{number}']")).to_be_visible()
    assert not errors, errors
    context.close()


def test_the_demo_seeds_a_handful_of_synthetic_visits_issues_and_patrols(db: Database) -> None:
    from sqlalchemy import select

    from cityops.cases.models import Case
    from cityops.governance.visits.demo import COUNTS
    from cityops.governance.visits.models import GridIssue, Patrol, Visit

    visits, with_issue, patrols = COUNTS["small"]
    with db.sessions() as session:
        made = session.scalars(select(Visit)).all()
        assert len(made) == visits and all(v.synthetic for v in made)
        issues = session.scalars(select(GridIssue)).all()
        assert len(issues) == with_issue and all(i.synthetic and i.visit_id for i in issues)
        sources = session.scalars(select(Case.source).where(Case.id.in_([i.case_id for i in issues]))).all()
        assert sources == ["grid_worker"] * with_issue
        walked = session.scalars(select(Patrol)).all()
        assert len(walked) == patrols and all(p.ended_at and p.distance_m > 0 for p in walked)
