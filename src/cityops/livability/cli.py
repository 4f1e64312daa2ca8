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
