"""From a station reading that crosses a red threshold to every affected grid worker notified and every
plan task created, with the full Hebi seed (issue 5: p99 < 2 s); and the same for a county-wide red
warning issued by hand.

The path is the real one, in a `cityops serve` process: the station's device posts its reading to the
ThingsBoard device API, the ingest group commit stores it and writes ReadingsStored to the outbox, the
drain hands it to the monitor, which issues the station's warning (the stations are loaded from a
temporary copy of the shipped file with `confirm_levels: []`, so red needs no operator), and the
warning's events reach the response's subscribers (notices, plan tasks as cases). The bench watches the
database from its own process and stops the clock when it sees the notice of every grid worker and
village head of the area (link to the warning) and every task the plan calls for (each with its case),
both computed here from the places and the plan, not taken from the response's own tables. Between
trials the warning is cancelled through the API, the station's state reset and the outbox drained.

The seeded SQLite file is built once (var/bench/warning_full.db, about 5 minutes) and copied for each
run, so runs do not pile up warnings. `--database-url` runs on a database of your own instead
(e.g. PostgreSQL, seeded with `cityops seed --scale full` if it is not): that one is changed in place.
Run: .venv/bin/python bench/warning_red_response.py [--trials N] [--county-trials N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from _common import save, served
from sqlalchemy import delete, func, insert, or_, select

from cityops import all_models
from cityops.cases.models import Case
from cityops.core.auth.models import OrgUnit, User
from cityops.core.auth.scope import scope_prefix
from cityops.core.db import Database
from cityops.core.events import OutboxEntry
from cityops.core.notifications import Notification
from cityops.places.models import Grid
from cityops.warning import episode, plans, stations
from cityops.warning.models import HazardWarning, StationState, WarningStation, WarningTask

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "var" / "bench" / "warning_full.db"
TARGET_P99_S = 2.0
TIMEOUT_S = 60.0
POLL_S = 0.02
COUNTIES = ("410622", "410621")  # 淇县, 浚县
WHAT = (
    "a station reading crossing red (device HTTP API -> ingest -> outbox -> monitor -> warning -> response)"
    " until every grid worker and village head of the area has the notice and every plan task exists as a"
    " case, checked in the database; and a county-wide red flood warning issued through the API. One"
    " `cityops serve` worker, full Hebi seed, on a 2-core machine shared with other work (noisy figures)"
)


def cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "cityops.cli", *args], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"cityops {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return out.stdout.strip()


def seeded_template(env: dict[str, str]) -> Path:
    """The fully seeded SQLite file, built on first use and reused by later runs."""
    if TEMPLATE.exists():
        return TEMPLATE
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    building = TEMPLATE.with_name(TEMPLATE.name + ".building")
    for suffix in ("", "-wal", "-shm", "-gate"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    build_env = {**env, "CITYOPS_DATABASE_URL": f"sqlite:///{building}"}
    print("seeding the full Hebi into", TEMPLATE, "(once; about 5 minutes)", file=sys.stderr)
    cli(build_env, "db", "upgrade")
    cli(build_env, "seed", "--scale", "full")
    db = Database(f"sqlite:///{building}")
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    building.rename(TEMPLATE)
    return TEMPLATE


def staff_every_grid(db: Database) -> int:
    """A grid worker for every grid that has none: Hebi has one per grid, the demo seed only for the
    documented accounts' villages, and the target is about notifying all of them. Answers how many were
    added (synthetic demo accounts like the seed's, sharing the demo password's hash)."""
    with db.session() as session:
        staffed = set(session.scalars(select(User.scope_code).where(User.role == "grid_worker")))
        password_hash = session.scalar(select(User.password_hash).where(User.username == "admin"))
        centres = {
            code: unit_id
            for code, unit_id in session.execute(
                select(OrgUnit.division_code, OrgUnit.id).where(OrgUnit.kind == "centre")
            )
        }
        now = datetime.now(UTC)
        rows = [
            {
                "username": f"grid.{code}",
                "display_name": f"网格员{code[-6:]}",
                "password_hash": password_hash,
                "role": "grid_worker",
                "org_unit_id": centres[village],
                "scope_code": code,
                "locale": "zh",
                "is_active": True,
                "is_demo": True,
                "created_at": now,
                "password_changed_at": now,
            }
            for code, village in session.execute(select(Grid.code, Grid.village_code).order_by(Grid.code))
            if code not in staffed and village in centres
        ]
        for start in range(0, len(rows), 500):
            session.execute(insert(User), rows[start : start + 500])
    return len(rows)


def stations_file(folder: Path) -> Path:
    """The shipped stations with no level waiting for an operator, in the loader's own format."""
    config = yaml.safe_load(stations.DEFAULT_PATH.read_text(encoding="utf-8"))
    config["confirm_levels"] = []
    for station in config["stations"]:
        station.pop("confirm_levels", None)
    path = folder / "stations-no-confirm.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# --- what a red reading is, and what it must set in motion -----------------------------------------


