"""`cityops demo`: the live simulator that keeps the demo city busy."""

from __future__ import annotations

import signal
from types import FrameType

import typer

from cityops.config import get_settings

app = typer.Typer(help="The live demo: new cases arriving while you look.", no_args_is_help=True)


@app.command("simulate")
def simulate(
    rate: float = typer.Option(0.2, "--rate", min=0.001, max=1000, help="Events per second."),
    duration: float | None = typer.Option(
        None, "--duration", min=0, help="Seconds to run; default until Ctrl-C or SIGTERM."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed, for a repeatable run."),
    devices: bool = typer.Option(True, "--devices/--no-devices",
                                 help="Also let the synthetic devices report, with fires and faults."),
    rain_every: int = typer.Option(1800, "--rain-every", min=0,
                                   help="Seconds between heavy-rain episodes at the monitoring stations "
                                        "(the first after as long; 0: none)."),
    rain_speed: float = typer.Option(360.0, "--rain-speed", min=1,
                                     help="Episode seconds per second (360: an episode hour in 10 s)."),
    mqtt: bool = typer.Option(False, "--mqtt/--no-mqtt",
                              help="The devices report over MQTT, each with its access token, through the "
                                   "broker at CITYOPS_MQTT_HOST:CITYOPS_MQTT_PORT (`cityops mqtt broker`, "
                                   "with `cityops mqtt ingest` storing) rather than into the store."),
) -> None:
    """Add citizen reports, grid workers' visits with issues and problems reported on the spot at a
    steady rate, through the same services as real input (labelled synthetic). Each makes one case."""
    import threading

    from cityops.core.db import Database
    from cityops.demo.device_mqtt import MqttDevices
    from cityops.demo.devices import DeviceSimulator
    from cityops.demo.simulator import Simulator

    db = Database(get_settings().database_url)
    sim = Simulator(db, rate=rate, duration=duration, seed=seed)
    settings = get_settings()
    over_mqtt = MqttDevices(settings.mqtt_host, settings.mqtt_port) if mqtt else None
    device_sim = DeviceSimulator(db, seed=seed, rain_every_s=rain_every, rain_speed=rain_speed,
                                 over_mqtt=over_mqtt)
    device_thread = threading.Thread(target=device_sim.run, kwargs={"duration": duration}, daemon=True)
    if devices:
        device_thread.start()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        sim.stop()
        device_sim.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    typer.echo(
        f"simulating {rate:g} events/s"
        + (f" for {duration:g} s" if duration is not None else " until stopped")
    )
    report = sim.run()
    device_sim.stop()
    if devices:
        device_thread.join(timeout=30)
    if over_mqtt is not None:
        over_mqtt.close()
    db.dispose()
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(report.by_kind.items())) or "none"
    typer.echo(f"simulated {report.events} events ({kinds}); {report.failures} failed")
    if devices:
        done = device_sim.report
        typer.echo(f"devices: {done.readings} readings, {done.fires} fires, {done.faults} faulty sensors, "
                   f"{device_sim.stations.episodes} heavy-rain episodes")
