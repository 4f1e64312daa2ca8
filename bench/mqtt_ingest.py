"""Sustained MQTT ingestion through Mosquitto (issue 4: >= 15,000 messages/s stored, QoS 1, 3 values
a message, rules on, zero loss; ratio to the client library's ceiling >= 0.7; publish -> alarm ->
case p99 < 1 s), all on this machine, which also runs the broker and the load generator.

One run, side by side:
- ceiling: a subscriber on cityops' MQTT client (core/mqtt.py) that only counts and acknowledges;
- paho: the same with paho-mqtt, the usual Python client (why cityops has its own);
- stored: `cityops mqtt ingest` storing into SQLite with the rules on, while smoke detectors
  raise alarms now and then; every message must be in the database afterwards, exactly once.
The load: PUBLISHERS `mosquitto_pub -l -q 1` processes, each a device with its access token, each
sending its share of MESSAGES lines `{"ts", "values": {3 values}}` through cityops' broker plugin.

Run: .venv/bin/python bench/mqtt_ingest.py [--messages N] [--publishers N] [--alarms N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from _common import free_port, save
from sqlalchemy import func, select

from cityops.cases.models import Case
from cityops.config import Settings
from cityops.core.db import Database
from cityops.core.mqtt import MqttClient
from cityops.perception import service
from cityops.perception.models import Alarm, TelemetryKeyName, TelemetryPoint
from cityops.perception.schemas import DeviceCreate
from cityops.places import service as places_service
from cityops.places.models import Grid

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "bench" / "mqtt"
TARGET_PER_S = 15_000.0
TARGET_RATIO = 0.7
TARGET_P99_S = 1.0
CLI = [sys.executable, "-m", "cityops.cli"]


def register(url: str, profile: str, prefix: str, count: int, offset: int) -> list[tuple[int, str]]:
    db = Database(url)
    try:
        with db.session() as session:
            index = places_service.build_index(session)
            grids = session.execute(select(Grid.centroid_lon, Grid.centroid_lat)
                                    .order_by(Grid.code).offset(offset).limit(count)).all()
            made = []
            for i, (lon, lat) in enumerate(grids):
                device = service.create_device(session, data=DeviceCreate(
                    name=f"{prefix}-{i:04d}", profile=profile, lon=lon, lat=lat), index=index, actor=None,
                    synthetic=True)
                assert device.access_token is not None
                made.append((device.id, device.access_token))
        return made
    finally:
        db.dispose()


def write_lines(path: Path, count: int, base_ts: int) -> None:
    with open(path, "w") as out:
        for i in range(count):
            out.write(f'{{"ts":{base_ts + i},"values":{{"temperature":{20 + i % 7}.5,'
                      f'"humidity":{40 + i % 13},"ok":true}}}}\n')


def publishers(port: int, tokens: list[str], files: list[Path]) -> list[subprocess.Popen[bytes]]:
    started = []
    for token, path in zip(tokens, files, strict=True):
        with open(path, "rb") as lines:
            started.append(subprocess.Popen(
                ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-u", token, "-q", "1", "-l",
                 "-M", "200", "-t", "v1/devices/me/telemetry", "-i", f"bench-{token[:8]}"], stdin=lines))
    return started


def wait_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.wait(600) != 0:
            raise SystemExit(f"mosquitto_pub exited with {process.returncode}")


async def cityops_client_ceiling(port: int, settings: Settings, expect: int,
                                 start: Any) -> dict[str, Any]:
    client = await MqttClient.connect("127.0.0.1", port, client_id="bench-ceiling",
                                      username=settings.mqtt_user, password=settings.mqtt_secret)
    await client.subscribe([("$share/ceiling/v1/devices/+/+/telemetry", 1)])
    procs = start()
    began, received = time.monotonic(), 0
    while received < expect:
        batch = await client.receive(most=5000)
        client.acknowledge(batch)
        received += len(batch)
    seconds = time.monotonic() - began
    await client.close()
    wait_all(procs)
    return {"messages": received, "seconds": round(seconds, 2), "per_s": round(received / seconds, 1)}


def paho_ceiling(port: int, settings: Settings, expect: int, start: Any) -> dict[str, Any]:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    received, done, subscribed = [0], threading.Event(), threading.Event()

    def on_message(*_args: Any) -> None:
        received[0] += 1
        if received[0] >= expect:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho", protocol=paho.MQTTv311)
    client.username_pw_set(settings.mqtt_user, settings.mqtt_secret)
    client.on_message = on_message
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe("$share/paho/v1/devices/+/+/telemetry", qos=1)
    client.loop_start()
    subscribed.wait(10)
    procs = start()
    began = time.monotonic()
    done.wait(600)
    seconds = time.monotonic() - began
    client.loop_stop()
    client.disconnect()
    wait_all(procs)
    return {"messages": received[0], "seconds": round(seconds, 2), "per_s": round(received[0] / seconds, 1)}


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the broker did not start; see {WORK / 'broker.log'}") from None
            time.sleep(0.1)


def count_points(db: Database, keys: tuple[str, ...], since_ts: int) -> int:
    with db.sessions() as session:
        key_ids = select(TelemetryKeyName.id).where(TelemetryKeyName.key.in_(keys))
        return session.scalar(select(func.count()).select_from(TelemetryPoint).where(
            TelemetryPoint.key_id.in_(key_ids), TelemetryPoint.ts >= since_ts)) or 0


def newest_of(db: Database, device_ids: list[int]) -> dict[int, int]:
    with db.sessions() as session:
        rows = session.execute(select(TelemetryPoint.device_id, func.max(TelemetryPoint.ts))
                               .where(TelemetryPoint.device_id.in_(device_ids))
                               .group_by(TelemetryPoint.device_id))
        return {d: ts for d, ts in rows}


def alarm_latencies(db: Database, sent: dict[int, float]) -> list[float]:
    """Seconds from each smoke message's publish to the case its alarm opened."""
    with db.sessions() as session:
        rows = session.execute(select(Alarm.device_id, Case.created_at).join(Case, Case.id == Alarm.case_id)
                               .where(Alarm.device_id.in_(list(sent))))
        return [c.replace(tzinfo=UTC).timestamp() - sent[d] for d, c in rows]


