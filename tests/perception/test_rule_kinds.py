"""The rule kinds beyond thresholds: a water level rising too fast, a detector gone silent, a device
leaving (or entering) a zone. Each raises a ThingsBoard alarm, keeps one per device and type while
it lasts and clears it when the condition is over; a bad rule file names the line and the field."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityops.app import create_app
from cityops.cases.models import Case
from cityops.core import scheduler
from cityops.core.auth.models import OrgUnit
from cityops.core.db import Database, utcnow
from cityops.perception import rules
from cityops.perception import service as perception_service
from tests.conftest import make_settings
from tests.perception.test_alarms import alarms, send, timeline
from tests.perception.test_api import make_device


def test_water_rising_fast_raises_across_batches_opens_a_flood_case_and_clears(client: TestClient,
                                                                            db: Database) -> None:
    gauge = make_device(client, db, name="一村水位-上涨", profile="water_level")
    token, t = gauge["access_token"], int(time.time() * 1000) - 3_600_000
    send(client, token, (t, {"level": 1.00}))
    send(client, token, (t + 300_000, {"level": 1.02}))  # 0.24 m an hour: under the 0.5 limit
    assert alarms(db, gauge["id"]) == []
    # The next batch: 5 cm in five minutes, 0.6 m an hour, measured from the point of the last batch.
    send(client, token, (t + 600_000, {"level": 1.07}))
    [alarm] = alarms(db, gauge["id"])
    assert (alarm.type, alarm.severity, alarm.status, alarm.rule_code) == ("water_rising", "MAJOR",
                                                                          "ACTIVE_UNACK", "water_rising_fast")
    assert alarm.value == pytest.approx(0.6)
    assert alarm.case_id is not None
    with db.sessions() as session:
        case = session.get(Case, alarm.case_id)
        assert case is not None and (case.type_code, case.category) == ("sensor_alarm", "flood")
        unit = session.get(OrgUnit, case.org_unit_id)
        assert unit is not None and unit.code == "dept-water"
        assert "rising 0.6 per 3600 s" in case.description

    # Slower, but still above the 0.1 m an hour it clears at: the alarm stays up (one alarm).
    send(client, token, (t + 900_000, {"level": 1.08}))
    [alarm] = alarms(db, gauge["id"])
    assert alarm.status == "ACTIVE_UNACK" and alarm.end_ts == t + 900_000
    send(client, token, (t + 60_000, {"level": 9.0}))  # a late point is no rate
    send(client, token, (t + 1_200_000, {"level": 1.081}), (t + 1_500_000, {"level": 0.2}))  # flat, a fall
    [alarm] = alarms(db, gauge["id"])
    assert alarm.status == "CLEARED_UNACK" and alarm.clear_ts == t + 1_200_000
    assert timeline(db, alarm.case_id)[-1] == "alarm_cleared"

    send(client, token, (t + 1_800_000, {"level": 1.2}))  # rising fast again: the same case
    second = alarms(db, gauge["id"])[-1]
    assert second.id != alarm.id and second.status == "ACTIVE_UNACK" and second.case_id == alarm.case_id


def test_a_silent_detector_goes_offline_and_comes_back(client: TestClient, db: Database) -> None:
    silent = make_device(client, db, name="一村烟感-离线")
    never = make_device(client, db, name="一村烟感-从未上报")
    send(client, silent["access_token"], (int(time.time() * 1000), {"smoke": 0.02}))
    job = perception_service.offline_job()
    assert job.interval_s == 60

    soon = utcnow() + timedelta(minutes=10)  # two of the smoke detector's 5-minute intervals
    assert job.name in scheduler.run_due(db, [job], now=soon)
    assert alarms(db, silent["id"]) == []

    later = utcnow() + timedelta(minutes=16)  # three intervals: offline
    perception_service.offline_alarms(db, now=later)
    [alarm] = alarms(db, silent["id"])
    assert (alarm.type, alarm.severity, alarm.status) == ("offline", "WARNING", "ACTIVE_UNACK")
    assert alarm.rule_code == "device_offline" and alarm.value == pytest.approx(960, abs=5)
    assert alarm.case_id is None  # an offline detector opens no case
    assert alarms(db, never["id"]) == []  # never reported: inactive, not offline
    perception_service.offline_alarms(db, now=later + timedelta(minutes=5))
    assert len(alarms(db, silent["id"])) == 1  # still silent: the one alarm

    send(client, silent["access_token"], (int(time.time() * 1000), {"smoke": 0.03}))
    [alarm] = alarms(db, silent["id"])
    assert alarm.status == "CLEARED_UNACK"

    # Silent again; then only its attributes arrive, which no rule sees: the next run clears.
    perception_service.offline_alarms(db, now=utcnow() + timedelta(minutes=16))
    assert alarms(db, silent["id"])[-1].status == "ACTIVE_UNACK"
    response = client.post(f"/api/v1/{silent['access_token']}/attributes", json={"firmware": "2.1"})
    assert response.status_code == 200, response.text
    perception_service.offline_alarms(db, now=utcnow() + timedelta(minutes=1))
    assert [a.status for a in alarms(db, silent["id"])] == ["CLEARED_UNACK", "CLEARED_UNACK"]


def test_the_app_looks_for_silent_devices_every_minute(tmp_path: Path, db: Database) -> None:
    app = create_app(make_settings(tmp_path, run_scheduler=True), db=db)
    with TestClient(app):
        assert app.state.scheduler.running
    job = {r.name: r for r in scheduler.job_states(db)}["perception.offline_alarms"]
    assert job.interval_s == 60 and job.last_finished_at is not None and job.last_error is None


FENCES = """rules:
  - code: camera_left_village
    name_zh: 车载视频驶出村
    name_en: Patrol camera left its village
    profile: camera_box
    kind: geofence
    zone: "{zone}"
    severity: MINOR
    alarm_type: left_area
  - code: camera_in_depot
    name_zh: 车载视频进入禁区
    name_en: Patrol camera in a closed area
    profile: camera_box
    kind: geofence
    lon_key: longitude
    lat_key: latitude
    polygon: [[{w}, {s}], [{e}, {s}], [{e}, {n}], [{w}, {n}]]
    alarm_when: inside
    severity: MAJOR
    alarm_type: closed_area
