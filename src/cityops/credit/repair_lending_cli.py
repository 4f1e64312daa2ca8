"""`cityops credit repair ...` (exchange partners and their keys, the reminders) and
`cityops credit lending ...` (the platform's figures, the products on offer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from cityops.config import get_settings
from cityops.core.db import Database
from cityops.core.errors import CityopsError
from cityops.credit import lending, repair

repair_app = typer.Typer(help="Credit repair: exchange partners, reminders.", no_args_is_help=True)
lending_app = typer.Typer(help="Credit lending (信易贷): figures and products.", no_args_is_help=True)


@contextmanager
def _database() -> Iterator[Database]:
    db = Database(get_settings().database_url)
    try:
        yield db
    except CityopsError as exc:
        typer.secho(
            f"error: {exc.field + ': ' if exc.field else ''}{exc.message}", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(2) from None
    finally:
        db.dispose()


@repair_app.command("partner-add")
def partner_add(
    code: str = typer.Argument(..., help="The partner platform's code, e.g. anyang-410500."),
    name: str = typer.Option("", help="Its name."),
) -> None:
    """Register (or re-activate) another region's platform to exchange repair results with, and print the
    HMAC key to hand over to it out of band."""
    with _database() as db, db.session() as session:
        partner = repair.add_partner(session, actor=None, code=code, name=name)
    typer.echo(f"partner {partner.code} ({partner.name}) active")
    typer.echo(f"key: {repair.partner_key(get_settings().derived_secret, partner.code).decode()}")


@repair_app.command("partner-key")
def partner_key(code: str = typer.Argument(..., help="The partner platform's code.")) -> None:
    """Print the HMAC key shared with a partner (derived from this installation's secret key)."""
    typer.echo(repair.partner_key(get_settings().derived_secret, code).decode())


@repair_app.command("remind")
def remind() -> None:
    """Run the reminders now: entities whose penalty became repairable, staff before deadlines."""
    with _database() as db:
        done = repair.remind(db)
    typer.echo(f"entities told {done.entities_told}, staff reminded {done.staff_reminded}")


@lending_app.command("figures")
def figures(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Banks, products, registered firms, credit lines granted and loans issued (from the records)."""
    with _database() as db, db.sessions() as session:
        found = lending.figures(session)
    if as_json:
        typer.echo(json.dumps(found.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"banks {found.banks}, products {found.products}, registered firms {found.registered_firms}, "
        f"applications {found.applications}\n"
        f"credit lines granted {found.credit_lines_granted} ({found.credit_line_total / 1e4:,.0f} 万元), "
        f"loans issued {found.loans_issued} ({found.loan_total / 1e4:,.0f} 万元)"
    )


@lending_app.command("products")
def products(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The loan products on offer."""
    with _database() as db, db.sessions() as session:
        found = lending.list_products(session)
    if as_json:
        typer.echo(json.dumps([p.model_dump(mode="json") for p in found], ensure_ascii=False, indent=2))
        return
    for p in found:
        typer.echo(f"{p.id:>5}  {p.bank_name}  {p.name}  ≤{p.max_amount / 1e4:,.0f}万元  {p.rate:.2f}%")