def stored_run(env: dict[str, str], db: Database, port: int, pub: list[tuple[int, str]], files: list[Path],
               base_ts: int, expect_points: int, smoke: list[tuple[int, str]]) -> dict[str, Any]:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    with open(WORK / "worker.log", "wb") as log:
        worker = subprocess.Popen([*CLI, "mqtt", "ingest", "--worker", "bench"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        # Until the worker has subscribed, the broker has no one to keep messages for: a probe,
        # repeated (the same point) until stored.
        probe = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe")
        probe.username_pw_set(pub[0][1])
        probe.connect("127.0.0.1", port)
        probe.loop_start()
        probe_at = int(time.time() * 1000) - 86_400_000
        while count_points(db, ("probe",), 0) == 0:
            probe.publish("v1/devices/me/telemetry", f'{{"ts": {probe_at}, "values": {{"probe": 1}}}}',
                          qos=1).wait_for_publish(10)
            time.sleep(0.3)
        probe.loop_stop()
        probe.disconnect()

        sent: dict[int, float] = {}
        alarm_clients = []
        for _device_id, token in smoke:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-smoke-{token[:8]}")
            client.username_pw_set(token)
            client.connect("127.0.0.1", port)
            client.loop_start()
            alarm_clients.append(client)
        procs = publishers(port, [t for _, t in pub], files)
        began = time.monotonic()
        per = len(files[0].read_text().splitlines())
        last = {device_id: base_ts + per - 1 for device_id, _ in pub}
        smoke_left = list(zip(smoke, alarm_clients, strict=True))
        while True:
            if smoke_left:  # one smoke alarm every ~0.1 s while the load runs
                (device_id, _token), client = smoke_left.pop()
                sent[device_id] = time.time()
                client.publish("v1/devices/me/telemetry", '{"smoke": 0.31}', qos=1)
            newest = newest_of(db, list(last))
            if all(newest.get(d, 0) >= ts for d, ts in last.items()):
                break
            if time.monotonic() - began > 900:
                raise SystemExit("the stored run did not finish in 15 minutes")
            time.sleep(0.1)
        seconds = time.monotonic() - began
        wait_all(procs)
        deadline = time.monotonic() + 30
        latencies = alarm_latencies(db, sent)
        while len(latencies) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.2)
            latencies = alarm_latencies(db, sent)
        for client in alarm_clients:
            client.loop_stop()
            client.disconnect()
    finally:
        worker.terminate()
        worker.wait(30)
    points = count_points(db, ("temperature", "humidity", "ok"), base_ts)
    messages = expect_points // 3
    latencies.sort()
    return {"messages": messages, "seconds": round(seconds, 2), "per_s": round(messages / seconds, 1),
            "points_expected": expect_points, "points_stored": points, "zero_loss": points == expect_points,
            "alarms_sent": len(sent), "cases_opened": len(latencies),
            "publish_to_case_s": {
                "p50": round(statistics.median(latencies), 3) if latencies else None,
                "p99": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 3) if latencies else None,
                "max": round(latencies[-1], 3) if latencies else None}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=600_000)
    parser.add_argument("--publishers", type=int, default=8)
    parser.add_argument("--alarms", type=int, default=60)
    parser.add_argument("--paho-messages", type=int, default=150_000)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    url = f"sqlite:///{WORK / 'cityops.db'}"
    port = free_port()
    env = {**os.environ, "CITYOPS_DATABASE_URL": url, "CITYOPS_RUN_SCHEDULER": "false",
           "CITYOPS_MQTT_PORT": str(port), "CITYOPS_MQTT_BROKER_DIR": str(WORK / "broker"),
           "CITYOPS_MQTT_CREDENTIALS_FILE": str(WORK / "broker" / "credentials"),
           "CITYOPS_MQTT_PLUGIN": str(ROOT / ".build" / "mosquitto" / "cityops_auth.so")}
    for step in (["db", "upgrade"], ["seed", "--scale", "small"]):
        subprocess.run([*CLI, *step], env=env, check=True, capture_output=True)
    pub = register(url, "temperature", "压测温度", args.publishers, 0)
    smoke = register(url, "smoke_detector", "压测烟感", args.alarms, args.publishers)
    settings = Settings()  # the platform account's name and password, as the broker has them
    per = args.messages // args.publishers
    base_a, base_b = int(time.time() * 1000) - 10 * 86_400_000, int(time.time() * 1000) - 5 * 86_400_000
    files_a = [WORK / f"a{i}.txt" for i in range(args.publishers)]
    files_b = [WORK / f"b{i}.txt" for i in range(args.publishers)]
    for path in files_a:
        write_lines(path, per, base_a)
    for path in files_b:
        write_lines(path, per, base_b)
    paho_files = [WORK / f"p{i}.txt" for i in range(args.publishers)]
    for path in paho_files:
        write_lines(path, args.paho_messages // args.publishers, base_a)

    with open(WORK / "broker.log", "wb") as log:
        broker = subprocess.Popen([*CLI, "mqtt", "broker", "--port", str(port), "--bind", "127.0.0.1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=log)
    db = Database(url)
    try:
        wait_for_port(port, broker)
        tokens = [t for _, t in pub]
        ceiling = asyncio.run(cityops_client_ceiling(port, settings, per * args.publishers,
                                                     lambda: publishers(port, tokens, files_a)))
        print(f"ceiling (cityops client, count only): {ceiling['per_s']:,.0f}/s", file=sys.stderr)
        paho = paho_ceiling(port, settings, (args.paho_messages // args.publishers) * args.publishers,
                            lambda: publishers(port, tokens, paho_files))
        print(f"paho-mqtt (count only): {paho['per_s']:,.0f}/s", file=sys.stderr)
        stored = stored_run(env, db, port, pub, files_b, base_b, per * args.publishers * 3, smoke)
        print(f"stored: {stored['per_s']:,.0f}/s, zero loss {stored['zero_loss']}, "
              f"publish->case p99 {stored['publish_to_case_s']['p99']} s", file=sys.stderr)
    finally:
        broker.terminate()
        broker.wait(30)
        db.dispose()
    ratio = round(stored["per_s"] / ceiling["per_s"], 3)
    save("mqtt_ingest", {
        "what": f"{args.publishers} mosquitto_pub -l -q 1 devices through Mosquitto with cityops' plugin, "
                f"{per * args.publishers:,} messages of 3 values; ceiling and paho count only; stored = "
                "`cityops mqtt ingest` into SQLite with rules on while smoke detectors raise alarms; "
                "broker, load generator and worker on the same 2-core machine",
        "target": {"stored_per_s": TARGET_PER_S, "ratio": TARGET_RATIO,
                   "publish_to_case_p99_s": TARGET_P99_S},
        "ceiling_cityops_client": ceiling, "paho_count_only": paho, "stored": stored,
        "ratio_to_ceiling": ratio,
        "meets_target": stored["per_s"] >= TARGET_PER_S and ratio >= TARGET_RATIO and stored["zero_loss"]
        and stored["cases_opened"] == stored["alarms_sent"]
        and (stored["publish_to_case_s"]["p99"] or 99.0) < TARGET_P99_S,
    })


if __name__ == "__main__":
    main()
