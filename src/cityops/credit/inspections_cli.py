"""`cityops credit inspections ...`: the categories, inspectors' qualifications and conflicts, a year's
random and joint inspection plan and its figures."""

from __future__ import annotations

import json
from datetime import date
from typing import NoReturn

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.config import get_settings
from cityops.core.auth.models import User
from cityops.core.db import Database
from cityops.core.errors import CityopsError
from cityops.core.yaml_config import ConfigFileError
from cityops.credit import inspections
from cityops.credit.models import Entity

app = typer.Typer(help="Random (双随机) and joint inspections of business entities.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _ratios(values: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for value in values:
        cls, _, share = value.partition("=")
        try:
            out[cls.strip().upper()] = float(share)
        except ValueError:
            _fail(f"--ratio {value!r}: give CLASS=SHARE, e.g. A=0.03")
    return out


def _print_figures(found: inspections.PlanFigures, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(found.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{found.year}: {found.plans} plans, {found.tasks} tasks, {found.visits} joint visits")
    typer.echo(
        f"visits saved against separate inspections: {found.visits_saved} "
        f"({found.separate_visits_per_inspected_entity:g} separate visits per inspected entity, 1 joint)"
    )
    typer.echo(
        f"visits per entity in business: {found.visits_per_active_entity:g}; "
        f"unscheduled: {found.unscheduled}; "
        f"visits by 2+ departments: {found.multi_department_visits}; mean team {found.mean_team_size:g}"
    )
    for row in found.by_class:
        typer.echo(
            f"  class {row.risk_class:<12} {row.visited:>7} of {row.active:>7} visited ({row.coverage:.2%})"
        )


@app.command("categories")
def categories() -> None:
    """The inspection categories with their department and check items."""
    try:
        registry = inspections.load_categories()
    except ConfigFileError as exc:
        _fail(str(exc))
    for category in registry.categories:
        items = "、".join(i.name_zh for i in category.items)
        typer.echo(f"{category.code:<20} {category.department:<18} {category.name_zh}: {items}")


@app.command("plan")
def plan(
    year: int = typer.Option(..., help="The year to plan, e.g. 2026."),
    seed: int | None = typer.Option(
        None, help="Seed of the draw (default: random; each plan keeps its own)."
    ),
    ratio: list[str] = typer.Option([], help="Share of a class drawn, e.g. --ratio A=0.03 (within bounds)."),
    start: str | None = typer.Option(None, help="First day to schedule (YYYY-MM-DD; default 1 January)."),
    capacity: int | None = typer.Option(None, help="Joint visits per inspector and working day."),
    replace: bool = typer.Option(False, help="Replace the year's plan while nothing of it is recorded."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Draw the year's random inspections of every category, merge them into joint visits, route and
    schedule them; print the figures (tasks, visits, visits saved, coverage per class)."""
    try:
        first = date.fromisoformat(start) if start else None
    except ValueError:
        _fail(f"--start {start!r} is not a date (YYYY-MM-DD)")
    try:
        registry = inspections.load_categories()
    except ConfigFileError as exc:
        _fail(str(exc))
    options = inspections.PlanOptions(
        year=year, seed=seed, ratios=_ratios(ratio) or None, start=first, capacity=capacity, replace=replace
    )
    db = Database(get_settings().database_url)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=as_json,
        transient=True,
    )
    steps = len(registry.categories) + 3  # population, the categories, joint visits, figures
    task = progress.add_task(f"planning {year}", total=steps)

    def step(label: str) -> None:
        progress.update(task, advance=1, description=f"planning {year}: {label}")

    try:
        with progress, db.session() as session:
            found = inspections.plan_year(session, options=options, actor=None, progress=step)
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()
    _print_figures(found, as_json=as_json)


@app.command("figures")
def figures(
    year: int = typer.Option(..., help="The planned year."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The year's figures, computed from its plans and visits."""
    db = Database(get_settings().database_url)
    try:
        with db.sessions() as session:
            found = inspections.figures(session, year=year)
    finally:
        db.dispose()
    _print_figures(found, as_json=as_json)


def _user_id(session: Session, username: str) -> int:
    found = session.scalar(select(User.id).where(User.username == username))
    if found is None:
        _fail(f"no user {username!r}")
    return found


@app.command("qualify")
def qualify(
    username: str = typer.Argument(..., help="The inspector's username."),
    category: list[str] = typer.Argument(..., help="Category codes (see `categories`)."),
) -> None:
    """Record an inspector's qualification for categories."""
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            held = inspections.qualify(
                session, user_id=_user_id(session, username), categories=category, actor=None
            )
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()
    typer.echo(f"{username}: {', '.join(held)}")


@app.command("conflict")
def conflict(
    username: str = typer.Argument(..., help="The inspector's username."),
    relation: str = typer.Option(..., help="own, relative, former_employer, home_village or other."),
    entity: str | None = typer.Option(None, help="The entity's credit code."),
    village: str | None = typer.Option(None, help="The village code (relation home_village)."),
    note: str = typer.Option("", help="What the conflict is."),
) -> None:
    """Declare an inspector's conflict of interest with an entity or a village."""
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            entity_id = None
            if entity:
                entity_id = session.scalar(select(Entity.id).where(Entity.code == entity.strip().upper()))
                if entity_id is None:
                    _fail(f"no entity with code {entity!r}")
            inspections.declare_conflict(
                session,
                user_id=_user_id(session, username),
                relation=relation,
                actor=None,
                entity_id=entity_id,
                village_code=village,
                note=note,
            )
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()
    typer.echo(f"{username}: conflict declared")
