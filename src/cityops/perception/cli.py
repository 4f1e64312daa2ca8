"""`cityops devices ...`: list, register and import devices; rotate and revoke their tokens; enable their
self-provisioning."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NoReturn

import typer
from pydantic import ValidationError

from cityops.config import get_settings
from cityops.core.db import Database
from cityops.core.errors import CityopsError
from cityops.perception import mqtt, service
from cityops.perception.schemas import DeviceCreate, ProvisioningRead, ProvisioningWrite
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


# --- provisioning -------------------------------------------------------------------------------

provisioning_app = typer.Typer(help="Self-provisioning of devices with a profile's key and secret "
                                    "(ThingsBoard's POST /api/v1/provision).", no_args_is_help=True)
app.add_typer(provisioning_app, name="provisioning")


def _configure(profile: str, **changes: object) -> ProvisioningRead:
    """Change a profile's provisioning as the administrator; the error, if any, ends the command."""
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        with db.session() as session:
            if not changes.get("division_code"):  # rotate and disable: only what was enabled
                service.get_provisioning(session, viewer=None, profile=profile)
            return service.configure_provisioning(
                session, actor=None, profile=profile, data=ProvisioningWrite.model_validate(changes),
                index=places_service.build_index(session), settings=settings)
    except CityopsError as exc:
        _fail(f"{exc.field + ': ' if exc.field else ''}{exc.message}")
    except ValidationError as exc:
        error = exc.errors()[0]
        _fail(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}")
    finally:
        db.dispose()


def _show(found: ProvisioningRead) -> None:
    state = "enabled" if found.enabled else "disabled"
    typer.echo(f"provisioning of {found.profile}: {state}; devices are placed in {found.division_code}, "
               f"owned by dept-{found.department}; {found.provisioned} of at most {found.max_devices} "
               "provisioned")
    typer.echo(f"provision key:    {found.provision_key}")
    if found.secret is not None:
        typer.echo(f"provision secret: {found.secret}")
        typer.secho("The secret is shown this once and cannot be read again; `cityops devices provisioning "
                    f"rotate {found.profile}` gives a new one.", err=True)
    else:
        typer.echo("provision secret: unchanged (never shown again; rotate gives a new one)")


@provisioning_app.command()
def enable(profile: str = typer.Argument(..., help="Device profile, e.g. smoke_detector."),
           division: str = typer.Option(..., "--division", help="Division or grid code: new devices are "
                                        "placed at its first grid until a manager gives their position."),
           limit: int | None = typer.Option(None, "--limit", min=1, max=100_000,
                                            help="At most this many provisioned devices (first time: "
                                                 f"{service.DEFAULT_MAX_PROVISIONED})."),
           department: str | None = typer.Option(None, help="Owning department's slug (org unit "
                                                 "dept-<slug>); default the profile's.")) -> None:
    """Enable provisioning for a profile; the first time, prints its new key and secret."""
    _show(_configure(profile, enabled=True, division_code=division, max_devices=limit, department=department))


@provisioning_app.command("rotate")
def rotate_secret(profile: str = typer.Argument(..., help="Device profile.")) -> None:
    """Give the profile a new provision secret (printed this once); the old one is refused from now on."""
    _show(_configure(profile, rotate_secret=True))


@provisioning_app.command()
def disable(profile: str = typer.Argument(..., help="Device profile.")) -> None:
    """Turn provisioning off for a profile: every request with its key answers NOT_FOUND."""
    _show(_configure(profile, enabled=False))


@provisioning_app.command("list")
def list_provisioning(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Provisioning of every profile it was enabled for: key, placing, counts; never a secret."""
    db = Database(get_settings().database_url)
    try:
        with db.sessions() as session:
            found = service.list_provisioning(session, viewer=None)
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps([f.model_dump(mode="json", exclude={"secret"}) for f in found],
                              ensure_ascii=False, indent=2))
        return
    for f in found:
        typer.echo(f"{f.profile:<18}  {'enabled' if f.enabled else 'disabled':<8}  {f.provision_key}  "
                   f"{f.division_code:<15}  dept-{f.department:<12}  {f.provisioned}/{f.max_devices}  "
                   f"{f.failed_attempts} wrong secrets")
    typer.echo(f"{len(found)} profiles")
