"""The rest of ThingsBoard's HTTP device API: a device waiting on GET /api/v1/{token}/attributes/updates
gets the shared attributes set meanwhile (by this process or another), or 408; a device's own request
(client-side RPC) is answered at once over HTTP and MQTT alike; bad input gets a precise 4xx; the
device page shows the attributes by scope and lets a manager set a shared one."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import time
from typing import Any

import httpx
from fastapi.testclient import TestClient

from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.perception.mqtt_helpers import Broker, Device, WorkerThread, wait_until
from tests.perception.test_api import make_device


def setting_until_polled(polled: concurrent.futures.Future[httpx.Response], set_value: Any) -> list[int]:
    """Set `interval` to 1, 2, ... until the waiting poll answers. The poll sends only what is set
    after it began, and nothing tells the test when it has begun: the values set before are missed,
    one set after it is what it answers."""
    sent: list[int] = []
    while not polled.done():
        sent.append(len(sent) + 1)
        set_value({"interval": sent[-1]})
        concurrent.futures.wait([polled], timeout=0.5)
        assert len(sent) < 100, "the poll never answered"
    return sent


def error_of(page: str) -> str:
    """The refusal shown on a page."""
    marker = '<p class="error" role="alert">'
    return page.split(marker, 1)[1].split("</p>", 1)[0] if marker in page else ""


def test_a_shared_attribute_set_during_the_wait_is_what_the_poll_returns(
    client: TestClient, db: Database
) -> None:
    device = make_device(client, db, name="一村温控-HTTP长轮询")
    token = device["access_token"]
    login(client, "admin")
    shared = f"/api/perception/devices/{device['id']}/attributes/shared"

    def set_value(values: dict[str, Any]) -> None:
        assert client.post(shared, json=values).status_code == 200

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        polled = pool.submit(client.get, f"/api/v1/{token}/attributes/updates", params={"timeout": 60_000})
        sent = setting_until_polled(polled, set_value)
        answer = polled.result()
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["interval"] in sent and set(answer.json()) == {"interval"}
    # Only what was set: the other shared attributes, and the client ones, are not in the update.
    set_value({"mode": "节能"})
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        polled = pool.submit(client.get, f"/api/v1/{token}/attributes/updates", params={"timeout": 60_000})
        sent = setting_until_polled(polled, lambda values: set_value({"targetTemp": 20 + values["interval"]}))
        answer = polled.result()
    assert answer.status_code == 200 and set(answer.json()) == {"targetTemp"}
    assert answer.json()["targetTemp"] - 20 in sent
    read = client.get(f"/api/v1/{token}/attributes", params={"sharedKeys": "targetTemp,mode"}).json()
    assert read["shared"] == {"targetTemp": 20 + sent[-1], "mode": "节能"}


SET_FROM_ANOTHER_PROCESS = """
import sys, time
from cityops import all_models
from cityops.core.db import Database
from cityops.perception import service
all_models.load()
db = Database(sys.argv[1])
for i in range(1, 600):
    with db.session() as session:
        service.set_shared_attributes(session, actor=None, device_id=int(sys.argv[2]),
                                      values={"firmwareTarget": f"2.{i}"})
    time.sleep(0.2)
