"""Warnings raised by the monitoring stations' readings as they are stored: a heavy-rain episode taking a
station warning from blue to red and back to lifted (each step a CAP message that validates, Updates
referencing the first), levels held for an operator's confirmation, the hold that keeps flapping readings
from sending a storm of messages, one warning when two batches race, ordinary traffic unaffected and a
station sending garbage refused or left out without breaking anything."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityops import all_models
from cityops.core.db import Base, Database
from cityops.core.errors import Conflict, NotFound
from cityops.core.events import OutboxEntry
from cityops.perception import service as perception_service
from cityops.perception.models import Device, IngestRejection
from cityops.perception.schemas import DeviceCreate
from cityops.places import service as places_service
from cityops.warning import episode, monitor, service, stations
from cityops.warning.models import HazardWarning, StationState, WarningMessage, WarningStation
from cityops.warning.monitor import Step, Track, decide
from tests.accounts.helpers import login
from tests.warning.helpers import cap_field
from tests.warning.test_service import assert_valid

ISSUER = service.Issuer("cityops.hebi", "鹤壁市城市运行管理中心")
STEP_MS = 300_000
HOLD_MS = 3_600_000
AUTO = ("orange", "red")  # the levels an operator confirms, as in the shipped file


# --- the decision, on its own --------------------------------------------------------------------


def run_levels(levels: list[str | None], *, confirm: tuple[str, ...] = ()) -> tuple[Track, list[Step]]:
    track, steps = Track(), []
    for k, level in enumerate(levels):
        track, more = decide(track, level, k * STEP_MS, hold_ms=HOLD_MS, confirm=confirm)
        steps += more
    return track, steps


def test_going_up_is_at_once_coming_down_takes_the_hold_at_each_level() -> None:
    up = ["blue", "yellow", "red"]
    down = ["orange"] * 13 + ["blue"] * 13 + [None] * 13
    track, steps = run_levels(up + down)
    assert [(s.action, s.level) for s in steps] == [
        ("issue", "blue"), ("update", "yellow"), ("update", "red"),
        ("update", "orange"), ("update", "blue"), ("cancel", None)]
    assert track == Track()


def test_readings_flapping_at_a_limit_send_no_storm() -> None:
    _track, steps = run_levels(["blue", None] * 36)  # six hours around the blue threshold
    assert [s.action for s in steps] == ["issue"]
    _track, steps = run_levels(["yellow", "blue"] * 36)
    assert [(s.action, s.level) for s in steps] == [("issue", "yellow")]


def test_a_level_that_needs_confirmation_is_proposed_above_the_automatic_ones() -> None:
    _track, steps = run_levels(["orange"], confirm=AUTO)
    assert [(s.action, s.level) for s in steps] == [("raise", "orange")]  # a pending warning
    track, steps = run_levels(["blue", "red"], confirm=AUTO)
    assert [(s.action, s.level) for s in steps] == [
        ("issue", "blue"), ("update", "yellow"), ("propose", "red")]
    assert track.warning == "yellow" and track.proposed == "red"
    # Readings that stay below the proposal for the hold let it lapse to what they reach.
    track, steps = decide(track, "orange", 10 * STEP_MS, hold_ms=HOLD_MS, confirm=AUTO)
    track, steps = decide(track, "orange", 23 * STEP_MS, hold_ms=HOLD_MS, confirm=AUTO)
    assert steps == [] and track.proposed == "orange" and track.warning == "yellow"


def test_a_warning_an_operator_ended_is_raised_again_only_above_its_level() -> None:
    ended = Track(suppressed="yellow")
    track, steps = decide(ended, "yellow", 0, hold_ms=HOLD_MS, confirm=())
    assert steps == []
    track, steps = decide(track, "orange", STEP_MS, hold_ms=HOLD_MS, confirm=())
    assert [(s.action, s.level) for s in steps] == [("issue", "orange")] and track.suppressed is None


def test_a_late_reading_does_not_move_the_hold_back() -> None:
    track, _ = run_levels(["red", None])
    assert track.below_since == STEP_MS
    later, steps = decide(track, None, 0, hold_ms=HOLD_MS, confirm=())
    assert later == track and steps == []


# --- with the database and the app's subscribers ---------------------------------------------------


def load_river_levels(db: Database) -> Database:
    """The demo's river stations judged by their water level alone: a reading jumping from the usual
    level would also be a fast rise (rise_1h), which these tests leave aside."""
    rivers = [{**s.model_dump(exclude_none=True, exclude={"place", "thresholds"}),
               "thresholds": {"level": s.thresholds["level"].levels()}}
              for s in stations.shipped().stations if s.kind == "river"]
    with db.session() as session:
        stations.load_text(session, text=yaml.safe_dump({"stations": rivers}, allow_unicode=True))
    return db


@pytest.fixture
def levels_only(db: Database) -> Database:
    return load_river_levels(db)


def station_device(db: Database, code: str) -> tuple[int, str]:
    with db.sessions() as session:
        [station] = episode.feed_stations(session, [code])
    return station.device_id, station.token


def send(db: Database, code: str, values: list[float], *, key: str = "level", start_ms: int | None = None,
         step_ms: int = STEP_MS) -> int:
    """The station's device sends the values, one batch each, `step_ms` apart (ending now); the last ts."""
    _device_id, token = station_device(db, code)
    start = start_ms if start_ms is not None else int(time.time() * 1000) - len(values) * step_ms
    ts = start
    for i, value in enumerate(values):
        ts = start + i * step_ms
        with db.session() as session:
            perception_service.store_uploads(session, [perception_service.Upload(
                token, "http", points=[(key, ts, value, None)])])
    return ts