def red_points(station: WarningStation, now_ms: int) -> tuple[list[dict[str, Any]], str]:
    """Telemetry (ThingsBoard format) that takes the station to red at now_ms, and the metric that does."""
    for code, levels in station.thresholds.items():
        if "red" not in levels:
            continue
        metric = stations.METRICS[code]
        red = float(levels["red"])
        if metric.how == "latest":
            return [{"ts": now_ms, "values": {metric.key: round(red * 1.05 + 0.1, 2)}}], code
        if metric.how == "sum":
            return [{"ts": now_ms, "values": {metric.key: round(red * 1.05, 1)}}], code
        # A change over the window: a reading just before the window and one now, well above it.
        return [
            {"ts": now_ms - metric.window_s * 1000 - 60_000, "values": {metric.key: 0.0}},
            {"ts": now_ms, "values": {metric.key: round(red * 1.5, 2)}},
        ], code
    raise SystemExit(f"station {station.code} has no red threshold")


class Expected:
    """The responders and tasks an area must get, from the places tables and the plan."""

    def __init__(self, db: Database, hazard: str, codes: list[str]) -> None:
        prefixes = [scope_prefix(c) for c in codes]
        with db.sessions() as session:
            grids = session.execute(
                select(Grid.code, Grid.village_code).where(or_(*(Grid.code.like(f"{p}%") for p in prefixes)))
            ).all()
            grid_codes = sorted({g for g, _ in grids})
            villages = sorted({v for _, v in grids})
            workers = set(
                session.scalars(
                    select(User.id).where(
                        User.is_active.is_(True), User.role == "grid_worker", User.scope_code.in_(grid_codes)
                    )
                )
            )
            heads = set(
                session.scalars(
                    select(User.id).where(
                        User.is_active.is_(True),
                        User.role == "centre_operator",
                        User.scope_code.in_(villages),
                    )
                )
            )
        self.users = workers | heads
        self.grid_workers = len(workers)
        plan = plans.registry().plan_for(hazard)
        self.tasks = 0
        for _level, item in plan.items_up_to("red") if plan else []:
            if item.target == "department":
                self.tasks += 1
            elif item.target == "grid":
                self.tasks += sum(1 for _g, v in grids if item.covers(v))
            else:
                self.tasks += sum(1 for v in villages if item.covers(v))
        self.grids = len(grid_codes)
        self.villages = len(villages)


def done(db: Database, warning_id: int, expected: Expected) -> bool:
    """Whether every responder has the warning's notice and every task exists with its case."""
    with db.sessions() as session:
        told = session.scalar(
            select(func.count(func.distinct(Notification.user_id))).where(
                Notification.link == f"/warnings/{warning_id}", Notification.user_id.in_(expected.users)
            )
        )
        if told != len(expected.users):
            return False
        tasks = session.scalar(
            select(func.count(WarningTask.id))
            .join(Case, Case.id == WarningTask.case_id)
            .where(WarningTask.warning_id == warning_id)
        )
        return tasks == expected.tasks


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(POLL_S)


