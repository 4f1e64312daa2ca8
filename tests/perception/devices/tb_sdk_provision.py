"""A device provisioning itself over HTTP with ThingsBoard's own Python SDK (tb-mqtt-client's
TBHTTPDevice.provision), run in its separate venv (.venv-tb).

    python tb_sdk_provision.py BASE_URL DEVICE_NAME KEY SECRET

Provisions, then sends one telemetry point and one client attribute with the token it got; prints one
JSON line with the outcome ({"token": ...}, or {"failure": <ThingsBoard's answer>}) and exits 0 when
the SDK behaved as documented (a refusal is an outcome too)."""

import json
import sys
from datetime import UTC, datetime

from tb_device_http import TBHTTPDevice, TBProvisionFailure


def main() -> int:
    host, name, key, secret = sys.argv[1:5]
    try:
        device = TBHTTPDevice.provision(host, name, key, secret)
    except TBProvisionFailure as exc:
        print(json.dumps({"failure": exc.args[0]}))
        return 0
    # The SDK stamps a naive time as UTC: give it UTC.
    now = datetime.now(UTC).replace(tzinfo=None)
    device.send_telemetry({"smoke": 0.021, "battery": 88}, timestamp=now, queued=False)
    device.send_attributes({"firmware": "tb-sdk-provisioned"})
    print(json.dumps({"token": device.token, "name": device.name}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
