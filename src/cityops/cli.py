"""The `cityops` command line: the Typer root that mounts each package's commands."""

from __future__ import annotations

import json
import sys

import typer

from cityops.config import get_settings

app = typer.Typer(help="cityops: city operations and governance platform (城市运行与治理平台).",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")

from cityops.accounts.cli import tokens_app, users_app  # noqa: E402 - mounted right after the root

app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

from cityops.places.cli import app as places_app  # noqa: E402

app.add_typer(places_app, name="places")

from cityops.core.webhooks_cli import app as webhooks_app  # noqa: E402

app.add_typer(webhooks_app, name="webhooks")

from cityops.cases.cli import app as cases_app  # noqa: E402

app.add_typer(cases_app, name="cases")

from cityops.governance.risks.cli import app as governance_app  # noqa: E402

app.add_typer(governance_app, name="governance")

from cityops.perception.cli import app as devices_app  # noqa: E402
from cityops.perception.cli import mqtt_app  # noqa: E402

app.add_typer(devices_app, name="devices")
app.add_typer(mqtt_app, name="mqtt")

from cityops.warning.cli import app as warnings_app  # noqa: E402

app.add_typer(warnings_app, name="warnings")

from cityops.credit.cli import app as credit_app  # noqa: E402

app.add_typer(credit_app, name="credit")

from cityops.livability.cli import app as livability_app  # noqa: E402

app.add_typer(livability_app, name="livability")

from cityops.demo.cli import app as demo_app  # noqa: E402

app.add_typer(demo_app, name="demo")


def fail(message: str, code: int = 2) -> None:
    """Print a precise error to stderr and exit without a stack trace."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the database schema to the latest (or given) revision."""
    from cityops.core import migrate

    migrate.upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {migrate.current(get_settings().database_url)}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, or 'base' to drop all.")) -> None:
    """Roll the schema back to a revision."""
    from cityops.core import migrate

    migrate.downgrade(get_settings().database_url, revision)
    typer.echo(f"database at {migrate.current(get_settings().database_url)}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the configured database."""
    from cityops.core import migrate

    typer.echo(migrate.current(get_settings().database_url) or "empty")


@app.command()
def seed(
    scale: str = typer.Option("full", help="'full' for Hebi at real scale, 'small' for a quick sample."),
    seed_value: int = typer.Option(2024, "--seed", help="Random seed; the same seed gives the same data."),
    as_json: bool = typer.Option(False, "--json", help="Print seconds per generator as JSON."),
) -> None:
    """Fill the database with synthetic demo Hebi (labelled synthetic); skips what is already seeded."""
    if scale not in ("full", "small"):
        fail(f"--scale must be 'full' or 'small', not {scale!r}")
    from cityops.core import migrate
    from cityops.core.db import Database
    from cityops.core.seeding import seed as run_seed

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    db = Database(settings.database_url)
    timings = run_seed(db, scale=scale, seed=seed_value, quiet=as_json)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(timings))
    else:
        for name, seconds in timings.items():
            typer.echo(f"seeded {name} in {seconds:.1f} s")
        if not timings:
            typer.echo("already seeded; nothing to do")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Run the web server (GET /healthz answers 200 once it is ready)."""
    import uvicorn

    uvicorn.run("cityops.app:create_server_app", factory=True, host=host, port=port, workers=workers,
                log_level="info")


@mqtt_app.command()
def ingest(worker: str = typer.Option("1", help="This worker's name, unique among the workers: the "
                                                "broker keeps its session (and what it has not yet "
                                                "acknowledged) under it.")) -> None:
    """Consume device messages from the broker into the database (several workers share the load);
    also keeps the broker's credentials file up to date. Stops cleanly on Ctrl-C or SIGTERM."""
    import asyncio
    import gc
    import logging
    import signal

    from cityops.app import create_app
    from cityops.perception.mqtt import IngestWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    # The app's event bus, so the alarms stored here open their cases right away.
    web = create_app(settings)
    db, bus = web.state.db, web.state.bus

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await IngestWorker(db, settings, client_id=f"cityops-ingest-{worker}").run(stop)

    # A batch makes tens of thousands of short-lived objects, freed by reference counting; with the
    # default thresholds the collector walked them, and every start-up object, many times a batch
    # (measured: a quarter of the worker's time). Start-up objects are frozen, as the server's are.
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)

    # As the server does: a broker's consumers run either way; the drain in a thread or after each commit.
    bus.start(background=settings.events_in_background)
    try:
        asyncio.run(run())
    finally:
        bus.stop()
        db.dispose()



