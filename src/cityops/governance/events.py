"""Subscribers of the governance package on the event bus."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.orm import Session

from cityops.cases.service import CaseTransitioned
from cityops.core.events import Envelope, EventBus
from cityops.governance import service

POLICE_RESULT = "governance.police_result"


def on_case_transitioned(session: Session, envelope: Envelope) -> None:
    """A transferred case that closes pushes its result to the police system."""
    if envelope.payload.get("to_status") != "closed":
        return
    service.push_result(session, case_id=int(envelope.payload["case_id"]), event_id=envelope.event_id)


def subscribe(bus: EventBus) -> None:
    """Register the subscribers once (a second call is a no-op)."""
    topic = CaseTransitioned.topic
    if not any(name == POLICE_RESULT for name, _ in bus.subscribers.get(topic, [])):
        bus.subscribe(topic, POLICE_RESULT, on_case_transitioned)


def install(app: FastAPI) -> None:
    subscribe(app.state.bus)
