"""Background Excel exports: progress while a large list is written, the owner alone reads the job,
bad filters refused before a job exists, and a job cut off by a crash is not left running."""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from cityops.app import create_app
from cityops.cases.models import Case
from cityops.config import Settings
from cityops.core import exports
from cityops.core.db import Database, utcnow
from cityops.core.exports import ExportJob
from tests.accounts.helpers import login, user_id
from tests.cases.helpers import report, scope_of

WAIT_S = 60  # a safety net against a hung worker, never a pause

FILTERS: dict[str, Any] = {
    "type_code": "dispute",
    "status": ["reported"],
    "open_only": "true",
    "sort": "oldest",
}


def add_cases(db: Database, like: dict[str, Any], count: int) -> None:
    """`count` copies of a case reported through the API (quicker than reporting each)."""
    with db.session() as session:
        model = session.get(Case, like["id"])
        assert model is not None
        base = {c.key: getattr(model, c.key) for c in Case.__table__.columns if c.key not in ("id", "number")}
        session.add_all(
            Case(**{**base, "number": f"EXP-{i:06d}", "created_at": model.created_at + timedelta(seconds=i)})
            for i in range(count)
        )


def sheet_rows(content: bytes) -> list[tuple[Any, ...]]:
    book = load_workbook(io.BytesIO(content), read_only=True)
    return [tuple(row) for row in book.worksheets[0].iter_rows(values_only=True)]


def start(client: TestClient, params: dict[str, Any], kind: str = "cases") -> Any:
    return client.post("/api/exports", json={"kind": kind, "params": params})


def test_a_large_export_reports_progress_and_ends_with_the_filtered_list(
    app: FastAPI, client: TestClient, db: Database
) -> None:
    login(client, "village1.operator")
    first = report(client, db, scope_of(db, "village1.operator"), title="导出测试案件")
    add_cases(db, first, 2_499)
    listed = client.get("/api/cases", params={**FILTERS, "limit": 1}).json()["total"]
    assert listed >= 2_500

    runner = exports.runner_for(app.state)
    reached, resume = threading.Event(), threading.Event()

    def hold_at_1000(job_id: str, done: int) -> None:
        if done == 1_000:
            reached.set()
            resume.wait(WAIT_S)

    runner.on_progress = hold_at_1000
    started = start(client, FILTERS)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] in ("queued", "running") and job["total"] == listed and len(job["id"]) >= 40

    # Half-way, a poll sees the rows written so far.
    assert reached.wait(WAIT_S)
    midway = client.get(f"/api/exports/{job['id']}").json()
    assert midway["status"] == "running" and midway["done_rows"] == 1_000
    assert midway["percent"] == 1_000 * 100 // listed
    assert midway["file_url"] is None
    assert client.get(f"/api/exports/{job['id']}/file").status_code == 404
    resume.set()
    runner.wait(job["id"], WAIT_S)

    done = client.get(f"/api/exports/{job['id']}").json()
    assert done["status"] == "done" and done["percent"] == 100, done
    assert done["done_rows"] == done["total"] == listed
    download = client.get(done["file_url"])
    assert download.status_code == 200
    assert download.headers["content-type"].startswith(exports.XLSX_MEDIA_TYPE)
    disposition = download.headers["content-disposition"]
    assert "filename*=UTF-8''%E6%A1%88%E4%BB%B6%E5%88%97%E8%A1%A8.xlsx" in disposition  # 案件列表.xlsx
    rows = sheet_rows(download.content)
    # The same rows as the direct export of the same filtered list, in the same order.
    direct = client.get("/api/cases", params={**FILTERS, "format": "xlsx"})
    assert rows == sheet_rows(direct.content)
    assert len(rows) == listed + 1 and first["number"] in {r[0] for r in rows}
    assert rows[0][0] == "Number"
    # Personal data stays masked, as in the list.
    assert all(r[9] != "13812345678" for r in rows[1:])