@warnings_app.command("rain-episode")
def rain_episode(
    speed: float = typer.Option(360.0, "--speed", min=1, max=10_000_000,
                                help="Episode seconds per second: 360 plays an hour in 10 s, 3600 in 1 s."),
    station: list[str] = typer.Option([], "--station", help="Only this station (repeat for more)."),
    confirm: bool = typer.Option(False, "--confirm",
                                 help="Confirm the levels the stations propose at once, as a duty operator."),
    step_minutes: int = typer.Option(5, "--step-minutes", min=1, max=60,
                                     help="Episode minutes between two readings of a station."),
) -> None:
    """Feed the monitoring stations a heavy-rain episode through the ingestion path: 96 hours SHAPED
    AFTER the July 2021 Henan rainfall (synthetic figures), over which their warnings rise from blue to
    red and are lifted again. Runs the app's subscribers, as the server does (warnings, their response)."""
    import signal
    import threading
    from types import FrameType

    from cityops.app import create_app
    from cityops.warning import episode, monitor, stations
    from cityops.warning import service as warning_service

    settings = get_settings()
    web = create_app(settings)
    db, bus = web.state.db, web.state.bus
    issuer = warning_service.Issuer.from_settings(settings)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        played = episode.prepare(db, speed=speed, codes=station or None, step_s=step_minutes * 60)
    except ValueError as exc:
        db.dispose()
        fail(str(exc))
        return
    hours = played.steps * played.step_s / 3600
    typer.echo(f"heavy-rain episode (synthetic): {hours:g} h for {len(played.feed)} stations, "
               f"{hours * 3600 / speed:.0f} s at speed {speed:g}")
    shown: dict[str, tuple[str | None, str | None]] = {}
    codes = {s.code for s in played.feed}

    def report(k: int) -> None:
        if k % (3600 // played.step_s) and k != played.steps - 1:
            return  # once an episode hour
        with db.session() as session:
            for item in stations.list_stations(session).items:
                if item.code not in codes:
                    continue
                if confirm and item.proposed_level:
                    monitor.confirm(session, code=item.code, actor=None, issuer=issuer)
                    item = stations.get_station(session, code=item.code)
                now = (item.warning_level, item.proposed_level)
                if shown.get(item.code, (None, None)) != now:
                    waiting = f", {item.proposed_level} awaiting confirmation" if item.proposed_level else ""
                    state = f"warning {item.warning_id} {item.warning_level}{waiting}" if item.warning_id \
                        else "lifted"
                    typer.echo(f"hour {k * played.step_s / 3600:5.2f}  {item.code:<20}  {state}")
                    shown[item.code] = now

    bus.start(background=False)  # drained after each step's commit, as the server would
    try:
        result = episode.play(db, played, speed=speed, wait=stop.wait, on_step=report)
    finally:
        bus.stop()
        db.dispose()
    done = "stopped after" if result.stopped else "played"
    typer.echo(f"{done} {result.steps} steps, {result.readings} readings")

def main() -> None:
    """Console entry: errors an operator can fix get one line, never a stack trace."""
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError

    from cityops.core.errors import CityopsError

    try:
        app(standalone_mode=True)
    except OperationalError as exc:
        message = f"cannot use the database ({get_settings().database_url}): {exc.orig}"
        if "no such table" in str(exc.orig) or "does not exist" in str(exc.orig):
            message += "; create the schema with `cityops db upgrade` (and `cityops seed` for demo data)"
    except ValidationError as exc:
        message = f"bad setting: {exc.errors()[0]['msg']}"
    except CityopsError as exc:
        message = exc.message
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    sys.exit(2)


if __name__ == "__main__":
    main()
