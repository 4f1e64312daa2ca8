"""`cityops devices`: bulk import with a report of rejected lines, listing with tokens, revoking."""

from __future__ import annotations

import io
import json
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import select

from cityops.core.db import Database
from cityops.places.models import Grid
from tests.accounts.test_cli import env_for, run


def grid_points(db_file: Path, n: int) -> list[tuple[float, float]]:
    db = Database(f"sqlite:///{db_file}")
    try:
        with db.sessions() as session:
            return [(float(x), float(y)) for x, y in session.execute(
                select(Grid.centroid_lon, Grid.centroid_lat).order_by(Grid.code).limit(n))]
    finally:
        db.dispose()


def test_import_registers_the_good_rows_and_names_the_bad_lines(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    (a, b, c) = grid_points(tmp_path / "cityops.db", 3)
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(
        "名称,类型,经度,纬度\n"
        f"淇滨烟感-1,smoke_detector,{a[0]},{a[1]}\n"
        f"淇滨水位-1,water_level,{b[0]},{b[1]}\n"
        f"烤面包机,toaster,{c[0]},{c[1]}\n"
        "\n"
        "城外烟感,smoke_detector,10.0,10.0\n"
        f"淇滨烟感-1,smoke_detector,{c[0]},{c[1]}\n"
        "坐标错误,smoke_detector,东经,北纬\n", encoding="utf-8-sig")
    result = run(env, "devices", "import", str(csv_file))
    assert result.returncode == 1
    assert "registered 2, rejected 4" in result.stdout
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 4: profile: unknown device profile 'toaster'")
    assert errors[1].startswith("line 6: lon:")  # outside the city
    assert errors[2].startswith("line 7: name: a device named '淇滨烟感-1' exists")
    assert errors[3].startswith("line 8: lon: lon and lat must be numbers")
    assert "Traceback" not in result.stderr

    listed = json.loads(run(env, "devices", "list", "--json", "--limit", "1000").stdout)
    imported = [d for d in listed["items"] if not d["synthetic"]]  # the demo seed has devices too
    assert {d["name"] for d in imported} == {"淇滨烟感-1", "淇滨水位-1"}
    assert all(d["access_token"] for d in imported)  # the command line is the administrator's
    first = imported[0]
    revoked = run(env, "devices", "revoke", str(first["id"]))
    assert revoked.returncode == 0 and "token revoked" in revoked.stdout
    assert "(revoked)" in run(env, "devices", "list").stdout


def test_import_reads_excel_and_refuses_other_files(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    [(lon, lat)] = grid_points(tmp_path / "cityops.db", 1)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["name", "profile", "lon", "lat"])
    sheet.append(["鹤山空气站", "air_quality", lon, lat])
    buffer = io.BytesIO()
    book.save(buffer)
    (tmp_path / "devices.xlsx").write_bytes(buffer.getvalue())
    ok = run(env, "devices", "import", str(tmp_path / "devices.xlsx"))
    assert ok.returncode == 0 and "registered 1, rejected 0" in ok.stdout, ok.stderr
    (tmp_path / "devices.txt").write_text("name\n")
    bad = run(env, "devices", "import", str(tmp_path / "devices.txt"))
    assert bad.returncode == 2 and "give a .csv or .xlsx file" in bad.stderr
