"""Imports every model module so Base.metadata is complete (for Alembic and for create_all in tests)."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "cityops.core.events",
    "cityops.core.auth.models",
    "cityops.places.models",
    "cityops.cases.models",
    "cityops.core.webhooks",
    "cityops.core.scheduler",
    "cityops.governance.models",
)


def load() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
