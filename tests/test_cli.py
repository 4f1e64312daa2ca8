"""The command line as an operator uses it: real processes, real database files."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CITYOPS = [sys.executable, "-m", "cityops.cli"]


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CITYOPS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def cli_env(tmp_path: Path, template_db: Path) -> dict[str, str]:
    db_file = tmp_path / "cli.db"
    shutil.copyfile(template_db, db_file)
    return {**os.environ, "CITYOPS_DATABASE_URL": f"sqlite:///{db_file}", "CITYOPS_ENVIRONMENT": "test"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_explains_each_command(tmp_path: Path, template_db: Path) -> None:
    result = run_cli("--help", env=cli_env(tmp_path, template_db))
    assert result.returncode == 0
    for command in ("serve", "seed", "db", "places", "users", "tokens"):
        assert command in result.stdout


def test_serve_answers_healthz_once_ready(tmp_path: Path, template_db: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*CITYOPS, "serve", "--port", str(port)], env=cli_env(tmp_path, template_db),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    assert resp.status == 200
                    assert b'"ok"' in resp.read()
                    break
            except OSError:
                assert proc.poll() is None, f"server exited with {proc.returncode}"
                assert time.monotonic() < deadline, "server did not become ready in 60 s"
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_seed_rejects_an_unknown_scale(tmp_path: Path, template_db: Path) -> None:
    result = run_cli("seed", "--scale", "huge", env=cli_env(tmp_path, template_db))
    assert result.returncode == 2
    assert "--scale must be 'full' or 'small'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path, template_db: Path) -> None:
    env = {**cli_env(tmp_path, template_db), "CITYOPS_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x"}
    result = run_cli("places", "stats", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot use the database")
    assert "Traceback" not in result.stderr


def test_production_with_the_default_secret_is_refused(tmp_path: Path, template_db: Path) -> None:
    env = {**cli_env(tmp_path, template_db), "CITYOPS_ENVIRONMENT": "production"}
    result = run_cli("places", "stats", env=env)
    assert result.returncode == 2
    assert "CITYOPS_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr


def test_db_upgrade_creates_the_database_folder(tmp_path: Path, template_db: Path) -> None:
    db_file = tmp_path / "new" / "folder" / "c.db"
    env = {**cli_env(tmp_path, template_db), "CITYOPS_DATABASE_URL": f"sqlite:///{db_file}"}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    assert db_file.exists()