def outbox_idle(db: Database) -> bool:
    with db.sessions() as session:
        return not session.scalar(
            select(func.count(OutboxEntry.id)).where(OutboxEntry.published_at.is_(None))
        )


def newest_warning_id(db: Database) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.max(HazardWarning.id))) or 0)


def station_warning(db: Database, code: str, after_id: int) -> int | None:
    with db.sessions() as session:
        return session.scalar(
            select(HazardWarning.id)
            .where(
                HazardWarning.id > after_id,
                HazardWarning.source == "station",
                HazardWarning.source_detail.contains(f"（{code}）"),
            )
            .order_by(HazardWarning.id)
            .limit(1)
        )


def cancel(api: httpx.Client, db: Database, warning_id: int) -> None:
    answer = api.post(f"/api/warnings/{warning_id}/cancel", json={"reason": "压测结束，解除预警"})
    if answer.status_code != 200:
        raise SystemExit(f"cancelling warning {warning_id}: {answer.status_code} {answer.text[:300]}")
    wait_for("the outbox to drain after cancelling", lambda: outbox_idle(db), timeout_s=300)


# --- the trials ------------------------------------------------------------------------------------


def finish(
    api: httpx.Client,
    db: Database,
    warning_id: int,
    label: str,
    expected: Expected,
    posted: float,
    elapsed: float,
    **what: Any,
) -> dict[str, Any]:
    """A trial's figures (printed too), once the outbox has drained and the warning is cancelled."""
    print(
        f"{label:30s} {expected.grids:4d} grids {len(expected.users):5d} people {expected.tasks:5d} tasks "
        f"{elapsed:7.3f} s",
        file=sys.stderr,
    )
    wait_for("the outbox to drain", lambda: outbox_idle(db), timeout_s=300)
    cancel(api, db, warning_id)
    return {
        **what,
        "grids": expected.grids,
        "villages": expected.villages,
        "grid_workers": expected.grid_workers,
        "people_notified": len(expected.users),
        "tasks": expected.tasks,
        "post_s": round(posted, 3),
        "seconds": round(elapsed, 3),
    }


def station_trials(api: httpx.Client, db: Database, count: int, rng: random.Random) -> list[dict[str, Any]]:
    with db.sessions() as session:
        found = list(session.scalars(select(WarningStation).order_by(WarningStation.code)))
        tokens = {s.code: s.token for s in episode.feed_stations(session)}
        for station in found:
            session.expunge(station)
    order = [s for s in found if s.code in tokens]
    rng.shuffle(order)
    trials = []
    for n in range(count):
        station = order[n % len(order)]
        expected = Expected(db, station.hazard, [v["code"] for v in station.villages])
        before = newest_warning_id(db)
        points, metric = red_points(station, int(time.time() * 1000))
        started = time.perf_counter()
        sent = api.post(f"/api/v1/{tokens[station.code]}/telemetry", json=points)
        if sent.status_code != 200:
            raise SystemExit(
                f"station {station.code}: telemetry refused {sent.status_code} {sent.text[:300]}"
            )
        posted = time.perf_counter() - started
        warning_id = wait_for(
            f"station {station.code}'s warning", lambda s=station, b=before: station_warning(db, s.code, b)
        )
        wait_for(f"the response to warning {warning_id}", lambda w=warning_id, e=expected: done(db, w, e))
        elapsed = time.perf_counter() - started
        trials.append(
            finish(
                api,
                db,
                warning_id,
                f"station {station.code}",
                expected,
                posted,
                elapsed,
                station=station.code,
                kind=station.kind,
                metric=metric,
                area=[v["code"] for v in station.villages],
            )
        )
        with db.session() as session:  # an operator's cancel keeps the level from being raised again
            session.execute(delete(StationState).where(StationState.station_id == station.id))
    return trials


