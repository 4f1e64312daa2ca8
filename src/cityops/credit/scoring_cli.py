"""`cityops credit import-records FILE --source S` and `cityops credit recompute`: registered on the credit
command group by credit/cli.py."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cityops.config import get_settings
from cityops.core.db import Database
from cityops.core.errors import CityopsError
from cityops.credit import records, scoring

STEPS = ("read", "score", "write", "tags")
STEP_NAMES = {
    "read": "reading records",
    "score": "scoring",
    "write": "writing classes and their history",
    "tags": "supervision tags",
}


def import_records(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="CSV (UTF-8) or Excel file of credit records."
    ),
    source: str = typer.Option(..., "--source", help="The sending system, e.g. hebi-samr-penalty."),
) -> None:
    """Create or update the credit records of a file from one sending system (idempotent on the record
    id). All or nothing: if any line is refused, every refused line is listed with its field and reason,
    nothing is stored, and the exit status is 1."""
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            result = records.import_records(
                session, data=file.read_bytes(), filename=file.name, source=source, actor=None
            )
    except records.BatchRefused as exc:
        for problem in exc.problems:
            typer.secho(f"line {problem.index}: {problem.field}: {problem.reason}", err=True)
        typer.secho(
            f"{file.name}: {len(exc.problems)} lines refused; nothing was stored",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1) from None
    except CityopsError as exc:
        typer.secho(f"error: {file.name}: {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    typer.echo(f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}")


def recompute(
    config: Path | None = typer.Option(
        None,
        "--config",
        exists=True,
        dir_okay=False,
        help="A scoring model to use instead of the shipped scoring.yaml.",
    ),
) -> None:
    """Score and classify every entity from its records, keep the history of class changes and refresh
    the supervision tags (the scheduler does this daily)."""
    try:
        model = scoring.load_config(config)
    except scoring.ScoringConfigError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    db = Database(get_settings().database_url)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    try:
        with progress, db.session() as session:
            task = progress.add_task(STEP_NAMES["read"], total=len(STEPS))

            def step(name: str) -> None:
                done = STEPS.index(name) + 1
                following = STEPS[done] if done < len(STEPS) else None
                progress.update(
                    task, completed=done, description=STEP_NAMES[following] if following else "done"
                )

            result = scoring.recompute(session, config=model, progress=step)
    finally:
        db.dispose()
    classes = ", ".join(f"{c} {result.classes.get(c, 0)}" for c in ("A", "B", "C", "D"))
    typer.echo(
        f"{result.entities} entities, {result.records} records in {result.seconds['total']:.2f} s: "
        f"{classes}; {result.changes} class changes; {result.tags} tags"
    )