def station_warnings(db: Database, code: str) -> list[HazardWarning]:
    with db.sessions() as session:
        return list(session.scalars(select(HazardWarning).where(
            HazardWarning.source == "station", HazardWarning.source_detail.contains(f"（{code}）"))
            .order_by(HazardWarning.id)))


def messages(db: Database, warning_id: int) -> list[WarningMessage]:
    with db.sessions() as session:
        return list(session.scalars(select(WarningMessage).where(WarningMessage.warning_id == warning_id)
                                    .order_by(WarningMessage.id)))


def test_a_heavy_rain_episode_takes_a_station_warning_from_blue_to_red_and_lifts_it(app: FastAPI,
                                                                                      db: Database) -> None:
    played = episode.prepare(db, speed=3600, codes=["weihe_daokou"], step_s=900)
    confirmed: list[str] = []

    def duty_operator(_k: int) -> None:  # confirms what the station proposes, as soon as it does
        with db.session() as session:
            proposed = stations.get_station(session, code="weihe_daokou").proposed_level
            if proposed:
                monitor.confirm(session, code="weihe_daokou", actor=None, issuer=ISSUER)
                confirmed.append(proposed)

    report = episode.play(db, played, speed=3600, wait=lambda _s: False, on_step=duty_operator)
    assert report.steps == played.steps == 96 * 4 and not report.stopped
    [warning] = station_warnings(db, "weihe_daokou")
    assert warning.status == "cancelled" and "低于蓝色预警值" in (warning.end_reason or "")
    assert warning.source == "station" and "卫河道口水文站" in warning.source_detail
    sent = messages(db, warning.id)
    assert [(m.msg_type, m.level) for m in sent] == [
        ("Alert", "blue"), ("Update", "yellow"), ("Update", "orange"), ("Update", "red"),
        ("Update", "orange"), ("Update", "yellow"), ("Update", "blue"), ("Cancel", "blue")]
    assert confirmed == ["orange", "red"]
    first = sent[0]
    reference = f"{first.sender},{first.identifier},{first.sent}"
    for message in sent:
        assert_valid(message.xml)
        if message.msg_type != "Alert":
            [references] = cap_field(message.xml, "/cap:alert/cap:references")
            assert references.split(" ")[0] == reference
    red = sent[3].xml
    assert cap_field(red, "//cap:info[1]/cap:severity") == ["Extreme"]
    assert cap_field(red, "//cap:info[1]/cap:headline") == ["鹤壁市城市运行管理中心发布洪水红色预警"]
    assert cap_field(red, "//cap:info[1]/cap:certainty") == ["Observed"]
    assert "卫河道口水文站" in cap_field(red, "//cap:info[1]/cap:description")[0]
    assert cap_field(red, "//cap:info[1]/cap:area/cap:geocode/cap:value") == [
        "410621001005", "410621001003", "410621002006", "410621001009"]
    assert cap_field(sent[-1].xml, "//cap:info[1]/cap:responseType") == ["AllClear"]
    with db.sessions() as session:
        at_rest = stations.get_station(session, code="weihe_daokou")
    assert at_rest.level is None and at_rest.warning_id is None and at_rest.proposed_level is None


