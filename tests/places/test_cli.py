"""`cityops places ...` as an operator runs it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityops.cli import app
from cityops.config import get_settings

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, template_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    target = tmp_path / "cityops.db"
    shutil.copyfile(template_db, target)
    monkeypatch.setenv("CITYOPS_DATABASE_URL", f"sqlite:///{target}")
    monkeypatch.setenv("CITYOPS_ENVIRONMENT", "test")
    get_settings.cache_clear()
    yield target
    get_settings.cache_clear()


def test_stats_json(database: Path) -> None:
    result = runner.invoke(app, ["places", "stats", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"] == {
        "city": 1,
        "county": 6,
        "township": 48,
        "village": 1041,
        "grid": 2397,
    }
    table = runner.invoke(app, ["places", "stats"])
    assert "浚县" in table.output and "2397" in table.output


def test_lookup_json_and_outside(database: Path) -> None:
    result = runner.invoke(app, ["places", "lookup", "114.54326", "35.67628", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["county"]["code"] == "410621"
    outside = runner.invoke(app, ["places", "lookup", "2.35", "48.86"])
    assert outside.exit_code == 2 and "outside the city" in outside.output
    bad = runner.invoke(app, ["places", "lookup", "--", "114.2", "95"])
    assert bad.exit_code == 2 and "lat must be" in bad.output


def test_show(database: Path) -> None:
    result = runner.invoke(app, ["places", "show", "410671"])
    assert result.exit_code == 0, result.output
    assert "鹤壁经济技术开发区" in result.output and "synthetic" in result.output
    missing = runner.invoke(app, ["places", "show", "410699"])
    assert missing.exit_code == 2 and "no division with code '410699'" in missing.output


def test_import_errors_name_the_feature_and_exit_2(database: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"name": "无码"},
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[114.2, 35.7], [114.3, 35.7], [114.3, 35.8], [114.2, 35.7]]],
                        },
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["places", "import", str(path), "--level", "township"])
    assert result.exit_code == 2
    assert "feature 1 (no code, 无码): missing code" in result.output
    assert "Traceback" not in result.output
    wrong_level = runner.invoke(app, ["places", "import", str(path), "--level", "street"])
    assert wrong_level.exit_code == 2 and "level must be one of" in wrong_level.output


def test_help_explains_each_command() -> None:
    result = runner.invoke(app, ["places", "--help"])
    assert result.exit_code == 0
    for command in ("stats", "lookup", "show", "import"):
        assert command in result.output
    help_import = runner.invoke(app, ["places", "import", "--help"])
    assert "gcj02" in help_import.output and "all or nothing" in help_import.output
