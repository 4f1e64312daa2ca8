"""Attachments on a case: upload, list, download in scope, stored once by content, refused with 413/415."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from cityops.config import Settings
from cityops.core import files
from cityops.core.db import Database
from tests.accounts.helpers import login, logout
from tests.cases.helpers import report, scope_of

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"a photo of the wall"


def upload(
    client: TestClient, case_id: int, data: bytes = PNG, name: str = "墙面.png", media_type: str = "image/png"
) -> object:
    return client.post(f"/api/cases/{case_id}/attachments", files={"file": (name, data, media_type)})


def stored_files(settings: Settings) -> list[Path]:
    return [p for p in Path(settings.attachments_dir).rglob("*") if p.is_file()]


def test_an_attachment_is_listed_downloaded_and_on_the_timeline(
    client: TestClient, db: Database, settings: Settings
) -> None:
    login(client, "village1.operator")
    case = report(client, db, scope_of(db, "village1.operator"))
    response = upload(client, case["id"])
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["filename"] == "墙面.png" and created["size"] == len(PNG)
    listed = client.get(f"/api/cases/{case['id']}/attachments").json()
    assert [a["id"] for a in listed] == [created["id"]]
    got = client.get(created["url"])
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    timeline = client.get(f"/api/cases/{case['id']}/timeline").json()
    assert timeline[-1]["action"] == "attach" and timeline[-1]["comment"] == "墙面.png"
    page = client.get(f"/cases/{case['id']}")
    assert "墙面.png" in page.text and "上传了附件" in page.text


def test_the_same_file_twice_is_stored_once(client: TestClient, db: Database, settings: Settings) -> None:
    login(client, "village1.operator")
    case = report(client, db, scope_of(db, "village1.operator"))
    first = upload(client, case["id"], name="a.png").json()
    second = upload(client, case["id"], name="b.png").json()
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert len(stored_files(settings)) == 1
    assert len(client.get(f"/api/cases/{case['id']}/attachments").json()) == 2


def test_oversize_and_wrong_type_are_refused_naming_the_field(
    client: TestClient, db: Database, settings: Settings
) -> None:
    login(client, "village1.operator")
    case = report(client, db, scope_of(db, "village1.operator"))
    big = upload(
        client,
        case["id"],
        data=b"%PDF" + b"0" * files.MAX_BYTES,
        name="big.pdf",
        media_type="application/pdf",
    )
    assert big.status_code == 413 and big.json()["field"] == "file"
    html = upload(
        client, case["id"], data=b"<script>alert(1)</script>", name="x.html", media_type="text/html"
    )
    assert html.status_code == 415 and html.json()["field"] == "file"
    disguised = upload(client, case["id"], data=b"not a png at all", name="fake.png")
    assert disguised.status_code == 415 and disguised.json()["field"] == "file"
    missing = client.post(f"/api/cases/{case['id']}/attachments", data={"other": "x"})
    assert missing.status_code == 422 and missing.json()["field"] == "file"
    assert stored_files(settings) == []
    assert client.get(f"/api/cases/{case['id']}/attachments").json() == []


def test_another_villages_attachment_is_not_found(client: TestClient, db: Database) -> None:
    login(client, "village2.operator")
    foreign = report(client, db, scope_of(db, "village2.operator"))
    attached = upload(client, foreign["id"]).json()
    logout(client)
    login(client, "village1.operator")
    assert client.get(attached["url"]).status_code == 404
    assert client.get(f"/api/cases/{foreign['id']}/attachments").status_code == 404
    assert upload(client, foreign["id"]).status_code == 404
    own = report(client, db, scope_of(db, "village1.operator"))
    # An attachment id of another case, through a case one may see, is not found either.
    assert client.get(f"/api/cases/{own['id']}/attachments/{attached['id']}").status_code == 404


def test_the_case_page_uploads_and_shows_a_refusal(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    case = report(client, db, scope_of(db, "village1.operator"))
    sent = client.post(
        f"/cases/{case['id']}/attachments",
        files={"file": ("现场.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/cases/{case['id']}"
    assert "现场.png" in client.get(f"/cases/{case['id']}").text
    refused = client.post(
        f"/cases/{case['id']}/attachments", files={"file": ("x.txt", b"hello", "text/plain")}
    )
    assert refused.status_code == 415 and "text/plain" in refused.text
