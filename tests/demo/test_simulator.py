"""The live simulator: new cases at a steady rate through the services, labelled synthetic, stopping
cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cityops.cases import service as cases_service
from cityops.cases.models import Case
from cityops.core.db import Database
from cityops.demo.simulator import LABEL, Simulator
from cityops.governance.visits.models import GridIssue, Visit


class FakeTime:
    """A clock that moves only when the simulator waits: the schedule without real time passing."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


def count_cases(db: Database) -> int:
    with db.sessions() as session:
        return cases_service.count_cases(session)


def test_the_simulator_adds_one_case_per_event_at_the_rate_asked(db: Database) -> None:
    before = count_cases(db)
    fake = FakeTime()
    report = Simulator(db, rate=4, duration=5, seed=11, clock=fake.clock, wait=fake.wait).run()

    assert report.events == 20 and report.failures == 0
    assert count_cases(db) == before + 20
    # Evenly spaced: every event after the first waited a quarter of a second.
    assert len(fake.waits) == 19 and fake.waits == pytest.approx([0.25] * 19)
    assert set(report.by_kind) == {"citizen_report", "visit", "grid_report"}
    with db.sessions() as session:
        new = session.scalars(select(Case).order_by(Case.id.desc()).limit(20)).all()
        grid = [c for c in new if c.source == "grid_worker"]
        citizen = [c for c in new if c.source != "grid_worker"]
        assert len(grid) == report.by_kind["visit"] + report.by_kind["grid_report"]
        assert all(c.title.startswith(LABEL) for c in citizen)
        issues = session.scalars(select(GridIssue).where(GridIssue.case_id.in_([c.id for c in grid]))).all()
        assert len(issues) == len(grid) and all(i.synthetic for i in issues)
        visits = session.scalar(
            select(func.count())
            .select_from(Visit)
            .where(Visit.synthetic.is_(True), Visit.id.in_([i.visit_id for i in issues if i.visit_id]))
        )
        assert visits == report.by_kind["visit"]


def test_a_stop_ends_the_run_after_the_event_under_way(db: Database) -> None:
    before = count_cases(db)
    fake = FakeTime()
    sim: Simulator

    def wait(seconds: float) -> bool:
        fake.wait(seconds)
        if len(fake.waits) == 3:
            sim.stop()
            return True
        return False

    sim = Simulator(db, rate=10, duration=None, seed=3, clock=fake.clock, wait=wait)
    report = sim.run()
    assert report.events == 3
    assert count_cases(db) == before + 3


def cli_env(tmp_path: Path, template_db: Path) -> tuple[dict[str, str], Database]:
    db_file = tmp_path / "sim.db"
    shutil.copyfile(template_db, db_file)
    url = f"sqlite:///{db_file}"
    return {**os.environ, "CITYOPS_DATABASE_URL": url, "CITYOPS_ENVIRONMENT": "test"}, Database(url)


def test_cityops_demo_simulate_runs_for_the_duration_given(tmp_path: Path, template_db: Path) -> None:
    env, db = cli_env(tmp_path, template_db)
    before = count_cases(db)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cityops.cli",
            "demo",
            "simulate",
            "--rate",
            "40",
            "--duration",
            "0.2",
            "--seed",
            "5",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "simulated 8 events" in result.stdout
    assert count_cases(db) == before + 8
    db.dispose()


def test_cityops_demo_simulate_stops_cleanly_on_sigterm(tmp_path: Path, template_db: Path) -> None:
    env, db = cli_env(tmp_path, template_db)
    before = count_cases(db)
    process = subprocess.Popen(
        [sys.executable, "-m", "cityops.cli", "demo", "simulate", "--rate", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert "until stopped" in process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    made = int(out.split("simulated ", 1)[1].split(" ", 1)[0])
    assert count_cases(db) == before + made
    db.dispose()