def county_trials(api: httpx.Client, db: Database, count: int) -> list[dict[str, Any]]:
    trials = []
    for n in range(count):
        code = COUNTIES[n % len(COUNTIES)]
        expected = Expected(db, "flood", [code])
        body = {
            "hazard": "flood",
            "level": "red",
            "division_codes": [code],
            "expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600)),
            "description": "压测：县域红色洪水预警",
            "instruction": "按预案立即转移低洼地带群众。",
        }
        started = time.perf_counter()
        answer = api.post("/api/warnings", json=body)
        if answer.status_code != 201:
            raise SystemExit(f"issuing for {code}: {answer.status_code} {answer.text[:300]}")
        posted = time.perf_counter() - started
        warning_id = int(answer.json()["id"])
        wait_for(f"the response to warning {warning_id}", lambda w=warning_id, e=expected: done(db, w, e))
        elapsed = time.perf_counter() - started
        trials.append(finish(api, db, warning_id, f"county {code}", expected, posted, elapsed, county=code))
    return trials


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:  # nearest rank
        return ordered[max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 1)) - 1))]

    return {
        "n": len(ordered),
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(at(0.95), 3),
        "p99_s": round(at(0.99), 3),
        "max_s": round(ordered[-1], 3),
    }


def run(url: str, env: dict[str, str], folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {**env, "CITYOPS_DATABASE_URL": url}
    cli(env, "warnings", "stations", "load", str(stations_file(folder)))
    token = cli(env, "tokens", "create", "admin", "--name", "warning bench", "--days", "1").splitlines()[0]
    all_models.load()
    db = Database(url)
    added = staff_every_grid(db)
    try:
        with (
            served(env, workers=1) as base,
            httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {token}"}) as api,
        ):
            wait_for("the outbox to drain at start", lambda: outbox_idle(db), timeout_s=300)
            station = station_trials(api, db, args.trials, random.Random(args.seed))
            county = county_trials(api, db, args.county_trials) if args.county_trials else []
    finally:
        db.dispose()
    result: dict[str, Any] = {
        "grid_workers_added": added,
        "station_red": {**percentiles([t["seconds"] for t in station]), "trials": station},
    }
    result["station_red"]["meets_target"] = result["station_red"]["p99_s"] < TARGET_P99_S
    if county:
        result["county_red"] = {**percentiles([t["seconds"] for t in county]), "trials": county}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=40, help="station readings crossing red")
    parser.add_argument("--county-trials", type=int, default=6, help="county-wide red warnings by hand")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--database-url", default="", help="run on this (seeded, changed in place) database")
    args = parser.parse_args()
    base_env = {**os.environ, "CITYOPS_RUN_SCHEDULER": "false"}
    base_env.pop("CITYOPS_NATS_URL", None)
    with tempfile.TemporaryDirectory(
        prefix="warning-bench-", dir=ROOT / "var" / "bench" if (ROOT / "var" / "bench").is_dir() else None
    ) as tmp:
        folder = Path(tmp)
        env = {**base_env, "CITYOPS_ATTACHMENTS_DIR": str(folder / "files")}
        if args.database_url:
            url = args.database_url
            cli({**env, "CITYOPS_DATABASE_URL": url}, "db", "upgrade")
            cli({**env, "CITYOPS_DATABASE_URL": url}, "seed", "--scale", "full")  # skips what is there
            backend = url.split(":", 1)[0].split("+", 1)[0]
        else:
            template = seeded_template(env)
            shutil.copyfile(template, folder / "cityops.db")
            url = f"sqlite:///{folder / 'cityops.db'}"
            backend = "sqlite"
        result = run(url, env, folder, args)
    name = "warning_red_response" + ("" if backend == "sqlite" else f"_{backend}")
    save(
        name,
        {
            "what": WHAT,
            "backend": backend,
            "target": {"station_p99_s": TARGET_P99_S},
            **result,
        },
    )


if __name__ == "__main__":
    main()
