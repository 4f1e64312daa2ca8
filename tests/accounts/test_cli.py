"""`cityops users ...` and `cityops tokens ...` as an operator runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from cityops.accounts.demo import DEMO_PASSWORD, DEMO_USERNAMES
from cityops.app import create_app
from cityops.core.auth.sessions import TOKEN_CACHE_S
from cityops.core.db import Database
from tests.conftest import make_settings

CITYOPS = [sys.executable, "-m", "cityops.cli"]


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CITYOPS, *args], env=env, capture_output=True, text=True, timeout=120,
                          input=stdin)


def env_for(tmp_path: Path, template_db: Path) -> dict[str, str]:
    shutil.copyfile(template_db, tmp_path / "cityops.db")
    return {**os.environ, "CITYOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'cityops.db'}",
            "CITYOPS_ENVIRONMENT": "test"}


def test_users_list_demo_prints_every_documented_account_with_the_password(
        tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    result = run(env, "users", "list", "--demo", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["username"] for r in rows] == list(DEMO_USERNAMES)
    assert {r["password"] for r in rows} == {DEMO_PASSWORD}
    by_name = {r["username"]: r for r in rows}
    assert by_name["admin"]["level"] == "city"
    assert by_name["county.operator"]["level"] == "county"
    assert by_name["township.operator"]["level"] == "township"
    assert by_name["village1.operator"]["level"] == "village"
    assert by_name["police.handler"]["division"] == "410600"  # the department's seat
    assert by_name["citizen"]["division"] is None
    table = run(env, "users", "list", "--demo")
    assert DEMO_PASSWORD in table.stdout
    assert "village2.grid" in table.stdout


def test_users_create_names_the_bad_field(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    base = ["users", "create", "new.citizen", "--role", "citizen", "--name", "市民",
            "--password", "Citizen-2024"]
    bad_id = run(env, *base, "--id-number", "110105194912310021")
    assert bad_id.returncode == 2
    assert "error:" in bad_id.stderr and "(id_number)" in bad_id.stderr
    assert "Traceback" not in bad_id.stderr
    bad_role = run(env, "users", "create", "x.y", "--role", "king", "--name", "x",
                   "--password", "Citizen-2024")
    assert bad_role.returncode == 2 and "unknown role 'king'" in bad_role.stderr
    weak = run(env, *base[:-1], "short")
    assert weak.returncode == 2 and "(password)" in weak.stderr
    ok = run(env, *base, "--id-number", "11010519491231002X", "--phone", "13912345678")
    assert ok.returncode == 0, ok.stderr
    taken = run(env, *base)
    assert taken.returncode == 2 and "is taken" in taken.stderr


def test_tokens_create_and_revoke(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    created = run(env, "tokens", "create", "county.operator", "--name", "gateway", "--days", "5")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("cot_")
    assert "not shown again" in created.stderr
    unknown = run(env, "tokens", "create", "nobody")
    assert unknown.returncode == 2 and "no user named 'nobody'" in unknown.stderr

    settings = make_settings(tmp_path)
    db = Database(settings.database_url)
    try:
        with TestClient(create_app(settings, db=db)) as client:
            headers = {"Authorization": f"Bearer {token}"}
            assert client.get("/api/me", headers=headers).json()["username"] == "county.operator"
            listed = run(env, "tokens", "list", "county.operator", "--json")
            assert [t["prefix"] for t in json.loads(listed.stdout)] == [token[:12]]
            revoked = run(env, "tokens", "revoke", token[:12])
            assert revoked.returncode == 0, revoked.stderr
            # The server verified the token moments ago; it asks the database again within seconds.
            deadline = time.monotonic() + TOKEN_CACHE_S + 2
            response = client.get("/api/me", headers=headers)
            while response.status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.25)
                response = client.get("/api/me", headers=headers)
            assert response.status_code == 401
            assert response.json()["message"] == "token revoked"
    finally:
        db.dispose()
    missing = run(env, "tokens", "revoke", "cot_nothing")
    assert missing.returncode == 2 and "no token with prefix" in missing.stderr
