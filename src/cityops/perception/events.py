"""Subscribers of the perception package: an alarm opens a case at the department of its rule's
category, or joins the case its device's previous alarm of the type opened while that is still being
worked (a flapping detector makes one case, not many); a cleared alarm is noted on its case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session

from cityops.cases import service as case_service
from cityops.cases.schemas import CaseCreate
from cityops.core.events import Envelope, EventBus
from cityops.perception import repository as repo
from cityops.perception import rules
from cityops.perception.models import Alarm, Device
from cityops.perception.service import AlarmCleared, AlarmRaised
from cityops.places import service as places_service
from cityops.places.index import PlaceIndex

ALARM_CASES = "perception.alarm_cases"
ALARM_CLEARED = "perception.alarm_cleared_on_case"


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, UTC).isoformat(timespec="seconds")


def on_alarm_raised(session: Session, envelope: Envelope, index: Callable[[Session], PlaceIndex]) -> None:
    alarm = session.get(Alarm, int(envelope.payload["alarm_id"]))
    if alarm is None or alarm.case_id is not None:
        return
    registry = rules.in_force(session)
    rule = registry.rule(alarm.rule_code)
    device = session.get(Device, alarm.device_id)
    if rule is None or rule.case_category is None or device is None:
        return
    detail: dict[str, Any] = {"alarm_id": alarm.id, "severity": alarm.severity, "value": alarm.value,
                              "at": _when(alarm.start_ts)}
    # Alarms of one device whose rules hand cases to the same category share the case (smoke, then
    # the fire it confirms; a detector flapping).
    sharing = {r.alarm_type for r in registry.all() if r.case_category == rule.case_category}
    previous = repo.last_case_of(session, device.id, sharing, before_alarm=alarm.id)
    reading = rule.reading(alarm.value or 0)
    comment = f"{rule.name_zh}（{alarm.severity}）: {reading}"
    if previous is not None and case_service.note_if_open(session, case_id=previous, action="alarm",
                                                         comment=comment, data=detail):
        alarm.case_id = previous
        return
    case = case_service.report_case(session, index=index(session), data=CaseCreate(
        type_code="sensor_alarm", category=rule.case_category, title=f"{rule.name_zh}：{device.name}",
        description=f"{rule.name_zh}（{alarm.severity}）：{reading}，{_when(alarm.start_ts)}",
        lon=device.lon, lat=device.lat, source="sensor",
        fields={"device_id": device.id, "alarm_type": alarm.type, "severity": alarm.severity}))
    alarm.case_id = case.id


def on_alarm_cleared(session: Session, envelope: Envelope) -> None:
    case_id = envelope.payload.get("case_id")
    alarm = session.get(Alarm, int(envelope.payload["alarm_id"]))
    case_id = alarm.case_id if alarm is not None and alarm.case_id is not None else case_id
    if case_id is None or alarm is None:
        return
    case_service.note_if_open(session, case_id=int(case_id), action="alarm_cleared",
                              data={"alarm_id": alarm.id, "at": _when(alarm.clear_ts or alarm.end_ts)})


def subscribe(bus: EventBus, index: Callable[[Session], PlaceIndex]) -> None:
    """Register the subscribers once (a second call is a no-op)."""
    handlers = {AlarmRaised.topic: (ALARM_CASES, lambda s, e: on_alarm_raised(s, e, index)),
                AlarmCleared.topic: (ALARM_CLEARED, on_alarm_cleared)}
    for topic, (name, handler) in handlers.items():
        if not any(existing == name for existing, _ in bus.subscribers.get(topic, [])):
            bus.subscribe(topic, name, handler)


def install(app: FastAPI) -> None:
    subscribe(app.state.bus, places_service.cache_for(app.state).index)
