"""The warning pages in Chinese and English: the list with its filters and Excel export, a warning's page
(level, area, CAP messages and their XML, the response, the history), the forms that issue, update,
extend and lift a warning, the import of a CAP file with its errors, and the satellite catalogue."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cityops.core.db import Database
from cityops.warning import board
from tests.accounts.helpers import login, logout
from tests.warning.helpers import cap_field, county_code, weather_cap
from tests.warning.test_response import XINZHEN, issue
from tests.warning.test_satellite import collection, feature

LOCAL = ZoneInfo("Asia/Shanghai")


def local_input(delta: timedelta) -> str:
    """A datetime-local value as a browser sends it (the display timezone's wall clock)."""
    return (datetime.now(LOCAL) + delta).strftime("%Y-%m-%dT%H:%M")


def test_the_pages_render_in_chinese_and_english(client: TestClient, db: Database) -> None:
    warning = issue(client, db, hazard="flood", level="red", division_codes=[XINZHEN])
    login(client, "admin")
    expected = {
        "/warnings": ("预警", "Warnings"),
        "/warnings/board": ("指挥一张图", "Command board"),
        f"/warnings/{warning['id']}": ("应急响应", "Response"),
        "/warnings/scenes": ("卫星影像", "Satellite scenes"),
        "/warnings/new": ("发布预警", "Issue a warning"),
        "/warnings/import": ("导入 CAP 预警", "Import a CAP warning"),
    }
    for path, (chinese, english) in expected.items():
        zh = client.get(path, params={"lang": "zh"})
        assert zh.status_code == 200, (path, zh.text[:300])
        assert "<h1" in zh.text and chinese in zh.text, path
        en = client.get(path, params={"lang": "en"})
        assert en.status_code == 200 and english in en.text, path
    # The navigation has the warning pages for those who read warnings.
    home = client.get("/", params={"lang": "zh"}).text
    assert 'data-nav="warnings"' in home and 'data-nav="warning-board"' in home
    logout(client)
    login(client, "citizen")
    assert 'data-nav="warnings"' not in client.get("/").text
    assert client.get("/warnings").status_code == 403


def test_a_warnings_page_shows_level_area_messages_response_and_history(client: TestClient,
                                                                        db: Database) -> None:
    warning = issue(client, db, hazard="flood", level="red", division_codes=[XINZHEN])
    login(client, "admin")
    page = client.get(f"/warnings/{warning['id']}", params={"lang": "zh"}).text
    assert 'data-level="red"' in page and board.LEVEL_COLOURS["red"] in page
    assert '"type": "MultiPolygon"' in page  # the area, for the map
    [message_id] = re.findall(r'data-xml="(\d+)"', page)
    xml = client.get(f"/warnings/{warning['id']}/messages/{message_id}.xml")
    assert xml.headers["content-type"].startswith("application/cap+xml")
    assert cap_field(xml.content, "/cap:alert/cap:msgType") == ["Alert"]
    tasks = re.findall(r'data-task="(\d+)" data-case-status="reported"', page)
    assert len(tasks) > 8
    assert f'data-bucket="open">待签收: <strong>{len(tasks)}</strong>' in page
    assert f'href="/api/warnings/{warning["id"]}/history.xlsx"' in page
    assert 'data-kind="message"' in page and 'data-kind="task"' in page
    assert 'data-form="cancel"' in page and 'data-form="update"' in page
    missing = client.get(f"/warnings/{warning['id']}/messages/999999.xml")
    assert missing.status_code == 404
    logout(client)
    login(client, "village1.operator")  # reads it, may not change it
    page = client.get(f"/warnings/{warning['id']}").text
    assert 'data-form="cancel"' not in page and "您的范围内没有响应任务" in page
    assert client.post(f"/warnings/{warning['id']}/cancel", data={"reason": "x"}).status_code == 403


def test_issue_update_extend_and_lift_from_the_forms(client: TestClient, db: Database) -> None:
    login(client, "admin")
    form = {"hazard": "rainstorm", "level": "blue", "division_codes": county_code(db),
            "expires": local_input(timedelta(hours=6)), "instruction": "注意防范强降雨"}
    made = client.post("/warnings/new", data=form, follow_redirects=False)
    assert made.status_code == 303, made.text[:500]
    path = made.headers["location"]
    warning_id = int(path.rsplit("/", 1)[1])
    assert client.post(f"{path}/update", data={"level": "orange", "note": "雨势加强"},
                       follow_redirects=False).status_code == 303
    later = local_input(timedelta(hours=12))
    assert client.post(f"{path}/extend", data={"expires": later}, follow_redirects=False).status_code == 303
    found = client.get(f"/api/warnings/{warning_id}").json()
    assert found["level"] == "orange"
    assert [m["msg_type"] for m in found["messages"]] == ["Alert", "Update", "Update"]
    assert datetime.fromisoformat(found["expires"]).astimezone(LOCAL).strftime("%Y-%m-%dT%H:%M") == later
    # Refused changes show the reason on the page, and change nothing.
    earlier = client.post(f"{path}/extend", data={"expires": local_input(timedelta(hours=1))})
    assert earlier.status_code == 422 and "must be later than" in earlier.text
    nothing = client.post(f"{path}/update", data={"level": "", "instruction": ""})
    assert nothing.status_code == 422 and "nothing to update" in nothing.text
    no_reason = client.post(f"{path}/cancel", data={"reason": "  "})
    assert no_reason.status_code == 422 and "give the reason" in no_reason.text
    lifted = client.post(f"{path}/cancel", data={"reason": "降雨结束"}, follow_redirects=False)
    assert lifted.status_code == 303
    found = client.get(f"/api/warnings/{warning_id}").json()
    assert found["status"] == "cancelled" and found["messages"][-1]["msg_type"] == "Cancel"
    assert 'data-form="cancel"' not in client.get(path).text  # nothing left to do


def test_a_bad_issue_form_is_shown_again_with_the_reason(client: TestClient, db: Database) -> None:
    login(client, "admin")
    base = {"hazard": "rainstorm", "level": "blue", "expires": local_input(timedelta(hours=6)),
            "instruction": "注意防范"}
    for changed, reason in (({"division_codes": "999999"}, "no division with code &#39;999999&#39;"),
                            ({"division_codes": ""}, "give the area"),
                            ({"division_codes": county_code(db), "expires": "tomorrow"}, "expires: a date"),
                            ({"division_codes": county_code(db), "area": "{oops"}, "area: not valid JSON"),
                            ({"division_codes": county_code(db), "instruction": ""}, "instruction")):
        answer = client.post("/warnings/new", data={**base, **changed})
        assert answer.status_code == 422, (changed, answer.status_code)
        assert reason in answer.text, (changed, reason)
        assert '<option value="rainstorm" selected>' in answer.text  # the form keeps what was typed
    assert client.get("/api/warnings").json()["total"] == 0


def test_the_list_filters_and_exports(client: TestClient, db: Database) -> None:
    red = issue(client, db, hazard="flood", level="red", division_codes=[XINZHEN])
    blue = issue(client, db)
    login(client, "admin")
    page = client.get("/warnings", params={"level": "red"}).text
    assert f'data-warning="{red["id"]}"' in page and f'data-warning="{blue["id"]}"' not in page
    export = client.get("/warnings", params={"level": "red", "format": "xlsx", "lang": "en"})
    assert export.status_code == 200
    sheet = load_workbook(io.BytesIO(export.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("ID", "Warning level", "Hazard")
    assert [r[0] for r in rows[1:]] == [red["id"]] and rows[1][1] == "Red"
    assert client.get("/warnings", params={"level": "purple"}).status_code == 422


def test_importing_a_cap_file_from_the_page(client: TestClient, db: Database) -> None:
    login(client, "admin")
    files = {"file": ("bad.xml", b"<alert><identifier>x</identifier></alert>", "application/xml")}
    refused = client.post("/warnings/import", files=files)
    assert refused.status_code == 422 and 'data-problems' in refused.text
    assert "urn:oasis:names:tc:emergency:cap:1.2" in refused.text  # the reason names the namespace expected
    good = {"file": ("weather.xml", weather_cap().encode(), "application/xml")}
    made = client.post("/warnings/import", files=good)
    assert made.status_code == 201 and 'data-outcome="created"' in made.text
    listed = client.get("/warnings", params={"source": "external"}).text
    assert "鹤壁市气象台发布暴雨橙色预警信号" in listed
    assert client.post("/warnings/import", files={}).status_code == 422


def test_the_catalogue_page_opens_a_case_from_a_change_area(client: TestClient, db: Database) -> None:
    login(client, "admin")
    made = client.post("/api/warnings/scenes", content=collection(feature("GF6-PAGE")),
                       headers={"Content-Type": "application/json"})
    [change] = made.json()["scenes"][0]["changes"]
    page = client.get("/warnings/scenes").text
    assert f'action="/warnings/scenes/changes/{change["id"]}/case"' in page and "GF6-PAGE" in page
    opened = client.post(f"/warnings/scenes/changes/{change['id']}/case", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"].startswith("/cases/")
    again = client.post(f"/warnings/scenes/changes/{change['id']}/case")
    assert again.status_code == 409 and "has a case already" in again.text
    page = client.get("/warnings/scenes").text
    assert f'action="/warnings/scenes/changes/{change["id"]}/case"' not in page
    bad = client.post("/warnings/scenes", files={"file": ("s.json", json.dumps([{"scene_id": "x"}]).encode(),
                                                          "application/json")})
    assert bad.status_code == 422 and "feature 0:" in bad.text