"""


def test_an_update_set_by_another_process_reaches_the_poll(client: TestClient, db: Database) -> None:
    """The setter is another process (another API process, a CLI): nothing wakes the poll there, it
    finds the update in the database."""
    device = make_device(client, db, name="一村网关-跨进程")
    setter = None
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        polled = pool.submit(
            client.get, f"/api/v1/{device['access_token']}/attributes/updates", params={"timeout": 120_000}
        )
        try:
            setter = subprocess.Popen(
                [sys.executable, "-c", SET_FROM_ANOTHER_PROCESS, str(db.engine.url), str(device["id"])],
                stderr=subprocess.PIPE,
                text=True,
            )
            answer = polled.result(120)
        finally:
            if setter is not None:
                setter.kill()
                _out, err = setter.communicate()
    assert answer.status_code == 200, err[-3000:]
    assert list(answer.json()) == ["firmwareTarget"] and answer.json()["firmwareTarget"].startswith("2.")


def test_without_an_update_the_poll_answers_408_and_older_updates_are_not_replayed(
    client: TestClient, db: Database
) -> None:
    device = make_device(client, db, name="一村温控-无更新")
    token = device["access_token"]
    login(client, "admin")
    assert (
        client.post(
            f"/api/perception/devices/{device['id']}/attributes/shared", json={"interval": 60}
        ).status_code
        == 200
    )
    # Set before the poll began: not an update for it (as in ThingsBoard); the device reads it instead.
    assert client.get(f"/api/v1/{token}/attributes/updates", params={"timeout": 0}).status_code == 408
    waited = client.get(f"/api/v1/{token}/attributes/updates", params={"timeout": 300})
    assert waited.status_code == 408 and waited.content == b""
    assert client.get(f"/api/v1/{token}/attributes").json()["shared"] == {"interval": 60}


def test_client_side_rpc_answers_the_time_and_the_session_limits(client: TestClient, db: Database) -> None:
    token = make_device(client, db, name="一村烟感-客户端RPC")["access_token"]
    before = int(time.time() * 1000)
    now = client.post(f"/api/v1/{token}/rpc", json={"method": "getCurrentTime", "params": {}})
    after = int(time.time() * 1000)
    assert now.status_code == 200, now.text
    assert set(now.json()) == {"currentTime"} and before - 1 <= now.json()["currentTime"] <= after + 1
    limits = client.post(f"/api/v1/{token}/rpc", json={"method": "getSessionLimits"})  # params left out
    assert limits.status_code == 200
    assert limits.json()["maxPayloadSize"] > 0 and limits.json()["rateLimits"] == {}
    # Firmware sends bytes with no content type.
    raw = client.post(f"/api/v1/{token}/rpc", content=b'{"method":"getCurrentTime","params":{}}')
    assert raw.status_code == 200 and "currentTime" in raw.json()

    unknown = client.post(f"/api/v1/{token}/rpc", json={"method": "getWeather", "params": {"city": "鹤壁"}})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "unknown_method" and unknown.json()["field"] == "method"
    assert "getWeather" in unknown.json()["message"] and "getCurrentTime" in unknown.json()["message"]


def test_bad_input_to_the_device_api_is_refused_precisely(client: TestClient, db: Database) -> None:
    token = make_device(client, db, name="一村烟感-坏请求")["access_token"]
    updates = f"/api/v1/{token}/attributes/updates"
    for timeout in ("-1", "abc", "300001", "1.5", "99999999999999999999"):
        refused = client.get(updates, params={"timeout": timeout})
        assert refused.status_code == 422 and "timeout" in refused.json()["message"], (timeout, refused.text)
    assert client.get("/api/v1/no-such-token/attributes/updates", params={"timeout": 0}).status_code == 401
    assert client.get(f"/api/v1/{'x' * 65}/attributes/updates").status_code == 422

    rpc = f"/api/v1/{token}/rpc"
    cases = [
        (b'{"method": ', "malformed_json", None),
        (b"\xff\xfe", "malformed_json", None),
        (b"", "malformed_json", None),
        (b"[1, 2]", "bad_shape", None),
        (b'"getCurrentTime"', "bad_shape", None),
        (b'{"params": {}}', "bad_shape", "method"),
        (b'{"method": 7}', "bad_shape", "method"),
        (b'{"method": ""}', "bad_shape", "method"),
        (b'{"method": "get time!"}', "bad_shape", "method"),
        (json.dumps({"method": "x" * 65}).encode(), "bad_shape", "method"),
    ]
    for body, reason, field in cases:
        refused = client.post(rpc, content=body, headers={"Content-Type": "application/json"})
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["detail"]["reason"] == reason and refused.json().get("field") == field, body
    too_large = client.post(rpc, json={"method": "getCurrentTime", "params": {"blob": "x" * 70_000}})
    assert too_large.status_code == 413 and too_large.json()["detail"]["reason"] == "too_large"

    def chunks() -> Any:  # no Content-Length: refused once it has passed the limit
        for _ in range(100):
            yield b"x" * 10_000

    streamed = client.post(rpc, content=chunks())
    assert streamed.status_code == 413
    assert client.post("/api/v1/no-such-token/rpc", json={"method": "getCurrentTime"}).status_code == 401
    assert client.post(rpc, json={"method": "getCurrentTime"}).status_code == 200  # unaffected


def test_getcurrenttime_over_mqtt_is_answered_like_over_http(
    client: TestClient, db: Database, broker: Broker, worker: WorkerThread
) -> None:
    device = make_device(client, db, name="一村烟感-MQTT时间")
    mqtt_device = Device(broker.port, device["access_token"]).wait_connected()
    mqtt_device.client.subscribe("v1/devices/me/rpc/response/+", qos=1)
    before = int(time.time() * 1000)
    mqtt_device.publish("v1/devices/me/rpc/request/3", json.dumps({"method": "getCurrentTime", "params": {}}))
    mqtt_device.publish("v1/devices/me/rpc/request/4", json.dumps({"method": "getWeather", "params": {}}))
    answers = wait_until(
        lambda: (
            {t.rsplit("/", 1)[1]: json.loads(p) for t, p in mqtt_device.received if "/rpc/response/" in t}
            if len(mqtt_device.received) >= 2
            else None
        ),
        what="the two answers",
    )
    assert set(answers["3"]) == {"currentTime"} and answers["3"]["currentTime"] >= before - 1
    assert "getWeather" in answers["4"]["error"]
    mqtt_device.close()


def test_the_device_page_lists_attributes_by_scope_and_sets_a_shared_one(
    client: TestClient, db: Database
) -> None:
    device = make_device(client, db, name="一村温控-属性页")
    token = device["access_token"]
    posted = client.post(f"/api/v1/{token}/attributes", json={"firmware": "2.1.0", "rssi": -71})
    assert posted.status_code == 200
    page_url = f"/devices/{device['id']}"
    login(client, "admin")
    page = client.get(page_url)
    assert page.status_code == 200
    for title in ("客户端属性", "共享属性", "服务端属性"):
        assert title in page.text
    client_table = page.text.split('data-table="attributes-client"', 1)[1].split("</table>", 1)[0]
    assert 'data-attribute="firmware"' in client_table and "2.1.0" in client_table and "-71" in client_table
    shared_table = page.text.split('data-table="attributes-shared"', 1)[1].split("</table>", 1)[0]
    assert "暂无属性" in shared_table and 'data-form="shared-attribute"' in page.text

    # Set from the page, as a number, while the device waits on its HTTP long poll.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        polled = pool.submit(client.get, f"/api/v1/{token}/attributes/updates", params={"timeout": 60_000})

        def set_on_page(values: dict[str, Any]) -> None:
            posted = client.post(
                f"{page_url}/attributes/shared",
                follow_redirects=False,
                data={"key": "targetTemp", "value_type": "number", "value": str(20 + values["interval"] / 2)},
            )
            assert posted.status_code == 303, posted.text

        set_values = setting_until_polled(polled, set_on_page)
        answer = polled.result()
    assert answer.status_code == 200 and answer.json()["targetTemp"] in {20 + i / 2 for i in set_values}
    page = client.get(page_url)
    shared_table = page.text.split('data-table="attributes-shared"', 1)[1].split("</table>", 1)[0]
    assert 'data-attribute="targetTemp"' in shared_table and "暂无属性" not in shared_table
    assert client.get(f"/api/v1/{token}/attributes").json()["shared"] == {
        "targetTemp": 20 + set_values[-1] / 2
    }

    for value_type, value in (("string", "节能"), ("boolean", "true"), ("json", '{"from": 8, "to": 18}')):
        posted = client.post(
            f"{page_url}/attributes/shared",
            follow_redirects=False,
            data={"key": f"k_{value_type}", "value_type": value_type, "value": value},
        )
        assert posted.status_code == 303, posted.text
    shared = client.get(f"/api/v1/{token}/attributes").json()["shared"]
    assert {key: value for key, value in shared.items() if key != "targetTemp"} == {
        "k_string": "节能",
        "k_boolean": True,
        "k_json": {"from": 8, "to": 18},
    }
    attributes = client.get(f"/api/perception/devices/{device['id']}/attributes").json()
    assert [a["key"] for a in attributes["client"]] == ["firmware", "rssi"] and attributes["server"] == []

    # Refused with the reason, the form kept as typed.
    for data, reason in (
        ({"key": "x", "value_type": "number", "value": "二十"}, "value: a number"),
        ({"key": "x", "value_type": "number", "value": "true"}, "value: a number"),
        ({"key": "x", "value_type": "boolean", "value": "maybe"}, "value: true or false"),
        ({"key": "x", "value_type": "json", "value": "{oops"}, "value: not valid JSON"),
        ({"key": "x", "value_type": "json", "value": "null"}, "x: null is not a value"),
        ({"key": "", "value_type": "string", "value": "v"}, "1 to 64 printable characters"),
        ({"key": "x", "value_type": "colour", "value": "v"}, "type: one of string"),
    ):
        refused = client.post(f"{page_url}/attributes/shared", data=data)
        assert refused.status_code == 422, (data, refused.text)
        assert reason in error_of(refused.text) and 'data-form="shared-attribute"' in refused.text, data
        assert f'value="{data["value"]}"' in refused.text.replace("&#34;", '"'), data

    english = client.get(page_url, params={"lang": "en"})
    assert "Shared attributes" in english.text and "Client attributes" in english.text
    client.get(page_url, params={"lang": "zh"})
    logout(client)
    login(client, "village1.operator")  # sees the attributes, may not set them
    page = client.get(page_url)
    assert "2.1.0" in page.text and "targetTemp" in page.text
    assert 'data-form="shared-attribute"' not in page.text
    assert (
        client.post(
            f"{page_url}/attributes/shared", data={"key": "x", "value_type": "string", "value": "v"}
        ).status_code
        == 403
    )
