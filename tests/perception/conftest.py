"""Fixtures of the perception tests: a broker of the test's own and the ingest worker."""

from tests.perception.mqtt_helpers import broker, worker

__all__ = ["broker", "worker"]
