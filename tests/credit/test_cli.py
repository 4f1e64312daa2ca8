"""`cityops credit`: check a code (exit status 0 or 1), import a register export, list entities."""

from __future__ import annotations

import json
from pathlib import Path

from cityops.core.db import Database
from tests.accounts.test_cli import env_for, run
from tests.credit.helpers import BUILT, new_code, register_csv, village_point


def test_check_code_exit_status_says_whether_valid(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    valid = run(env, "credit", "check-code", BUILT["N2"])
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.startswith(
        f"valid: {BUILT['N2']} (农业 / 村级集体经济组织, registered in division 410622)"
    )
    wrong = run(env, "credit", "check-code", "91110000710926094Q")
    assert wrong.returncode == 1
    assert (
        wrong.stdout.strip() == "invalid: 91110000710926094Q: wrong check character: 'Q' given, 'P' expected"
    )
    short = run(env, "credit", "check-code", "9111")
    assert short.returncode == 1 and "18 characters, this one 4" in short.stdout
    assert "Traceback" not in wrong.stderr + short.stderr


def test_import_reports_bad_lines_and_exits_1(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    lon, lat = village_point(Database(env["CITYOPS_DATABASE_URL"]), "village1.operator")
    register = tmp_path / "市场主体.csv"
    register.write_bytes(
        register_csv(
            [
                {
                    "统一社会信用代码": new_code(1),
                    "名称": "鹤壁市淇滨区命令行商贸有限公司",
                    "经度": str(lon),
                    "纬度": str(lat),
                },
                {"统一社会信用代码": "91410611MA00000000", "名称": "坏代码"},
                {"统一社会信用代码": new_code(2), "名称": "坏行业", "行业代码": "Z99"},
            ]
        )
    )
    result = run(env, "credit", "import", str(register))
    assert result.returncode == 1
    assert result.stdout.strip() == "created 1, updated 0, unchanged 0, rejected 2"
    assert result.stderr.splitlines() == [
        "line 3: code: wrong check character: '0' given, 'J' expected",
        "line 4: industry: 'Z99' is neither a GB/T 4754-2017 division code (e.g. C13 or 1311) "
        "nor a division's name",
    ]
    listed = json.loads(run(env, "credit", "list", "--q", "命令行", "--json").stdout)
    assert [e["code"] for e in listed["items"]] == [new_code(1)]
    missing = run(env, "credit", "import", str(tmp_path / "nothing.csv"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
