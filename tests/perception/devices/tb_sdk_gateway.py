"""A gateway written against ThingsBoard's own Python SDK (tb-mqtt-client, TBGatewayMqttClient),
unchanged, run in its separate venv (.venv-tb, see tb_sdk_device.py).

    python tb_sdk_gateway.py HOST PORT TOKEN TS DEVICE PROFILE

Connects DEVICE (of device profile PROFILE) behind the gateway, sends its telemetry in both forms and
a client attribute, and reads the attribute back. Then prints "ready", answers each server-side RPC
for the device with {"method": ..., "params": ...}, and after one command and one shared attribute
update reads the shared attribute back, disconnects the device, and exits 0, printing one JSON line
with what it got."""

import json
import sys
import threading
import time

from tb_gateway_mqtt import TBGatewayMqttClient


def ask(request, device, keys):
    """The platform's answer to an attribute request (None when none came in 10 s)."""
    answer = {}
    answered = threading.Event()

    def on_answer(content, *_):
        answer.update(content or {})
        answered.set()

    request(device, keys, on_answer)
    return answer if answered.wait(10) else None


def main() -> int:
    host, port, token, ts = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    device, profile = sys.argv[5], sys.argv[6]
    gateway = TBGatewayMqttClient(host, port=port, username=token)
    commands: list = []
    updates: list = []
    done = threading.Event()

    def on_command(client, content):
        commands.append(content)
        data = content["data"]
        client.gw_send_rpc_reply(
            content["device"], data["id"], {"method": data["method"], "params": data["params"]}
        )
        if updates:
            done.set()

    def on_update(content):
        updates.append(content)
        if commands:
            done.set()

    gateway.gw_set_server_side_rpc_request_handler(on_command)
    gateway.connect(timeout=10)
    deadline = time.time() + 15
    while not gateway.is_connected() and time.time() < deadline:
        time.sleep(0.05)
    if not gateway.is_connected():
        print(json.dumps({"error": "not connected"}), flush=True)
        return 1
    results = [
        gateway.gw_connect_device(device, profile),
        gateway.gw_send_telemetry(device, {"ts": ts, "values": {"smoke": 0.021, "battery": 88}}),
        gateway.gw_send_telemetry(device, {"smoke": 0.022}),
        gateway.gw_send_attributes(device, {"firmware": "gw-sdk-1.0"}),
    ]
    codes = [r.get() for r in results]  # waits for the broker's PUBACK
    client_attributes = None
    for _ in range(40):  # until the platform has stored what the gateway just sent
        client_attributes = ask(gateway.gw_request_client_attributes, device, ["firmware"])
        if client_attributes and client_attributes.get("values", {}).get("firmware"):
            break
        time.sleep(0.25)
    gateway.gw_subscribe_to_all_device_attributes(device, on_update)
    print("ready", flush=True)
    ok = done.wait(60)
    shared = ask(gateway.gw_request_shared_attributes, device, ["interval"])
    gateway.gw_disconnect_device(device).get()
    gateway.disconnect()
    print(
        json.dumps(
            {
                "publish_codes": codes,
                "client_attributes": client_attributes,
                "commands": commands,
                "updates": updates,
                "shared_attributes": shared,
            }
        )
    )
    return 0 if ok and all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
