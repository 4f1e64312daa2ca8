"""`cityops governance risks scan`: the searchlight by hand (the scheduler runs it hourly)."""

from __future__ import annotations

import json

import typer

from cityops.config import get_settings
from cityops.core.db import Database
from cityops.governance.risks import service

app = typer.Typer(help="Governance: the risk register and its searchlight.", no_args_is_help=True)
risks_app = typer.Typer(help="Risk register (探照灯 / 挖掘机 / 压路机).", no_args_is_help=True)
app.add_typer(risks_app, name="risks")


@risks_app.command()
def scan(as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON.")) -> None:
    """Find case patterns (clusters, repeat disputes) and register the new ones; safe to run again."""
    db = Database(get_settings().database_url)
    try:
        report = service.scan_db(db)
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(report.model_dump()))
    else:
        typer.echo(f"registered {report.registered} updated {report.updated}")
