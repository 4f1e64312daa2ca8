"""Events of the warning package, written to the outbox in the transaction that made the change.

Past-tense frozen dataclasses; the response (targeting, notifications, emergency plans) subscribes to
them. `message_id` names the CAP message that went out (or came in) with the change."""

from __future__ import annotations

from dataclasses import dataclass

from cityops.core.events import Event, event_type


@event_type
@dataclass(frozen=True)
class WarningIssued(Event):
    topic = "warning.issued"
    warning_id: int
    identifier: str
    hazard: str
    level: str
    source: str
    message_id: int


@event_type
@dataclass(frozen=True)
class WarningUpdated(Event):
    topic = "warning.updated"
    warning_id: int
    identifier: str
    hazard: str
    level: str
    previous_level: str
    expires: str  # ISO 8601
    action: str  # update or extend
    message_id: int


@event_type
@dataclass(frozen=True)
class WarningCancelled(Event):
    topic = "warning.cancelled"
    warning_id: int
    identifier: str
    reason: str
    message_id: int | None  # None: never public (a draft discarded, a pending one rejected)


@event_type
@dataclass(frozen=True)
class WarningExpired(Event):
    topic = "warning.expired"
    warning_id: int
    identifier: str


@event_type
@dataclass(frozen=True)
class StationLevelProposed(Event):
    """A station's readings reached a level an operator confirms before it goes out: a new warning
    waiting as pending, or an escalation of the station's warning in force (`warning_id` either way)."""

    topic = "warning.station_level_proposed"
    station_code: str
    hazard: str
    level: str
    warning_id: int
