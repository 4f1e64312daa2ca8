"""A device written against ThingsBoard's own Python SDK (tb-mqtt-client), run in its separate venv
(.venv-tb: the SDK ships its own fork of paho under the same package name as paho-mqtt).

    python tb_sdk_device.py HOST PORT TOKEN TS

Sends telemetry in ThingsBoard's forms and a client attribute, then reads the attribute back; prints
one JSON line with what the platform answered, and exits 0 only if everything went through."""

import json
import sys
import threading
import time

from tb_device_mqtt import TBDeviceMqttClient


def main() -> int:
    host, port, token, ts = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    client = TBDeviceMqttClient(host, port=port, username=token)
    client.connect(timeout=10)
    deadline = time.time() + 15
    while not client.is_connected() and time.time() < deadline:
        time.sleep(0.05)
    if not client.is_connected():
        print(json.dumps({"error": "not connected"}))
        return 1
    results = [
        client.send_telemetry({"smoke": 0.031, "battery": 77}),
        client.send_telemetry({"ts": ts, "values": {"smoke": 0.032}}),
        client.send_telemetry([{"ts": ts + 1, "values": {"smoke": 0.033}},
                               {"ts": ts + 2, "values": {"smoke": 0.034}}]),
        client.send_attributes({"firmware": "tb-sdk-1.0"}),
    ]
    codes = [r.get() for r in results]  # waits for the broker's PUBACK
    answer: dict = {}
    answered = threading.Event()

    def on_attributes(response, *_):
        answer.update(response or {})
        answered.set()

    for _ in range(40):  # until the platform has stored the attribute this device just sent
        answered.clear()
        client.request_attributes(client_keys=["firmware"], callback=on_attributes)
        answered.wait(5)
        if answer.get("client", {}).get("firmware"):
            break
        time.sleep(0.25)
    client.disconnect()
    print(json.dumps({"publish_codes": codes, "attributes": answer}))
    return 0 if answer.get("client", {}).get("firmware") and all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