def test_only_the_owner_sees_a_job(app: FastAPI, client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    job = start(client, {"box": "scope"}).json()
    exports.runner_for(app.state).wait(job["id"], WAIT_S)
    assert client.get(f"/api/exports/{job['id']}").json()["status"] == "done"
    assert client.get(f"/api/exports/{job['id']}/file").status_code == 200
    for other in ("village1.grid", "admin"):  # same village, and the city's administrator
        login(client, other)
        assert client.get(f"/api/exports/{job['id']}").status_code == 404
        assert client.get(f"/api/exports/{job['id']}/file").status_code == 404
    assert client.get("/api/exports/" + "x" * 43).status_code == 404


def test_a_bad_filter_is_refused_before_any_job(client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    cases = [
        ({"status": ["sideways"]}, "params.status"),
        ({"level": "planet"}, "params.level"),
        ({"box": "everyone"}, "params.box"),
        ({"type_code": "no-such-type"}, "params.type_code"),
        ({"colour": "red"}, "params.colour"),
        ({"q": "x" * 61}, "params.q"),
    ]
    for params, field in cases:
        response = start(client, params)
        assert response.status_code == 422, (params, response.text)
        assert field in response.text, (params, response.text)
    unknown = start(client, {}, kind="nothing")
    assert unknown.status_code == 422 and "kind" in unknown.json()["field"]
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ExportJob)) == 0


def test_a_job_cut_off_by_a_crash_is_failed_after_a_restart(settings: Settings, db: Database) -> None:
    # A process died while exporting: its job says "running" and nobody refreshes its heartbeat.
    owner = user_id(db, "village1.operator")
    long_ago = utcnow() - timedelta(minutes=10)
    with db.session() as session:
        session.add(
            ExportJob(
                id="crashed-job-" + "a" * 30,
                user_id=owner,
                kind="cases",
                params={},
                status="running",
                total=5_000,
                done_rows=1_500,
                created_at=long_ago,
                heartbeat_at=long_ago,
                expires_at=long_ago + exports.KEEP_FOR,
            )
        )
    with TestClient(create_app(settings, db=db)) as client:  # the restarted server
        login(client, "village1.operator")
        job = client.get("/api/exports/crashed-job-" + "a" * 30).json()
    assert job["status"] == "failed" and "interrupted" in job["error"], job
    assert job["done_rows"] == 1_500


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _breaks_after_three_rows(_session: Any, _viewer: Any, _params: Any) -> tuple[list[str], int, Any]:
    def rows() -> Any:
        for i in range(3):
            yield [i]
        raise RuntimeError("the disk is full")

    return ["n"], 10, rows()


def test_a_failing_export_is_recorded_with_its_message(app: FastAPI, client: TestClient) -> None:
    exports.register(
        exports.ExportKind(
            code="test_broken",
            filename="坏.xlsx",
            sheet_title="broken",
            params=NoParams,
            build=_breaks_after_three_rows,
        )
    )
    login(client, "village1.operator")
    job = start(client, {}, kind="test_broken").json()
    exports.runner_for(app.state).wait(job["id"], WAIT_S)
    failed = client.get(f"/api/exports/{job['id']}").json()
    assert failed["status"] == "failed" and failed["done_rows"] == 3
    assert failed["error"] == "RuntimeError: the disk is full"
    assert client.get(f"/api/exports/{job['id']}/file").status_code == 404


def test_an_expired_export_is_gone_and_purged(app: FastAPI, client: TestClient, db: Database) -> None:
    login(client, "village1.operator")
    job = start(client, {"box": "scope"}).json()
    runner = exports.runner_for(app.state)
    runner.wait(job["id"], WAIT_S)
    assert client.get(f"/api/exports/{job['id']}").json()["status"] == "done"
    with db.session() as session:
        row = session.get(ExportJob, job["id"])
        assert row is not None and row.file_sha256
        sha = row.file_sha256
        row.expires_at = utcnow() - timedelta(minutes=1)
    assert client.get(f"/api/exports/{job['id']}/file").status_code == 410
    assert exports.purge_expired(db, runner.root) == 1
    assert client.get(f"/api/exports/{job['id']}").status_code == 404
    assert not (runner.root / sha[:2] / sha[2:4] / sha).exists()
