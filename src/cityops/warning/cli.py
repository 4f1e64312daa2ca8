"""`cityops warnings ...`: list warnings, print a warning's CAP message, import a CAP file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer
from sqlalchemy.orm import Session

from cityops.config import get_settings
from cityops.core.db import Database
from cityops.core.errors import CityopsError
from cityops.warning import cap, service

app = typer.Typer(help="Natural-disaster warnings and their CAP 1.2 messages.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command("list")
def list_(
    status: str | None = typer.Option(None, help="active, draft, pending, issued, cancelled or expired."),
    hazard: str | None = typer.Option(None, help="Only this hazard, e.g. rainstorm."),
    limit: int = typer.Option(100, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Warnings, the most recently changed first."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with db.sessions() as session:
            page = service.list_warnings(
                session, status=status, hazard=hazard, limit=limit, locale=settings.default_locale
            )
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(page.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    for w in page.items:
        typer.echo(
            f"{w.id:>6}  {w.status:<9}  {w.level:<6}  {w.hazard:<12}  {cap.cap_time(w.expires)}  {w.headline}"
        )
    typer.echo(f"{len(page.items)} of {page.total}")


@app.command("cap")
def cap_(warning_id: int = typer.Argument(..., help="Warning id.")) -> None:
    """Print the warning's newest CAP 1.2 message (Alert, Update or Cancel)."""
    db = Database(get_settings().database_url)
    try:
        with db.sessions() as session:
            xml = service.latest_cap(session, warning_id=warning_id)
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()
    typer.echo(xml, nl=not xml.endswith("\n"))


