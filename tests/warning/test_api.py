"""The warning API: who may read and who may issue, the CAP message as served, imports refused with the
reason, labels in the reader's language."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from cityops.core.db import Database, utcnow
from cityops.warning import cap
from tests.accounts.helpers import login, logout
from tests.warning.helpers import WEATHER_SENDER, cap_field, issue_body, weather_cap


def issued(client: TestClient, db: Database, **overrides: Any) -> dict[str, Any]:
    login(client, "admin")
    response = client.post("/api/warnings", json=issue_body(db, **overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_roles_who_may_read_and_who_may_issue(client: TestClient, db: Database) -> None:
    assert client.get("/api/warnings").status_code == 401
    assert client.post("/api/warnings", json=issue_body(db)).status_code == 401
    login(client, "citizen")
    assert client.get("/api/warnings").status_code == 403
    logout(client)
    login(client, "emergency.handler")  # a department reads warnings but does not issue them
    assert client.get("/api/warnings").status_code == 200
    refused = client.post("/api/warnings", json=issue_body(db))
    assert refused.status_code == 403 and "warnings.issue" in refused.json()["message"]
    assert (
        client.post(
            "/api/warnings/import",
            content=weather_cap().encode(),
            headers={"Content-Type": "application/xml"},
        ).status_code
        == 403
    )
    logout(client)
    warning = issued(client, db)
    assert warning["status"] == "issued" and warning["severity"] == "Minor"
    assert warning["allowed_actions"] == ["cancel", "extend", "update"]
    logout(client)
    login(client, "village1.grid")
    assert client.get(f"/api/warnings/{warning['id']}").status_code == 200
    assert client.post(f"/api/warnings/{warning['id']}/cancel", json={"reason": "x"}).status_code == 403


def test_the_cap_message_is_served_as_cap_xml_after_each_step(client: TestClient, db: Database) -> None:
    warning = issued(client, db)
    first = client.get(f"/api/warnings/{warning['id']}/cap")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/cap+xml")
    assert cap_field(first.content, "/cap:alert/cap:msgType") == ["Alert"]
    cap.parse(first.content)
    [identifier] = cap_field(first.content, "/cap:alert/cap:identifier")

    red = client.post(f"/api/warnings/{warning['id']}/update", json={"level": "red"})
    assert red.status_code == 200, red.text
    assert red.json()["level"] == "red" and red.json()["severity"] == "Extreme"
    update = client.get(f"/api/warnings/{warning['id']}/cap").content
    assert cap_field(update, "/cap:alert/cap:msgType") == ["Update"]
    assert identifier in cap_field(update, "/cap:alert/cap:references")[0]

    later = (utcnow() + timedelta(days=1)).isoformat()
    assert client.post(f"/api/warnings/{warning['id']}/extend", json={"expires": later}).status_code == 200
    assert client.post(f"/api/warnings/{warning['id']}/update", json={}).status_code == 422
    cancelled = client.post(f"/api/warnings/{warning['id']}/cancel", json={"reason": "雨停"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/warnings/{warning['id']}/cancel", json={"reason": "雨停"})
    assert again.status_code == 409 and again.json()["error"] == "invalid_transition"
    final = client.get(f"/api/warnings/{warning['id']}/cap").content
    assert cap_field(final, "/cap:alert/cap:msgType") == ["Cancel"]
    assert len(cap_field(final, "/cap:alert/cap:references")[0].split(" ")) == 3
    assert [m["msg_type"] for m in client.get(f"/api/warnings/{warning['id']}").json()["messages"]] == [
        "Alert",
        "Update",
        "Update",
        "Cancel",
    ]
    assert client.get("/api/warnings/999999/cap").status_code == 404


def test_bad_input_names_the_field(client: TestClient, db: Database) -> None:
    login(client, "admin")
    naive = client.post("/api/warnings", json=issue_body(db, expires="2030-01-01T08:00:00"))
    assert naive.status_code == 422 and "expires" in naive.json()["message"]
    level = client.post("/api/warnings", json=issue_body(db, level="purple"))
    assert level.status_code == 422 and "level" in level.json()["message"]
    area = client.post("/api/warnings", json=issue_body(db, division_codes=["410699"]))
    assert area.status_code == 422 and area.json()["field"] == "division_codes"


def test_labels_follow_the_readers_language(client: TestClient, db: Database) -> None:
    warning = issued(client, db, hazard="flood", level="orange")
    chinese = client.get(f"/api/warnings/{warning['id']}").json()
    assert (chinese["hazard_label"], chinese["level_label"], chinese["status_label"]) == (
        "洪水",
        "橙色",
        "生效中",
    )
    english = client.get(f"/api/warnings/{warning['id']}", params={"lang": "en"}).json()
    assert (english["hazard_label"], english["level_label"], english["status_label"]) == (
        "Flood",
        "Orange",
        "In force",
    )


def test_import_stores_an_external_warning_and_refuses_bad_cap_with_the_reason(
    client: TestClient, db: Database
) -> None:
    login(client, "admin")
    document = weather_cap().encode()
    created = client.post(
        "/api/warnings/import", content=document, headers={"Content-Type": "application/xml"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["outcome"] == "created"
    warning = created.json()["warning"]
    assert warning["sender"] == WEATHER_SENDER and warning["level"] == "orange"
    same = client.post("/api/warnings/import", content=document, headers={"Content-Type": "application/xml"})
    assert same.status_code == 200 and same.json()["outcome"] == "unchanged"
    listed = client.get("/api/warnings", params={"source": "external", "status": "active"}).json()
    assert [w["id"] for w in listed["items"]] == [warning["id"]] and listed["total"] == 1
    assert client.get(f"/api/warnings/{warning['id']}/cap").content == document
    refused = client.post(f"/api/warnings/{warning['id']}/cancel", json={"reason": "x"})
    assert refused.status_code == 409 and "only its sender" in refused.json()["message"]

    broken = client.post(
        "/api/warnings/import", content=b"<alert><oops></alert>", headers={"Content-Type": "application/xml"}
    )
    assert broken.status_code == 422 and broken.json()["error"] == "invalid_cap"
    assert "not well-formed XML" in broken.json()["message"]
    late = weather_cap(identifier="late-1", expires=utcnow() - timedelta(hours=1))
    refused_late = client.post(
        "/api/warnings/import", content=late.encode(), headers={"Content-Type": "application/xml"}
    )
    assert refused_late.status_code == 422
    [first] = refused_late.json()["detail"]["errors"][:1]
    assert first["path"] == "/alert/info[1]/expires[1]" and first["line"] == 20
    assert "is not after the message was sent" in first["message"]
    assert client.get("/api/warnings").json()["total"] == 1
