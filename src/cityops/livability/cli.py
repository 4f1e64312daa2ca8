"""`cityops livability ...`: walking networks (import from OpenStreetMap, list) and isochrones."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from sqlalchemy.orm import Session

from cityops.config import get_settings
from cityops.core.db import Database
from cityops.core.errors import CityopsError
from cityops.livability import service
from cityops.livability.engine import DEFAULT_SPEED_MPS

app = typer.Typer(help="The 15-minute living circle: walking networks and accessibility.",
                  no_args_is_help=True)
T = TypeVar("T")


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _in_session(work: Callable[[Session], T], *, write: bool = False) -> T:
    """Run `work` on the configured database (as one unit of work when it writes); a CityopsError is
    one line on stderr and exit code 1."""
    db = Database(get_settings().database_url)
    try:
        with db.session() if write else db.sessions() as session:
            return work(session)
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()


@app.command("import-network")
def import_network(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="An OpenStreetMap PBF extract (.osm.pbf)."),
    name: str = typer.Option(..., "--name", help="The network's name, e.g. the city's."),
    replace: bool = typer.Option(False, "--replace", help="Replace the network of that name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import the walking network of an OSM PBF file (footways, paths, residential streets ...; not
    motorways) as nodes and edges with lengths in metres. One transaction: a broken file stores nothing."""
    result = _in_session(lambda s: service.import_network(s, path=file, name=name, replace=replace),
                         write=True)
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    n = result.network
    typer.echo(f"{'replaced' if result.replaced else 'imported'} network {n.name!r} from {file.name}: "
               f"{n.node_count:,} nodes, {n.edge_count:,} edges, {n.length_km:,.1f} km of walkable ways "
               f"({result.ways:,} ways)")
    if result.dropped_edges:
        typer.echo(f"left out {result.dropped_edges:,} edges not connected to the rest of the network")
    if result.missing_nodes:
        typer.echo(f"skipped {result.missing_nodes:,} way-node references to nodes not in the file "
                   "(ways cut at the edge of the extract)")


