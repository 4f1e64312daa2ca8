"""Imports every model module so Base.metadata is complete (for Alembic and for create_all in tests)."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "cityops.core.events",
    "cityops.core.auth.models",
    "cityops.places.models",
    "cityops.cases.models",
    "cityops.cases.search",  # the full-text index created with the cases table
    "cityops.core.webhooks",
    "cityops.core.scheduler",
    "cityops.core.notifications",
    "cityops.core.exports",
    "cityops.governance.models",
    "cityops.governance.disputes.models",
    "cityops.governance.centres.models",
    "cityops.governance.assessment.models",
    "cityops.governance.meetings.models",
    "cityops.governance.risks.models",
    "cityops.governance.visits.models",
    "cityops.perception.models",
    "cityops.warning.models",
    "cityops.credit.models",
    "cityops.livability.models",
)


def load() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
