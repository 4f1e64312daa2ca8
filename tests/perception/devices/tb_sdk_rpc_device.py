"""A device written against ThingsBoard's own Python SDK (tb-mqtt-client) that takes commands, run in
its separate venv (.venv-tb, see tb_sdk_device.py).

    python tb_sdk_rpc_device.py HOST PORT TOKEN

Prints "ready" once its subscriptions are in place, answers each server-side RPC with
{"method": ..., "params": ...}, and exits 0 after one command and one shared attribute update,
printing one JSON line with what it got."""

import json
import sys
import threading
import time

from tb_device_mqtt import TBDeviceMqttClient


def main() -> int:
    host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    client = TBDeviceMqttClient(host, port=port, username=token)
    commands: list = []
    attributes: dict = {}
    done = threading.Event()

    def on_command(request_id, request):
        commands.append(request)
        client.send_rpc_reply(request_id, {"method": request.get("method"), "params": request.get("params")})
        if attributes:
            done.set()

    def on_attributes(update, *_):
        attributes.update(update or {})
        if commands:
            done.set()

    client.set_server_side_rpc_request_handler(on_command)
    client.subscribe_to_all_attributes(on_attributes)
    client.connect(timeout=10)
    deadline = time.time() + 15
    while not client.is_connected() and time.time() < deadline:
        time.sleep(0.05)
    if not client.is_connected():
        print(json.dumps({"error": "not connected"}), flush=True)
        return 1
    # A round trip through the platform: the subscriptions the SDK sent on connecting were taken
    # before it (the broker handles one connection's packets in order).
    answered = threading.Event()
    client.request_attributes(shared_keys=["interval"], callback=lambda *_: answered.set())
    if not answered.wait(20):
        print(json.dumps({"error": "no attribute answer"}), flush=True)
        return 1
    print("ready", flush=True)
    ok = done.wait(60)
    client.disconnect()
    print(json.dumps({"commands": commands, "attributes": attributes}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
