"""`cityops devices ...`: list, register and import devices; rotate and revoke their tokens."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NoReturn

import typer

from cityops.config import get_settings
from cityops.core.db import Database
from cityops.core.errors import CityopsError
from cityops.perception import mqtt, service
from cityops.perception.schemas import DeviceCreate
from cityops.places import service as places_service

app = typer.Typer(help="Devices: sensors and cameras, their access tokens and bulk import.",
                  no_args_is_help=True)
mqtt_app = typer.Typer(help="Devices over MQTT: the Mosquitto broker with cityops' plugin, and the "
                            "ingest workers.", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command("list")
def list_(profile: str | None = typer.Option(None, help="Only this profile, e.g. smoke_detector."),
          status: str | None = typer.Option(None, help="online, offline or inactive."),
          limit: int = typer.Option(100, min=1, max=100_000),
          as_json: bool = typer.Option(False, "--json", help="Print JSON (with access tokens).")) -> None:
    """Devices with their status. The command line is the administrator's: tokens are shown."""
    db = Database(get_settings().database_url)
    try:
        with db.sessions() as session:
            page = service.list_devices(session, viewer=None, profile=profile, status=status, limit=limit)
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(page.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    for d in page.items:
        typer.echo(f"{d.id:>6}  {d.status:<8}  {d.profile:<16}  {d.division_code:<15}  {d.name}  "
                   f"{d.access_token or '(revoked)'}")
    typer.echo(f"{len(page.items)} of {page.total}")


@app.command()
def create(name: str = typer.Argument(..., help="A name unique in the city."),
           profile: str = typer.Option(..., help="Device profile, e.g. smoke_detector."),
           lon: float = typer.Option(..., help="WGS84 longitude."),
           lat: float = typer.Option(..., help="WGS84 latitude.")) -> None:
    """Register a device; prints its access token."""
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            index = places_service.build_index(session)
            device = service.create_device(session, data=DeviceCreate(name=name, profile=profile, lon=lon,
                                                                       lat=lat), index=index, actor=None)
            typer.echo(f"device {device.id} in {device.division_code}; access token {device.access_token}")
    except CityopsError as exc:
        _fail(f"{exc.field + ': ' if exc.field else ''}{exc.message}")
    finally:
        db.dispose()


@app.command("import")
def import_(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                        help="CSV or Excel with columns name, profile, lon, lat.")) -> None:
    """Register every device of a file; rows that cannot be registered are listed with their line."""
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            index = places_service.build_index(session)
            report = service.import_devices(session, data=file.read_bytes(), filename=file.name, index=index,
                                            actor=None)
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()
    for line, field, reason in report.rejected:
        typer.secho(f"line {line}: {field + ': ' if field else ''}{reason}", err=True)
    typer.echo(f"registered {report.created}, rejected {len(report.rejected)}")
    if report.rejected:
        raise typer.Exit(1)


def _token_change(device_id: int, *, revoke: bool) -> None:
    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            change = service.revoke_token if revoke else service.rotate_token
            device = change(session, actor=None, device_id=device_id)
            typer.echo(f"device {device.id}: {device.access_token or 'token revoked'}")
    except CityopsError as exc:
        _fail(exc.message)
    finally:
        db.dispose()


@app.command()
def rotate(device_id: int = typer.Argument(..., help="Device id.")) -> None:
    """Give a device a new access token; the old one is refused from now on."""
    _token_change(device_id, revoke=False)


@app.command()
def revoke(device_id: int = typer.Argument(..., help="Device id.")) -> None:
    """Revoke a device's access token."""
    _token_change(device_id, revoke=True)


@app.command()
def retention() -> None:
    """Compute the rollups of every hour that received points and delete the raw points older than
    CITYOPS_TELEMETRY_RAW_DAYS (the server's scheduler does this every ten minutes)."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        report = service.roll_up_and_expire(db, keep_days=settings.telemetry_raw_days)
    finally:
        db.dispose()
    typer.echo(f"rolled up {report.hours_rolled_up} device-key hours; "
               f"deleted {report.raw_deleted} raw points "
               f"older than {settings.telemetry_raw_days} days")


@mqtt_app.command()
def credentials() -> None:
    """Write the broker's credentials file now (the ingest workers keep it up to date)."""
    settings = get_settings()
    if settings.mqtt_credentials_file is None:
        _fail("CITYOPS_MQTT_CREDENTIALS_FILE is empty")
    db = Database(settings.database_url)
    try:
        count = mqtt.write_credentials(db, settings.mqtt_credentials_file)
    finally:
        db.dispose()
    typer.echo(f"{count} device tokens written to {settings.mqtt_credentials_file}")


@mqtt_app.command()
def broker(port: int | None = typer.Option(None, help="Port to listen on (CITYOPS_MQTT_PORT)."),
           bind: str = typer.Option("0.0.0.0", help="Address to listen on.")) -> None:
    """Run Mosquitto with cityops' configuration and device-credentials plugin (the configuration and
    the credentials are written to CITYOPS_MQTT_BROKER_DIR first)."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        command = mqtt.prepare_broker(settings, db, port=port, bind=bind)
    except mqtt.BrokerUnavailable as exc:
        _fail(str(exc))
    finally:
        db.dispose()
    typer.echo(f"starting {' '.join(command)}")
    os.execv(command[0], command)