@app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="A CAP 1.2 XML file."),
) -> None:
    """Import another sender's CAP message (an Alert, or an Update or Cancel of one imported before)."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            result = service.import_cap(
                session, data=file.read_bytes(), actor=None, issuer=service.Issuer.from_settings(settings)
            )
    except cap.CapError as exc:
        typer.secho(
            f"error: {file.name}: {exc.problems[0].text() if exc.problems else exc.message}",
            fg=typer.colors.RED,
            err=True,
        )
        for problem in exc.problems[1 : cap.MAX_PROBLEMS]:
            typer.echo(f"  {problem.text()}", err=True)
        raise typer.Exit(1) from None
    except CityopsError as exc:
        _fail(f"{file.name}: {exc.message}")
    finally:
        db.dispose()
    w = result.warning
    typer.echo(f"{result.outcome}: warning {w.id} ({w.status}, {w.level} {w.hazard}) {w.headline}")


@app.command("history")
def history(
    warning_id: int = typer.Argument(..., help="Warning id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A warning's lifecycle (each CAP message) and its response: notices, tasks, evacuations."""
    from cityops.warning import response

    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with db.sessions() as session:
            found = response.history(session, warning_id=warning_id, locale=settings.default_locale)
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(found.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    typer.echo(f"{found.warning_id}  {found.status}  {found.level}  {found.hazard}  {found.headline}")
    for at, kind, event, level, subject, status, count, detail in response.history_rows(found):
        line = "  ".join(str(v) for v in (kind, event, level, subject, status, count, detail) if v != "")
        typer.echo(f"{cap.cap_time(at)}  {line}")


stations_app = typer.Typer(help="Monitoring stations: their levels, and loading a stations file.",
                           no_args_is_help=True)
app.add_typer(stations_app, name="stations")


@stations_app.command("list")
def stations_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The stations with the level their newest readings reach and their warning."""
    from cityops.warning import stations

    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with db.sessions() as session:
            page = stations.list_stations(session, locale=settings.default_locale)
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(page.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    for s in page.items:
        warning = f"warning {s.warning_id} {s.warning_status} {s.warning_level}" if s.warning_id else ""
        typer.echo(f"{s.code:<22}  {s.kind:<9}  {s.level or '-':<6}  {s.name}  {warning}")
    typer.echo(f"{page.total} stations")


@stations_app.command("load")
def stations_load(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="A stations file."),
) -> None:
    """Make the stations those of a file (validated whole: an error names the line or the field)."""
    from cityops.warning import stations

    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            page = stations.load_text(session, text=file.read_text(encoding="utf-8"),
                                      source=file.name)
    except CityopsError as exc:
        _fail(exc.message if exc.message.startswith(file.name) else f"{file.name}: {exc.message}")
    finally:
        db.dispose()
    typer.echo(f"loaded {page.total} stations from {file.name}")


@stations_app.command("confirm")
def stations_confirm(code: str = typer.Argument(..., help="Station code.")) -> None:
    """Confirm the level a station proposed: its pending warning goes out, or its warning is raised."""
    from cityops.warning import monitor

    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            issuer = service.Issuer.from_settings(settings)
            warning = monitor.confirm(session, code=code, actor=None, issuer=issuer)
            typer.echo(f"warning {warning.id}: {warning.status}, {warning.level}")
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()


routes_app = typer.Typer(help="Drone patrol routes: a named line inside the city, assigned to a drone.",
                         no_args_is_help=True)
app.add_typer(routes_app, name="routes")


def _points(text: str) -> list[list[float]]:
    """'lon,lat lon,lat ...' as GeoJSON positions; the bad one named."""
    positions = []
    for i, pair in enumerate(text.split()):
        try:
            lon, lat = (float(v) for v in pair.split(","))
        except ValueError:
            _fail(f"--points: point {i} ({pair!r}) is not lon,lat")
        positions.append([lon, lat])
    return positions


@routes_app.command("add")
def routes_add(
    name: str = typer.Argument(..., help="The route's name, e.g. 淇河干流巡查."),
    drone: int = typer.Option(..., "--drone", help="The drone's device id."),
    points: str | None = typer.Option(None, help="The line as 'lon,lat lon,lat ...' (WGS84)."),
    line: Path | None = typer.Option(None, exists=True, dir_okay=False, readable=True,
                                     help="A GeoJSON file: a LineString, or a Feature holding one."),
    schedule: str = typer.Option("", help="When it is flown, e.g. 每日 08:00、14:00."),
    status: str = typer.Option("planned", help="planned, active, suspended or retired."),
) -> None:
    """Store a patrol route for a drone (at least 2 points, inside the city)."""
    from pydantic import ValidationError

    from cityops.core.templating import form_error
    from cityops.warning import drones

    if (points is None) == (line is None):
        _fail("give the line with --points or --line (one of them)")
    if line is not None:
        try:
            geometry = json.loads(line.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            _fail(f"{line.name}: not valid JSON ({exc})")
        if isinstance(geometry, dict) and geometry.get("type") == "Feature":
            geometry = geometry.get("geometry")
    else:
        geometry = {"type": "LineString", "coordinates": _points(points or "")}
    try:
        data = drones.RouteCreate.model_validate({
            "name": name, "drone_id": drone, "line": geometry if isinstance(geometry, dict) else {},
            "schedule": schedule, "status": status})
    except ValidationError as exc:
        _fail(form_error(exc))
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            route = drones.create_route(session, data=data, actor=None)
    except CityopsError as exc:
        _fail(f"{exc.field}: {exc.message}" if exc.field else exc.message)
    finally:
        db.dispose()
    typer.echo(f"route {route.id}: {route.name}, {route.length_km:.1f} km, drone {route.drone_name}, "
               f"{route.status}")


def _listed(read: Callable[[Session], list[Any]], as_json: bool) -> list[Any]:
    """What `read` finds in the database; printed as JSON (and nothing more to print) with --json."""
    db = Database(get_settings().database_url)
    try:
        with db.sessions() as session:
            found = read(session)
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps([item.model_dump(mode="json") for item in found], ensure_ascii=False, indent=2))
        raise typer.Exit(0)
    return found


@routes_app.command("list")
def routes_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The patrol routes."""
    from cityops.warning import drones

    found = _listed(lambda session: drones.list_routes(session), as_json)
    for r in found:
        typer.echo(f"{r.id:>5}  {r.status:<9}  drone {r.drone_id:<6}  {r.length_km:7.1f} km  {r.name}  "
                   f"{r.schedule}")
    typer.echo(f"{len(found)} routes")


scenes_app = typer.Typer(help="Satellite scenes and their flagged change areas.", no_args_is_help=True)
app.add_typer(scenes_app, name="scenes")


@scenes_app.command("import")
def scenes_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="A JSON list of scenes or a GeoJSON FeatureCollection."),
) -> None:
    """Register the scenes of a file with their change areas: all or none, each problem named by the
    feature's index."""
    from cityops.warning import satellite

    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            result = satellite.import_scenes(session, data=file.read_bytes(), actor=None)
    except CityopsError as exc:
        errors = exc.detail.get("errors", [])
        if not errors:
            _fail(f"{file.name}: {exc.message}")
        typer.secho(f"error: {file.name}: {len(errors)} problem(s), nothing registered", fg=typer.colors.RED,
                    err=True)
        for problem in errors:
            typer.echo(f"  {problem['message']}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    typer.echo(f"{result.created} scenes registered, {result.existing} already in the catalogue")


@scenes_app.command("list")
def scenes_list(as_json: bool = typer.Option(False, "--json", help="Print JSON."),
                limit: int = typer.Option(50, min=1, max=500)) -> None:
    """The scenes, newest first, with their change areas."""
    from cityops.warning import satellite

    found = _listed(lambda session: satellite.list_scenes(session, limit=limit), as_json)
    for s in found:
        changes = ", ".join(f"{c.kind} {c.confidence:.0%}" + (f" case {c.case_id}" if c.case_id else "")
                            for c in s.changes)
        typer.echo(f"{s.id:>5}  {cap.cap_time(s.acquired_at)}  {s.sensor:<10}  {s.cloud_cover:4.0f}%  "
                   f"{s.scene_id}  {changes}")
    typer.echo(f"{len(found)} scenes")
