"""The device pages: list with status and map points, Excel export, the device with its latest
values and token controls for managers only, and the refused messages."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.perception.test_api import make_device


def test_device_list_detail_and_token_rotation(client: TestClient, db: Database) -> None:
    device = make_device(client, db, name="一村烟感-页面")
    token = device["access_token"]
    assert client.post(f"/api/v1/{token}/telemetry", json={"smoke": 0.12, "alarm": True}).status_code == 200
    login(client, "admin")
    listed = client.get("/devices", params={"status": "online", "q": "一村"})  # on the first page
    assert listed.status_code == 200
    assert "一村烟感-页面" in listed.text and "在线" in listed.text
    assert f'data-device="{device["id"]}"' in listed.text
    assert "一村烟感-页面" not in client.get("/devices", params={"status": "offline"}).text
    export = client.get("/devices", params={"format": "xlsx", "q": "页面"})
    rows = list(load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True))
    assert rows[1][1] == "一村烟感-页面" and rows[1][3] == "online"

    page = client.get(f"/devices/{device['id']}")
    assert "烟雾浓度" in page.text and "0.12" in page.text and "是" in page.text  # alarm true
    assert 'data-chart-key="smoke"' in page.text
    assert token in page.text
    rotated = client.post(f"/devices/{device['id']}/token", data={"action": "rotate"}, follow_redirects=False)
    assert rotated.status_code == 303
    assert token not in client.get(f"/devices/{device['id']}").text
    assert client.post(f"/api/v1/{token}/telemetry", json={"smoke": 0.1}).status_code == 401
    refused = client.get("/devices/rejections")
    assert "令牌无效或已吊销" in refused.text

    logout(client)
    login(client, "village1.operator")  # sees the device, not its token
    seen = client.get(f"/devices/{device['id']}")
    assert seen.status_code == 200 and "访问令牌" not in seen.text
    assert client.post(f"/devices/{device['id']}/token", data={"action": "revoke"}).status_code == 403
    assert client.get("/devices/rejections").status_code == 403


def test_the_alarm_console_acknowledges_and_links_the_case(client: TestClient, db: Database) -> None:
    device = make_device(client, db, name="一村烟感-告警台")
    assert client.post(f"/api/v1/{device['access_token']}/telemetry", json={"smoke": 0.6}).status_code == 200
    login(client, "handler.fire")
    console = client.get("/devices/alarms")
    assert "一村烟感-告警台" in console.text and "重要" in console.text and "告警中，未确认" in console.text
    assert "/cases/" in console.text
    alarm_id = client.get("/api/perception/alarms").json()["items"][0]["id"]
    acked = client.post(f"/devices/alarms/{alarm_id}/ack", follow_redirects=False)
    assert acked.status_code == 303
    assert "告警中，已确认" in client.get("/devices/alarms").text
