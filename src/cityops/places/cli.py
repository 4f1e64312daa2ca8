"""`cityops places ...`: statistics, point lookup, showing a division and importing boundaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import typer

from cityops.config import get_settings
from cityops.core.db import Database
from cityops.core.errors import CityopsError

app = typer.Typer(
    help="Places: divisions (city, county, township, village), grids and point lookup.", no_args_is_help=True
)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _db() -> Database:
    return Database(get_settings().database_url)


def _print_json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@app.command()
def stats(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Counts per level (city, county, township, village, grid) and per county unit."""
    from cityops.places import service

    with _db().session() as session:
        result = service.stats(session)
    if as_json:
        _print_json(result.model_dump())
        return
    for level, count in result.counts.items():
        typer.echo(f"{level:<9} {count:>6}")
    typer.echo("")
    typer.echo(
        f"{'code':<7} {'county unit':<14} {'townships':>9} {'villages':>8} {'grids':>6} "
        f"{'population':>10} {'km²':>7}"
    )
    for c in result.counties:
        typer.echo(
            f"{c.code:<7} {c.name:<14} {c.townships:>9} {c.villages:>8} {c.grids:>6} "
            f"{c.population:>10} {c.area_km2:>7.1f}"
        )
    typer.echo("")
    typer.echo(result.synthetic_note)


@app.command()
def lookup(
    lon: float = typer.Argument(..., help="WGS84 longitude in degrees, e.g. 114.2860."),
    lat: float = typer.Argument(..., help="WGS84 latitude in degrees, e.g. 35.7395."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """The grid, village, township and county of a WGS84 point (error if it is outside the city)."""
    from cityops.places import service

    try:
        with _db().session() as session:
            service.validate_coordinates(lon, lat)
            result = service.lookup_point(service.build_index(session), lon=lon, lat=lat)
    except CityopsError as exc:
        _fail(exc.message)
    if as_json:
        _print_json(result.model_dump())
        return
    for label, ref in (
        ("grid", result.grid),
        ("village", result.village),
        ("township", result.township),
        ("county", result.county),
    ):
        typer.echo(f"{label:<9} {ref.code + '  ' + ref.name if ref else '-'}")


@app.command()
def show(
    code: str = typer.Argument(..., help="A division code (6, 9 or 12 digits) or a grid code (15)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """A division with its parents, children and counts, or a grid."""
    from cityops.places import service

    try:
        with _db().session() as session:
            if len(code) == 15:
                grid = service.get_grid(session, code=code)
                if as_json:
                    _print_json(grid.model_dump())
                    return
                typer.echo(f"{grid.code}  {grid.name}  (grid{', synthetic' if grid.synthetic else ''})")
                typer.echo(f"village     {grid.village_code}")
                typer.echo(f"population  {grid.population}   households {grid.households}")
                typer.echo(f"area        {grid.area_km2:.3f} km²" if grid.area_km2 is not None else "area -")
                typer.echo(f"source      {grid.geometry_source}")
                return
            detail = service.get_division(session, code=code)
    except CityopsError as exc:
        _fail(exc.message)
    if as_json:
        _print_json(detail.model_dump())
        return
    path = " > ".join(f"{a.name}" for a in detail.ancestors)
    typer.echo(
        f"{detail.code}  {detail.name}"
        + (f" ({detail.name_en})" if detail.name_en else "")
        + f"  [{detail.level}]"
    )
    if path:
        typer.echo(f"in          {path}")
    typer.echo(f"population  {detail.population}" + ("  (synthetic)" if detail.level != "city" else ""))
    if detail.area_km2 is not None:
        typer.echo(f"area        {detail.area_km2:.1f} km²")
    typer.echo(f"geometry    {detail.geometry_source} (source datum {detail.source_datum})")
    typer.echo("below       " + ", ".join(f"{n} {level}" for level, n in detail.counts.items()))
    for child in detail.children:
        typer.echo(f"  {child.code}  {child.name}")
    for grid in detail.grids:
        typer.echo(f"  {grid.code}  {grid.name}  population {grid.population}")


@app.command("import")
def import_(
    file: Path = typer.Argument(
        ..., help="GeoJSON (.geojson/.json), Shapefile (.shp) or zipped Shapefile (.zip)."
    ),
    level: str = typer.Option(
        ..., "--level", help="What the features are: county, township, village or grid."
    ),
    datum: str = typer.Option(
        "wgs84",
        "--datum",
        help="Datum of the coordinates: wgs84, or gcj02 (Amap/Tencent/DataV) which is converted to WGS84.",
    ),
    source: str = typer.Option(None, "--source", help="Where the boundaries come from, stored with them."),
) -> None:
    """Replace boundaries with a city's own, all or nothing.

    Each feature needs a `code` property (NBS code; grids: 15 characters) and, when new, a `name`;
    `parent_code` is optional where the code nests (NBS). Import top-down: counties, townships,
    villages, then grids (the point lookup answers from grids). Imported geometry is marked as not
    synthetic, with its source. Any bad feature stops the import and is named in the error."""
    from cityops.places import importer

    try:
        with _db().session() as session:
            result = importer.import_file(session, path=file, level=level, datum=datum, source=source)
    except CityopsError as exc:
        errors = exc.detail.get("errors") if exc.detail else None
        if errors:
            typer.secho(f"error: {exc.message.split(':', 1)[0]}:", fg=typer.colors.RED, err=True)
            for line in errors:
                typer.secho(f"  {line}", err=True)
            raise typer.Exit(2) from None
        _fail(exc.message)
    typer.echo(
        f"imported {result.created + result.updated} {level} feature(s) from {file.name}: "
        f"{result.created} new, {result.updated} updated, {result.deleted} old grid(s) removed; "
        f"datum {result.datum}"
    )
