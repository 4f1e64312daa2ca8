"""`cityops cases ...`: the deadline sweep by hand (the app's scheduler runs it every minute)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer

from cityops.cases import service
from cityops.config import get_settings
from cityops.core.db import Database

app = typer.Typer(help="Cases: deadlines and escalation.", no_args_is_help=True)


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        typer.secho(f"error: --now {text!r} is not an ISO 8601 date-time (e.g. 2024-10-08T12:00+08:00)",
                    err=True)
        raise typer.Exit(2) from None
    # A moment without a zone is read as UTC, like every stored timestamp.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@app.command()
def sweep(now: str | None = typer.Option(None, "--now", help="Sweep as of this moment (ISO 8601)."),
          as_json: bool = typer.Option(False, "--json", help="Print the case ids as JSON.")) -> None:
    """Escalate every case past its deadline one level up; flag those that cannot go higher."""
    db = Database(get_settings().database_url)
    try:
        report = service.sweep(db, now=_moment(now))
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps({"escalated": report.escalated, "flagged": report.flagged}))
    else:
        typer.echo(f"escalated {len(report.escalated)} flagged overdue {len(report.flagged)}")
