"""Monitoring stations as configurable data: a file refused with the line and the field when wrong (levels
out of order, unknown metrics, a device that is not there or of another kind, villages outside the city),
the demo's stations on Hebi's real rivers and hills, and the API that lists them with their level."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.core.db import Database
from cityops.core.errors import ValidationFailed
from cityops.perception.models import Device
from cityops.warning import stations
from cityops.warning.models import WarningStation
from tests.accounts.helpers import login
from tests.accounts.test_cli import env_for, run

GOOD = """\
hold_minutes: 30
stations:
  - code: test_river
    name: 测试水文站
    kind: river
    device: {device}
    water_body: 淇河
    villages: ["{village}"]
    thresholds:
      level: {{blue: 2.6, yellow: 3.2, orange: 3.8, red: 4.5}}
      rise_1h: {{red: 1.2}}
"""


def station_file(**changes: Any) -> str:
    """A one-station file; `changes` replace whole lines by their start (e.g. kind="kind: rain")."""
    text = GOOD.format(device="卫河道口水文站水位计", village="410621001005")
    lines = text.splitlines()
    for key, line in changes.items():
        lines = [line if raw.strip().startswith(f"{key}:") else raw for raw in lines]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("changes", "where", "reason"),
    [
        ({"level": "      level: {blue: 3.0, yellow: 2.5}"}, "line 10: stations.0.thresholds.level",
         "yellow (2.5) must be above blue (3)"),
        ({"level": "      level: {blue: 3.0, red: 3.0}"}, "stations.0.thresholds.level",
         "red (3) must be above blue"),
        ({"level": "      level: {}"}, "stations.0.thresholds.level", "at least one level"),
        ({"level": "      level: {blue: .nan}"}, "stations.0.thresholds.level.blue", "finite"),
        ({"rise_1h": "      rain_2h: {red: 1.2}"}, "stations.0.thresholds", "unknown metric 'rain_2h'"),
        ({"rise_1h": "      rain_3h: {red: 100}"}, "stations.0.thresholds",
         "a river station has no 'rain_3h'"),
        ({"kind": "    kind: lake"}, "stations.0.kind", "'rain', 'river'"),
        ({"water_body": "    hill: 姬家山"}, "stations.0", "names its water body (water_body)"),
        ({"villages": '    villages: ["41062100100"]'}, "stations.0.villages.0", "String should match"),
        ({"kind": "    kind: river\n    hazard: tsunami"}, "stations.0.hazard", "unknown hazard 'tsunami'"),
        ({"hold_minutes": "hold_minutes: -5"}, "hold_minutes", "greater than or equal to 0"),
    ],
)
def test_a_bad_file_is_refused_with_the_line_and_the_field(changes: dict[str, str], where: str,
                                                           reason: str) -> None:
    with pytest.raises(stations.StationsError) as caught:
        stations.parse(station_file(**changes), source="stations.yaml")
    message = str(caught.value)
    assert message.startswith("stations.yaml line ") and where in message and reason in message, message


def test_repeated_codes_and_devices_are_refused() -> None:
    text = station_file()
    twice = text + text.split("stations:\n", 1)[1]
    with pytest.raises(stations.StationsError, match="station codes repeat: test_river"):
        stations.parse(twice)


def test_the_shipped_file_is_valid_and_names_real_water_bodies() -> None:
    config = stations.shipped()
    bodies = {s.water_body for s in config.stations if s.water_body}
    assert {"淇河", "卫河", "共产主义渠", "盘石头水库"} <= bodies
    assert {s.kind for s in config.stations} == set(stations.KINDS)
    assert all(s.place is not None for s in config.stations)


@pytest.mark.parametrize(
    ("device", "village", "field", "reason"),
    [
        ("没有这台设备", "410621001005", "stations.0.device", "no device named '没有这台设备'"),
        ("浚县城关雨量计", "410621001005", "stations.0.device",
         "'浚县城关雨量计' is a rain_gauge device; a river station's device is a water_level"),
        ("卫河道口水文站水位计", "410102001001", "stations.0.villages",
         "no division with code '410102001001'"),
    ],
)
def test_loading_checks_the_devices_and_the_villages(db: Database, device: str, village: str, field: str,
                                                     reason: str) -> None:
    text = GOOD.format(device=device, village=village)
    with db.session() as session, pytest.raises(ValidationFailed) as caught:
        stations.load_text(session, text=text)
    assert caught.value.field == field and reason in caught.value.message, caught.value.message


def test_loading_replaces_the_stations(db: Database) -> None:
    with db.session() as session:
        page = stations.load_text(session, text=station_file())
    assert [s.code for s in page.items] == ["test_river"]
    [river] = page.items
    assert river.hold_minutes == 30 and river.confirm_levels == ["orange", "red"]
    assert river.villages[0].name == "顺河社区居民委员会" and river.hazard == "flood"
    assert {m.code: m.thresholds for m in river.metrics} == {
        "level": {"blue": 2.6, "yellow": 3.2, "orange": 3.8, "red": 4.5}, "rise_1h": {"red": 1.2}}
    with db.sessions() as session:
        assert session.scalars(select(WarningStation.code)).all() == ["test_river"]


def test_the_demo_stations_stand_in_the_county_of_the_villages_they_warn_for(db: Database) -> None:
    """Real rivers and villages, synthetic stations at plausible places: each device lies in the county
    (the real county outline) of the villages its station warns for, and is labelled synthetic."""
    with db.sessions() as session:
        page = stations.list_stations(session)
        devices = {d.id: d for d in session.scalars(select(Device))}
    assert page.total == len(stations.shipped().stations) > 20
    kinds = {s.kind for s in page.items}
    assert kinds == {"rain", "river", "reservoir", "soil", "slope"}
    for station in page.items:
        device = devices[station.device_id]
        assert device.synthetic and device.division_code[:6] == station.villages[0].code[:6], station.code
    hills = {devices[s.device_id].division_code[:6] for s in page.items if s.kind in ("soil", "slope")}
    assert hills == {"410602", "410603"}  # 鹤山区, 山城区
    rain_counties = {devices[s.device_id].division_code[:6] for s in page.items if s.kind == "rain"}
    assert rain_counties == {"410602", "410603", "410611", "410621", "410622"}


def test_the_api_lists_stations_with_their_level_in_the_readers_language(client: TestClient) -> None:
    assert client.get("/api/warnings/stations").status_code == 401
    login(client, "emergency.handler")
    page = client.get("/api/warnings/stations?kind=river")
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert items and {s["kind"] for s in items} == {"river"}
    assert items[0]["kind_label"] == "河道水文站" and items[0]["hazard_label"] == "洪水"
    daokou = client.get("/api/warnings/stations/weihe_daokou?lang=en").json()
    assert daokou["kind_label"] == "River gauge" and daokou["water_body"] == "卫河"
    assert [m["label"] for m in daokou["metrics"]] == ["Water level", "Water rise in 1 h"]
    assert client.get("/api/warnings/stations/nowhere").status_code == 404
    assert client.get("/api/warnings/stations?kind=lake").status_code == 422
    refused = client.put("/api/warnings/stations", content=b"stations: []",
                         headers={"Content-Type": "application/yaml"})
    assert refused.status_code == 403  # a department reads stations but does not configure them
    assert client.post("/api/warnings/stations/weihe_daokou/confirm").status_code == 403


def test_the_api_loads_a_file_or_refuses_it_naming_the_field(client: TestClient) -> None:
    login(client, "admin")
    bad = client.put("/api/warnings/stations", content=station_file(level="      level: {blue: 3, yellow: 1}")
                     .encode(), headers={"Content-Type": "application/yaml"})
    assert bad.status_code == 422 and "stations.0.thresholds.level" in bad.json()["message"]
    assert client.get("/api/warnings/stations").json()["total"] > 20  # nothing changed
    missing = GOOD.format(device="无此设备", village="410621001005")
    unknown = client.put("/api/warnings/stations", content=missing.encode(),
                         headers={"Content-Type": "application/yaml"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "stations.0.device"
    good = client.put("/api/warnings/stations", content=station_file().encode(),
                      headers={"Content-Type": "application/yaml"})
    assert good.status_code == 200, good.text
    assert [s["code"] for s in good.json()["items"]] == ["test_river"]


def test_cli_lists_and_loads_stations(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    listed = run(env, "warnings", "stations", "list")
    assert listed.returncode == 0, listed.stderr
    assert "weihe_daokou" in listed.stdout and "stations" in listed.stdout
    bad = tmp_path / "mine.yaml"
    bad.write_text(station_file(level="      level: {blue: 3, yellow: 1}"), encoding="utf-8")
    refused = run(env, "warnings", "stations", "load", str(bad))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "mine.yaml line 10: stations.0.thresholds.level" in refused.stderr, refused.stderr
    good = tmp_path / "good.yaml"
    good.write_text(station_file(), encoding="utf-8")
    loaded = run(env, "warnings", "stations", "load", str(good))
    assert loaded.returncode == 0 and "loaded 1 stations" in loaded.stdout, loaded.stderr
