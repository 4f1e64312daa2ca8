"""`cityops webhooks ...`: send what is due, list the dead letters, retry one."""

from __future__ import annotations

import json

import typer

from cityops.config import get_settings
from cityops.core import webhooks
from cityops.core.db import Database
from cityops.core.errors import CityopsError

app = typer.Typer(help="Outbound webhooks: signed deliveries with retries and a dead-letter list.",
                  no_args_is_help=True)


def _db() -> Database:
    return Database(get_settings().database_url)


@app.command()
def deliver(limit: int = typer.Option(100, min=1, max=10_000, help="At most this many deliveries."),
            as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON.")) -> None:
    """Send every webhook that is due once (run it from a timer, e.g. every minute)."""
    settings = get_settings()
    db = _db()
    with webhooks.new_client() as client:
        report = webhooks.deliver_due(db, secret=webhooks.secret_from(settings), client=client, limit=limit)
    db.dispose()
    counts = {"delivered": report.delivered, "retrying": report.retrying, "dead": report.dead}
    if as_json:
        typer.echo(json.dumps(counts))
    else:
        typer.echo(" ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def dead(as_json: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """The dead-letter list: deliveries that failed every attempt, newest first."""
    db = _db()
    with db.session() as session:
        rows = [webhooks.as_dict(d) for d in webhooks.dead_letters(session)]
    db.dispose()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no dead webhooks")
    for row in rows:
        typer.echo(f"{row['id']:>6}  {row['created_at'][:19]}  {row['attempts']} attempts  {row['url']}  "
                   f"{row['last_error'] or ''}")


@app.command("retry")
def retry_one(delivery_id: int = typer.Argument(..., min=1, help="Id from `cityops webhooks dead`.")) -> None:
    """Put a dead delivery back in the queue; the next `deliver` sends it."""
    db = _db()
    try:
        with db.session() as session:
            webhooks.retry(session, delivery_id=delivery_id)
    except CityopsError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    typer.echo(f"webhook delivery {delivery_id} queued again")
