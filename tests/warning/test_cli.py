"""`cityops warnings` as an operator runs it: list as JSON, print a warning's CAP message, import a file."""

from __future__ import annotations

import json
from pathlib import Path

from cityops.core.db import Database
from cityops.warning import cap, service
from cityops.warning.schemas import WarningCreate
from tests.accounts.test_cli import env_for, run
from tests.warning.helpers import WEATHER_SENDER, cap_field, issue_body, weather_cap


def test_list_json_and_cap_of_a_warning(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    db = Database(env["CITYOPS_DATABASE_URL"])
    try:
        with db.session() as session:
            warning = service.issue(
                session,
                data=WarningCreate(**issue_body(db, level="yellow")),
                actor=None,
                issuer=service.Issuer("cityops.hebi", "鹤壁市城市运行管理中心"),
            )
            warning_id = warning.id
    finally:
        db.dispose()

    listed = run(env, "warnings", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    page = json.loads(listed.stdout)
    assert page["total"] == 1
    [item] = page["items"]
    assert item["id"] == warning_id and item["level"] == "yellow" and item["status"] == "issued"
    assert item["level_label"] == "黄色"  # the installation's default language
    assert item["expires"] and [m["msg_type"] for m in item["messages"]] == ["Alert"]

    printed = run(env, "warnings", "cap", str(warning_id))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    cap.parse(printed.stdout)
    assert cap_field(printed.stdout, "//cap:info[1]/cap:severity") == ["Moderate"]

    unknown = run(env, "warnings", "cap", "424242")
    assert unknown.returncode == 1
    assert "no warning with id 424242" in unknown.stderr and "Traceback" not in unknown.stderr
    table = run(env, "warnings", "list")
    assert "1 of 1" in table.stdout and "+08:00" in table.stdout


def test_import_a_file_and_refuse_an_invalid_one_with_the_reason(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    good = tmp_path / "rainstorm.xml"
    good.write_text(weather_cap(), encoding="utf-8")
    imported = run(env, "warnings", "import", str(good))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("created: warning ") and "orange rainstorm" in imported.stdout
    assert run(env, "warnings", "import", str(good)).stdout.startswith("unchanged: ")
    listed = json.loads(run(env, "warnings", "list", "--json").stdout)
    assert [w["sender"] for w in listed["items"]] == [WEATHER_SENDER]

    bad = tmp_path / "open.xml"
    bad.write_text(
        weather_cap(identifier="open-1", polygon="35.45,113.95 35.45,114.80 36.05,114.80"), encoding="utf-8"
    )
    refused = run(env, "warnings", "import", str(bad))
    assert refused.returncode == 1
    assert (
        "error: open.xml: line 28 /alert/info[1]/area[1]/polygon[1]: a polygon needs at least 4 points"
        in refused.stderr
    )
    assert "/alert/info[2]/area[1]/polygon[1]" in refused.stderr  # the other problems follow
    assert "Traceback" not in refused.stderr
    assert json.loads(run(env, "warnings", "list", "--json").stdout)["total"] == 1