@app.command("networks")
def networks(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The stored walking networks."""
    found = _in_session(service.list_networks)
    if as_json:
        typer.echo(json.dumps([n.model_dump(mode="json") for n in found], ensure_ascii=False, indent=2))
        return
    for n in found:
        label = " (synthetic)" if n.synthetic else ""
        typer.echo(f"{n.name:<24} {n.node_count:>9,} nodes {n.edge_count:>9,} edges "
                   f"{n.length_km:>10,.1f} km  {n.source}{label}")
    typer.echo(f"{len(found)} networks")


@app.command("isochrone")
def isochrone(
    network: str = typer.Option(..., "--network", help="The network's name."),
    lon: float = typer.Option(..., "--lon", help="WGS84 longitude."),
    lat: float = typer.Option(..., "--lat", help="WGS84 latitude."),
    minutes: float = typer.Option(15.0, "--minutes", help="Walking time."),
    speed: float = typer.Option(DEFAULT_SPEED_MPS, "--speed", min=0.1, max=5.0, help="Walking speed, m/s."),
) -> None:
    """The area reachable on foot from a point, as a GeoJSON Feature."""
    feature = _in_session(lambda s: service.isochrone(s, name=network, lon=lon, lat=lat, minutes=minutes,
                                                      speed_mps=speed))
    typer.echo(json.dumps(feature, ensure_ascii=False))


@app.command("categories")
def categories(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The facility categories, their walking thresholds and standards (data/categories.yaml)."""
    found = service.categories()
    if as_json:
        typer.echo(json.dumps([c.model_dump() for c in found], ensure_ascii=False, indent=2))
        return
    for c in found:
        typer.echo(
            f"{c.key:<22} {c.threshold_m:>6,.0f} m {c.minutes:>3} min  {c.level:<8} {c.group:<10} "
            f"{c.name_zh} / {c.name_en}"
        )


@app.command("import-facilities")
def import_facilities(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="A CSV, Excel (.xlsx) or GeoJSON file of facilities.",
    ),
    network: str | None = typer.Option(
        None, "--network", help="The network whose area they must lie in (default: the only one)."
    ),
    replace: bool = typer.Option(False, "--replace", help="Replace every stored facility."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import facilities (category, name, lon, lat; area_m2 and entrances of green spaces). Every bad
    row is named with its line and field, and one refuses the whole file: nothing half-imported."""
    data = file.read_bytes()
    result = _in_session(
        lambda s: service.import_facilities(
            s, data=data, filename=file.name, network=network, replace=replace
        ),
        write=True,
    )
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"imported {result.imported:,} facilities from {file.name}"
        + (f", replacing {result.replaced:,}" if result.replaced else "")
    )
    for key, count in sorted(result.by_category.items()):
        typer.echo(f"  {key:<22} {count:>6,}")


@app.command("report")
def report(
    network: str | None = typer.Option(None, "--network", help="The network (default: the only one)."),
    speed: float = typer.Option(DEFAULT_SPEED_MPS, "--speed", min=0.3, max=3.0, help="Walking speed, m/s."),
    scope: str = typer.Option(
        "urban",
        "--scope",
        help="urban: the communities (社区) the 15-minute living circle is for; all: villages too.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the city, county and township figures as JSON."
    ),
    communities: bool = typer.Option(False, "--communities", help="With --json: every community's row too."),
    xlsx: Path | None = typer.Option(None, "--xlsx", dir_okay=False, help="Write the Excel report here."),
) -> None:
    """Coverage of the 15-minute living circle: per community the walking access and the missing items,
    and the township, county and city figures summed from the communities."""
    if xlsx is not None:
        body = _in_session(lambda s: service.report_xlsx(s, network=network, speed_mps=speed, scope=scope))
        xlsx.write_bytes(body)
        typer.echo(f"wrote {xlsx}")
        if not as_json:
            return
    result = _in_session(
        lambda s: service.report(
            s, network=network, speed_mps=speed, scope=scope, with_communities=communities
        )
    )
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"network {result.network!r}{' (synthetic)' if result.network_synthetic else ''}, "
        f"{result.facilities:,} facilities ({result.facilities_synthetic:,} synthetic), scope {scope}"
    )

    def pct(rate: float | None) -> str:
        return "   -  " if rate is None else f"{rate * 100:5.1f}%"

    typer.echo(
        f"{'area':<28} {'analysed':>9} {'population':>11} {'green300':>8} {'park500':>8} {'complete':>8}"
    )
    for a in [result.city, *result.counties, *result.townships]:
        indent = {"city": "", "county": "  ", "township": "    "}[a.level]
        typer.echo(
            f"{(indent + a.name)[:28]:<28} {a.analysed:>4}/{a.communities:<4} {a.population_analysed:>11,} "
            f"{pct(a.green_300.rate):>8} {pct(a.park_500.rate):>8} {pct(a.complete.rate):>8}"
        )


@app.command("sites")
def sites(
    category: str = typer.Argument(..., help="The category, e.g. kindergarten."),
    count: int = typer.Option(5, "--count", min=1, max=50, help="How many sites."),
    network: str | None = typer.Option(None, "--network", help="The network (default: the only one)."),
    scope: str = typer.Option("urban", "--scope", help="urban or all."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sites for new facilities of a category, ranked by the population each would newly cover."""
    result = _in_session(
        lambda s: service.suggest_sites(s, category=category, count=count, network=network, scope=scope)
    )
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{category}: {result.population_covered:,} of {result.population_analysed:,} people covered")
    for s in result.sites:
        typer.echo(
            f"{s.rank:>2}. ({s.lon:.6f}, {s.lat:.6f}) +{s.population:,} people, "
            f"{len(s.communities)} communities"
        )
