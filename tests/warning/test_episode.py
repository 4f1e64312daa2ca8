"""The heavy-rain episode (synthetic, shaped after July 2021 in Henan) as the demo plays it: on its own
clock, through the ingestion path, in the live simulator between dry-weather readings, and from the
command line."""

from __future__ import annotations

import random
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select

from cityops.core.db import Database
from cityops.demo.devices import DeviceSimulator
from cityops.warning import episode
from cityops.warning.models import HazardWarning, WarningMessage
from tests.accounts.test_cli import env_for, run


def test_the_episode_is_dated_on_its_own_clock_ending_when_it_ends(db: Database) -> None:
    played = episode.prepare(db, speed=360, codes=["rain_junxian", "weihe_daokou"], now_ms=1_800_000_000_000)
    assert played.steps == 96 * 12 and len(played.feed) == 2
    assert played.ts(played.steps - 1) == 1_800_000_000_000 + (played.steps - 1) * 300_000 // 360
    assert played.ts(1) - played.ts(0) == 300_000  # an episode step is five minutes of reading time
    assert played.due_by(0, 360) == 1 and played.due_by(10, 360) == 13  # an hour in ten seconds
    rain = [u.points[0][2] for k in range(played.steps) for u in played.uploads(k)[:1]]
    assert 1000 < sum(rain) < 1600  # 浚县, the wettest county: over a metre of rain
    assert max(rain) * 12 > 90  # the burst: near 100 mm in an hour


def test_dry_weather_readings_stay_below_every_threshold(db: Database) -> None:
    rng = random.Random(1)
    with db.sessions() as session:
        feed = episode.feed_stations(session)
    for station in feed:
        values = [episode.healthy(station, rng) for _ in range(288)]
        if station.kind == "rain":
            assert sum(values) < 50 / 4  # far from 50 mm in 12 h
        elif station.driven and station.kind != "slope":
            assert max(values) < min(station.thresholds.values())


def test_the_live_simulator_feeds_the_stations_and_plays_an_episode(app: FastAPI, db: Database) -> None:
    sim = DeviceSimulator(db, seed=4, fire_every_s=0, fault_every_s=0, outage_every_s=0, rain_every_s=300,
                          rain_speed=36_000)
    sim.stations.step_s = 1800  # half-hourly readings in the episode: fewer batches for the test
    sim.load()
    sim.stations.stations = [s for s in sim.stations.stations if s.code in ("rain_junxian", "weihe_daokou")]
    for second in range(300):  # dry weather: every station reports, nothing is raised
        sim.tick(second)
    with db.sessions() as session:
        assert session.scalars(select(HazardWarning)).all() == []
    second = 300
    while sim.stations.episodes == 0 or sim.stations.episode is not None:
        sim.tick(second)
        second += 1
    assert second - 300 == 11  # 96 h at 36,000: ten seconds, and the second it ended in
    with db.sessions() as session:
        warnings = session.scalars(select(HazardWarning).order_by(HazardWarning.id)).all()
        levels = {w.id: [m.level for m in session.scalars(
            select(WarningMessage).where(WarningMessage.warning_id == w.id))] for w in warnings}
    assert len(warnings) == 2 and all(w.status == "cancelled" and w.source == "station" for w in warnings)
    for sent in levels.values():  # orange and red waited for an operator who did not come
        assert sent[:2] == ["blue", "yellow"] and "red" not in sent


def test_cityops_warnings_rain_episode_plays_it_with_a_duty_operator(tmp_path: Path,
                                                                     template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    played = run(env, "warnings", "rain-episode", "--speed", "10000000", "--station", "weihe_daokou",
                 "--confirm", "--step-minutes", "15")
    assert played.returncode == 0, played.stderr
    lines = played.stdout.splitlines()
    assert lines[0].startswith("heavy-rain episode (synthetic): 96 h for 1 stations")
    assert [line.split()[-1] for line in lines[1:-1]] == [
        "blue", "yellow", "orange", "red", "orange", "yellow", "blue", "lifted"]
    assert lines[-1] == "played 384 steps, 384 readings"