"""


@pytest.fixture
def fences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(zone: str, lon: float, lat: float) -> None:
        box = {"w": lon + 0.05, "e": lon + 0.06, "s": lat, "n": lat + 0.01}
        path = tmp_path / "rules.yaml"
        path.write_text(FENCES.format(zone=zone, **box), encoding="utf-8")
        loaded = rules.registry(path)
        monkeypatch.setattr(rules, "registry", lambda path=None: loaded)

    return install


def test_a_device_leaving_its_zone_or_entering_a_polygon_raises_until_it_is_back(
        client: TestClient, db: Database, fences: Any) -> None:
    camera = make_device(client, db, name="一村车载视频", profile="camera_box")
    lon, lat = camera["lon"], camera["lat"]
    fences(camera["village_code"], lon, lat)
    token, t = camera["access_token"], int(time.time() * 1000) - 600_000

    send(client, token, (t, {"lon": lon, "lat": lat, "longitude": lon, "latitude": lat}))
    assert alarms(db, camera["id"]) == []  # at home, and outside the closed area
    send(client, token, (t + 1000, {"lon": lon + 2, "lat": lat}), (t + 2000, {"lon": lon + 2.1, "lat": lat}))
    [left] = alarms(db, camera["id"])
    assert (left.type, left.severity, left.status, left.value) == ("left_area", "MINOR", "ACTIVE_UNACK", 0.0)
    assert left.end_ts == t + 2000  # the second point outside kept the alarm up
    send(client, token, (t + 3000, {"lon": lon + 2.2}))  # half a position is none
    send(client, token, (t + 4000, {"lon": lon, "lat": lat}))
    [left] = alarms(db, camera["id"])
    assert left.status == "CLEARED_UNACK" and left.clear_ts == t + 4000

    # Into the closed area (a polygon, in keys longitude/latitude), then out again, in one batch.
    send(client, token, (t + 5000, {"longitude": lon + 0.055, "latitude": lat + 0.005}),
         (t + 6000, {"longitude": lon + 0.07, "latitude": lat + 0.005}))
    closed = [a for a in alarms(db, camera["id"]) if a.type == "closed_area"]
    assert [(a.severity, a.status, a.start_ts, a.clear_ts) for a in closed] == [
        ("MAJOR", "CLEARED_UNACK", t + 5000, t + 6000)]


def test_a_zone_that_names_no_place_raises_nothing(client: TestClient, db: Database, fences: Any) -> None:
    camera = make_device(client, db, name="一村车载视频-无区", profile="camera_box")
    fences("999999999999", camera["lon"], camera["lat"])
    send(client, camera["access_token"], (int(time.time() * 1000), {"lon": camera["lon"] + 2,
                                                                     "lat": camera["lat"]}))
    assert alarms(db, camera["id"]) == []


def test_the_shipped_rules_have_the_new_kinds() -> None:
    registry = rules.registry()
    rising = registry.rule("water_rising_fast")
    assert isinstance(rising, rules.RateRule) and (rising.profile, rising.key) == ("water_level", "level")
    [offline] = registry.no_data()
    assert (offline.profile, offline.n_intervals, offline.silent_s) == ("smoke_detector", 3, 900)


HEAD = """rules:
  - code: a_rule
    name_zh: 规则
    name_en: A rule
    profile: water_level
    severity: MAJOR
    alarm_type: something
