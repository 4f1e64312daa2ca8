"""`cityops credit ...`: check a credit code, import the market-regulation register, list entities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import typer

from cityops.config import get_settings
from cityops.core.db import Database
from cityops.core.errors import CityopsError
from cityops.credit import inspections_cli, repair_lending_cli, scoring_cli, service
from cityops.places import service as places_service

app = typer.Typer(
    help="Enterprise credit: unified social credit codes and the register of business entities.",
    no_args_is_help=True,
)
app.add_typer(inspections_cli.app, name="inspections")
app.add_typer(repair_lending_cli.repair_app, name="repair")
app.add_typer(repair_lending_cli.lending_app, name="lending")
app.command("import-records")(scoring_cli.import_records)
app.command("recompute")(scoring_cli.recompute)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command("check-code")
def check_code(code: str = typer.Argument(..., help="A unified social credit code (18 characters).")) -> None:
    """Say whether a code is a valid unified social credit code (GB 32100-2015) and, if not, why.
    Exit status 0 when valid, 1 when not."""
    result = service.check_code(code)
    if result.valid:
        typer.echo(
            f"valid: {result.code} ({result.authority} / {result.entity_type}, registered in division "
            f"{result.division})"
        )
        return
    typer.echo(f"invalid: {result.code or repr(code)}: {result.message}")
    raise typer.Exit(1)


@app.command("import")
def import_(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="CSV (UTF-8) or Excel export of the market-regulation register.",
    ),
) -> None:
    """Create or update the entities of a register export (idempotent on the credit code); refused rows
    are listed with their line, field and reason (exit status 1 if any)."""
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            index = places_service.build_index(session)
            result = service.import_entities(
                session, data=file.read_bytes(), filename=file.name, index=index, actor=None
            )
    except CityopsError as exc:
        _fail(f"{file.name}: {exc.message}")
    finally:
        db.dispose()
    for problem in result.rejected:
        typer.secho(
            f"line {problem.line}: {problem.field + ': ' if problem.field else ''}{problem.reason}", err=True
        )
    typer.echo(
        f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}, "
        f"rejected {len(result.rejected)}"
    )
    if result.rejected:
        raise typer.Exit(1)


@app.command("list")
def list_(
    kind: str | None = typer.Option(None, help="enterprise, individual, cooperative, social_org, other."),
    section: str | None = typer.Option(None, help="GB/T 4754-2017 section, A-T."),
    status: str | None = typer.Option(None, help="active, revoked, cancelled or moved_out."),
    division: str | None = typer.Option(None, help="A division or grid code."),
    q: str | None = typer.Option(None, help="Part of the name, or the whole code."),
    limit: int = typer.Option(50, min=1, max=10_000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Entities of the register, newest registrations first."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with db.sessions() as session:
            page = service.list_entities(
                session,
                viewer=None,
                limit=limit,
                locale=settings.default_locale,
                filters=service.Filters(kind=kind, section=section, status=status, division=division, q=q),
            )
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(page.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    for e in page.items:
        typer.echo(f"{e.id:>7}  {e.code}  {e.kind:<11}  {e.status:<9}  {e.division_code:<15}  {e.name}")
    typer.echo(f"{len(page.items)} of {page.total}")