def test_orange_and_red_wait_for_an_operator(client: TestClient, levels_only: Database) -> None:
    db = levels_only
    # qihe_gaocun: level blue 2.6, yellow 3.2, orange 3.8, red 4.5; orange and red are confirmed first.
    send(db, "qihe_gaocun", [3.9, 3.9, 4.6])
    [pending] = station_warnings(db, "qihe_gaocun")
    assert pending.status == "pending" and pending.level == "red"  # revised up while waiting
    assert messages(db, pending.id) == []  # nothing has gone out
    with db.sessions() as session, pytest.raises(NotFound):
        service.latest_cap(session, warning_id=pending.id)
    login(client, "admin")
    station = client.get("/api/warnings/stations/qihe_gaocun").json()
    assert station["warning_status"] == "pending" and station["proposed_level"] == "red"
    released = client.post(f"/api/warnings/{pending.id}/issue")
    assert released.status_code == 200, released.text
    assert [(m.msg_type, m.level) for m in messages(db, pending.id)] == [("Alert", "red")]

    # gcz_weixian: blue 2.8, yellow 3.4, orange 4.0, red 4.7. Blue goes out at once; orange raises the
    # warning as far as yellow and waits for the operator.
    send(db, "gcz_weixian", [3.0, 4.1, 4.1, 4.1])
    [warning] = station_warnings(db, "gcz_weixian")
    assert [(m.msg_type, m.level) for m in messages(db, warning.id)] == [
        ("Alert", "blue"), ("Update", "yellow")]
    station = client.get("/api/warnings/stations/gcz_weixian").json()
    assert station["warning_level"] == "yellow" and station["proposed_level"] == "orange"
    assert station["level"] == "orange"
    confirmed = client.post("/api/warnings/stations/gcz_weixian/confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["warning_level"] == "orange" and confirmed.json()["proposed_level"] is None
    assert [m.level for m in messages(db, warning.id)] == ["blue", "yellow", "orange"]
    again = client.post("/api/warnings/stations/gcz_weixian/confirm")
    assert again.status_code == 409 and "nothing awaiting confirmation" in again.json()["message"]
    with db.sessions() as session:
        topics = session.scalars(select(OutboxEntry.payload).where(
            OutboxEntry.topic == "warning.station_level_proposed")).all()
    assert [(p["station_code"], p["level"]) for p in topics] == [
        ("qihe_gaocun", "orange"), ("gcz_weixian", "orange")]


def test_a_warning_lifted_by_hand_is_not_raised_again_at_its_level(app: FastAPI,
                                                                    levels_only: Database) -> None:
    db = levels_only
    send(db, "qihe_juqiao", [2.9, 2.9])  # blue 2.8, yellow 3.4
    [warning] = station_warnings(db, "qihe_juqiao")
    with db.session() as session:
        service.cancel(session, warning_id=warning.id, reason="值班人员核实为水位计故障", actor=None)
    send(db, "qihe_juqiao", [2.9, 3.0, 2.9])
    assert len(station_warnings(db, "qihe_juqiao")) == 1
    send(db, "qihe_juqiao", [3.5])  # above the level lifted: a new warning
    _lifted, second = station_warnings(db, "qihe_juqiao")
    assert second.level == "yellow" and second.status == "issued"


def test_flapping_readings_send_one_alert_and_the_hold_lifts_it(app: FastAPI, levels_only: Database) -> None:
    db = levels_only
    start = int(time.time() * 1000) - 60 * STEP_MS
    send(db, "weihe_xinzhen", [3.25, 3.15] * 18, start_ms=start)  # blue 3.2, for three hours
    [warning] = station_warnings(db, "weihe_xinzhen")
    assert [m.msg_type for m in messages(db, warning.id)] == ["Alert"]
    send(db, "weihe_xinzhen", [2.0] * 13, start_ms=start + 36 * STEP_MS)  # an hour below blue
    assert [m.msg_type for m in messages(db, warning.id)] == ["Alert", "Cancel"]


def race(db: Database, readings: list[list[object]]) -> None:
    """Two workers evaluating batches of one station at the same moment."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            with db.session() as session:
                monitor.evaluate(session, readings=readings, issuer=ISSUER)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_two_batches_racing_for_one_station_raise_one_warning(levels_only: Database) -> None:
    """No bus here: the two evaluations run side by side, as two event consumers would."""
    db = levels_only
    device_id, _token = station_device(db, "weihe_wangzhuang")
    ts = send(db, "weihe_wangzhuang", [3.6])  # blue 3.5
    race(db, [[device_id, "level", ts, 3.6]])
    with db.sessions() as session:
        [warning] = session.scalars(select(HazardWarning).where(HazardWarning.source == "station")).all()
        sent = session.scalar(select(func.count()).select_from(WarningMessage)
                              .where(WarningMessage.warning_id == warning.id))
        assert warning.level == "blue" and sent == 1
        assert session.scalar(select(func.count()).select_from(StationState)) == 1


@pytest.fixture
def pg_station_db(pg_url: str) -> Iterator[Database]:
    """PostgreSQL with Hebi's places, one station's device and a stations file of that station."""
    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        with db.session() as session:
            places_service.seed_places(session, seed=7)
        with db.session() as session:
            perception_service.create_device(
                session, data=DeviceCreate(name="卫河王庄水文站水位计", profile="water_level", lon=114.585,
                                           lat=35.77), index=places_service.build_index(session), actor=None)
        with db.session() as session:
            stations.load_text(session, text=WANGZHUANG)
        yield db
    finally:
        db.dispose()


WANGZHUANG = """\
stations:
  - code: weihe_wangzhuang
    name: 卫河王庄水文站
    kind: river
    device: 卫河王庄水文站水位计
    water_body: 卫河
    villages: ["410621108218", "410621108217", "410621108222"]
    thresholds:
      level: {blue: 3.5, yellow: 4.2, orange: 5.0, red: 5.8}
"""


@pytest.mark.postgres
def test_two_batches_racing_for_one_station_raise_one_warning_on_postgres(pg_station_db: Database) -> None:
    db = pg_station_db
    ts = send(db, "weihe_wangzhuang", [3.6])
    device_id, _token = station_device(db, "weihe_wangzhuang")
    race(db, [[device_id, "level", ts, 3.6]])
    race(db, [[device_id, "level", ts, 3.6]])
    with db.sessions() as session:
        [warning] = session.scalars(select(HazardWarning)).all()
        assert warning.level == "blue" and warning.status == "issued"
        assert session.scalar(select(func.count()).select_from(WarningMessage)) == 1


def announced(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(OutboxEntry).where(
            OutboxEntry.topic == perception_service.ReadingsStored.topic)) or 0


def test_ordinary_traffic_announces_nothing(app: FastAPI, db: Database) -> None:
    with db.sessions() as session:
        ordinary = session.scalars(select(Device).where(Device.profile_code.in_(("smoke_detector",
                                                                                  "temperature")))).all()
        tokens = [d.access_token for d in ordinary if d.access_token]
    before = announced(db)  # what earlier tests on this database announced
    now = int(time.time() * 1000)
    with db.session() as session:
        points = [("smoke", now, 0.02, None), ("temperature", now, 21.0, None)]
        perception_service.store_uploads(session, [perception_service.Upload(t, "http", points=points)
                                                   for t in tokens])
    assert announced(db) == before
    device_id, _token = station_device(db, "rain_qibin")
    ts = send(db, "rain_qibin", [0.2], key="rain_mm")
    with db.sessions() as session:
        newest = session.scalars(select(OutboxEntry.payload).order_by(OutboxEntry.id.desc()).where(
            OutboxEntry.topic == perception_service.ReadingsStored.topic)).all()
    assert len(newest) == before + 1 and newest[0]["readings"] == [[device_id, "rain_mm", ts, 0.2]]


def test_a_station_sending_garbage_is_refused_or_left_out_and_nothing_breaks(client: TestClient,
                                                                            levels_only: Database) -> None:
    db = levels_only
    _device_id, token = station_device(db, "weihe_daokou")
    bodies = (b'{"level": "very high"}', b'{"level": 1e300}', b'{"level": 1e400}', b'{"level": NaN}',
              b'{"level": 123456789012345678901234567890}', b'{"level": [1, 2]}')
    answers = [client.post(f"/api/v1/{token}/telemetry", content=body,
                           headers={"Content-Type": "application/json"}) for body in bodies]
    assert [a.status_code for a in answers] == [200, 200, 400, 400, 200, 200]
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IngestRejection)) == 2
        assert session.scalar(select(func.count()).select_from(HazardWarning)) == 0
        failed = session.scalars(select(OutboxEntry).where(OutboxEntry.last_error.is_not(None))).all()
        waiting = session.scalar(select(func.count()).select_from(OutboxEntry)
                                 .where(OutboxEntry.published_at.is_(None)))
    assert failed == [] and waiting == 0
    login(client, "admin")
    station = client.get("/api/warnings/stations/weihe_daokou").json()
    assert station["level"] is None
    assert "reading(s) of level left out, outside -100 to 1000" in station["problem"]
    assert "1e+300" in station["problem"]
    # The station still works: a real reading past orange raises a warning awaiting confirmation.
    assert client.post(f"/api/v1/{token}/telemetry", json={"level": 4.9}).status_code == 200
    [warning] = station_warnings(db, "weihe_daokou")
    assert warning.status == "pending" and warning.level == "orange"


def test_a_station_whose_evaluation_fails_is_skipped_with_the_reason(app: FastAPI, levels_only: Database,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    db = levels_only
    measure = monitor.measure

    def broken(session: Session, station: WarningStation, at_ms: int) -> tuple[monitor.Reading, list[str]]:
        if station.code == "weihe_xiaohe":
            raise RuntimeError("the gauge's series is unreadable")
        return measure(session, station, at_ms)

    monkeypatch.setattr(monitor, "measure", broken)
    tokens = [station_device(db, code)[1] for code in ("weihe_xiaohe", "weihe_daokou")]
    now = int(time.time() * 1000)
    with db.session() as session:  # one batch of both stations, above blue
        perception_service.store_uploads(session, [perception_service.Upload(t, "http", points=[
            ("level", now, 3.5, None)]) for t in tokens])
    assert station_warnings(db, "weihe_xiaohe") == []
    [other] = station_warnings(db, "weihe_daokou")
    assert other.level == "blue"
    with db.sessions() as session:
        assert "evaluation failed: the gauge's series is unreadable" in (
            stations.get_station(session, code="weihe_xiaohe").problem or "")
        assert session.scalar(select(func.count()).select_from(OutboxEntry)
                              .where(OutboxEntry.published_at.is_(None))) == 0


def test_confirming_a_station_with_nothing_proposed_is_a_conflict(db: Database) -> None:
    with db.session() as session, pytest.raises(Conflict):
        monitor.confirm(session, code="weihe_daokou", actor=None, issuer=ISSUER)
    with db.session() as session, pytest.raises(NotFound):
        monitor.confirm(session, code="nowhere", actor=None, issuer=ISSUER)