"""


@pytest.mark.parametrize(("body", "line", "words"), [
    ("    kind: rate_of_change\n    key: level\n    rise: 0.5\n    clear_at: 0.8\n", 11,
     "rules.0.clear_at: Value error, clear_at must not be above the rate it clears"),
    ("    kind: rate_of_change\n    key: level\n    rise: 0.5\n    fall: 0.5\n    clear_at: 0.1\n", 2,
     "exactly one of rise or fall"),
    ("    kind: rate_of_change\n    key: level\n    rise: 0.5\n    per_s: 0\n    clear_at: 0.1\n", 11,
     "rules.0.per_s"),
    ("    kind: rate_of_change\n    key: level\n    rise: -1\n    clear_at: -2\n", 10, "rules.0.rise"),
    ("    kind: no_data\n    n_intervals: 0\n", 9, "rules.0.n_intervals"),
    ("    kind: no_data\n", 2, "rules.0.n_intervals: Field required"),
    ("    kind: no_data\n    n_intervals: 3\n    key: level\n", 10, "rules.0.key: Extra inputs"),
    ("    kind: geofence\n    polygon: [[114.1, 35.7], [114.2, 35.7]]\n", 9,
     "rules.0.polygon: Value error, a polygon needs at least three"),
    ("    kind: geofence\n    polygon: [[114.1, 35.7], [114.2, 95.7], [114.2, 35.8]]\n", 9,
     "rules.0.polygon: Value error, each pair is [lon, lat]"),
    ("    kind: geofence\n    polygon: [[0, 0], [1, 1], [1, 0], [0, 1]]\n", 9, "edges cross"),
    ("    kind: geofence\n    zone: '410602'\n    polygon: [[0, 0], [1, 1], [1, 0]]\n", 2,
     "exactly one of zone or polygon"),
    ("    kind: geofence\n    zone: '410602'\n    alarm_when: nearby\n", 10, "rules.0.alarm_when"),
    ("    kind: offline\n", 2, "'kind' does not match any of the expected tags"),
])
def test_a_bad_rule_of_a_new_kind_names_its_line_and_field(body: str, line: int, words: str) -> None:
    with pytest.raises(rules.RulesError) as refused:
        rules.parse(HEAD + body, source="rules.yaml")
    assert f"rules.yaml line {line}: " in str(refused.value), str(refused.value)
    assert words in str(refused.value), str(refused.value)


@pytest.mark.postgres
def test_rates_and_silence_on_postgres(pg_url: str) -> None:
    from sqlalchemy import select

    from cityops import all_models
    from cityops.core.db import Base
    from cityops.perception.models import Alarm, Device

    all_models.load()
    pg = Database(pg_url)
    now = utcnow()
    try:
        Base.metadata.create_all(pg.engine)
        with pg.session() as session:  # placed by hand: this test needs no map
            session.add_all([Device(name=f"pg-{profile}", profile_code=profile, lon=114.3, lat=35.7,
                                    village_code="410602001001", division_code="410602001001",
                                    access_token=f"pg-{profile}")
                             for profile in ("water_level", "smoke_detector")])
        t = int(now.timestamp() * 1000) - 3_600_000
        hour_ago = now - timedelta(hours=1)
        with pg.session() as session:
            perception_service.store_uploads(session, [
                perception_service.Upload("pg-water_level", "http", points=[("level", t, 1.0, None)]),
                perception_service.Upload("pg-smoke_detector", "http", points=[("smoke", t, 0.02, None)]),
            ], now=hour_ago)
        with pg.session() as session:  # 10 cm in five minutes, from the point of the batch before
            perception_service.store_uploads(session, [perception_service.Upload(
                "pg-water_level", "http", points=[("level", t + 300_000, 1.1, None)])], now=now)
        assert perception_service.offline_alarms(pg, now=now).raised == 1  # the detector, silent an hour

        def active() -> set[tuple[str, str]]:
            with pg.sessions() as session:
                return {(name, kind) for name, kind in session.execute(
                    select(Device.name, Alarm.type).join(Alarm, Alarm.device_id == Device.id)
                    .where(Alarm.status == "ACTIVE_UNACK"))}

        assert active() == {("pg-water_level", "water_rising"), ("pg-smoke_detector", "offline")}
        with pg.session() as session:
            perception_service.store_uploads(session, [perception_service.Upload(
                "pg-smoke_detector", "http", points=[("smoke", t + 3_600_000, 0.02, None)])], now=now)
        assert active() == {("pg-water_level", "water_rising")}
    finally:
        pg.dispose()
