"""Queries of the warning package."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from cityops.core.auth.models import User
from cityops.core.db import insert_or_ignore, utcnow
from cityops.warning.models import (
    HazardWarning,
    StationState,
    WarningEvacuation,
    WarningMessage,
    WarningNotice,
    WarningStation,
    WarningTarget,
    WarningTask,
)


def get(session: Session, warning_id: int) -> HazardWarning | None:
    return session.get(HazardWarning, warning_id)


def message(session: Session, sender: str, identifier: str) -> WarningMessage | None:
    return session.scalar(
        select(WarningMessage).where(WarningMessage.sender == sender, WarningMessage.identifier == identifier)
    )


def messages_of(session: Session, warning_ids: Sequence[int]) -> dict[int, list[WarningMessage]]:
    """Each warning's messages, oldest first."""
    found: dict[int, list[WarningMessage]] = {i: [] for i in warning_ids}
    if not warning_ids:
        return found
    for row in session.scalars(
        select(WarningMessage)
        .where(WarningMessage.warning_id.in_(warning_ids))
        .order_by(WarningMessage.warning_id, WarningMessage.id)
    ):
        found[row.warning_id].append(row)
    return found


def latest_message(session: Session, warning_id: int) -> WarningMessage | None:
    return session.scalar(
        select(WarningMessage)
        .where(WarningMessage.warning_id == warning_id)
        .order_by(WarningMessage.id.desc())
        .limit(1)
    )


def warning_referenced(session: Session, references: Iterable[tuple[str, str]]) -> HazardWarning | None:
    """The warning one of the (sender, identifier) pairs names a message of (the newest such)."""
    pairs = list(references)
    if not pairs:
        return None
    return session.scalar(
        select(HazardWarning)
        .join(WarningMessage, WarningMessage.warning_id == HazardWarning.id)
        .where(tuple_(WarningMessage.sender, WarningMessage.identifier).in_(pairs))
        .order_by(WarningMessage.id.desc())
        .limit(1)
    )


def list_warnings(
    session: Session,
    *,
    statuses: Sequence[str] | None,
    hazard: str | None,
    source: str | None,
    level: str | None,
    limit: int,
    offset: int,
) -> tuple[list[HazardWarning], int]:
    """Newest first (by when they were last changed)."""
    query = select(HazardWarning)
    if statuses:
        query = query.where(HazardWarning.status.in_(statuses))
    if hazard:
        query = query.where(HazardWarning.hazard == hazard)
    if source:
        query = query.where(HazardWarning.source == source)
    if level:
        query = query.where(HazardWarning.level == level)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(HazardWarning.updated_at.desc(), HazardWarning.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(items), total


def due_to_expire(session: Session, now: datetime, *, limit: int = 500) -> list[HazardWarning]:
    return list(
        session.scalars(
            select(HazardWarning)
            .where(HazardWarning.status == "issued", HazardWarning.expires <= now)
            .order_by(HazardWarning.expires)
            .limit(limit)
        )
    )


# --- the response ----------------------------------------------------------------------------------

CHUNK = 500  # codes or rows per statement: well inside every database's limit on bound parameters


def targets_of(session: Session, warning_id: int) -> list[WarningTarget]:
    return list(
        session.scalars(
            select(WarningTarget)
            .where(WarningTarget.warning_id == warning_id)
            .order_by(WarningTarget.kind, WarningTarget.code)
        )
    )


def responders(session: Session, *, grid_codes: Sequence[str], village_codes: Sequence[str]) -> list[Any]:
    """(user id, role, scope code) of the active grid workers of these grids and the active operators of
    these villages' centres (a village centre's operator is the village's responsible person here)."""
    found: list[Any] = []
    for role, codes in (("grid_worker", list(grid_codes)), ("centre_operator", list(village_codes))):
        for start in range(0, len(codes), CHUNK):
            found += session.execute(
                select(User.id, User.role, User.scope_code)
                .where(
                    User.is_active.is_(True),
                    User.role == role,
                    User.scope_code.in_(codes[start : start + CHUNK]),
                )
                .order_by(User.id)
            ).all()
    return found


def add_notices(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert the notices not already there (one per message and person); the users of those inserted."""
    if not rows:
        return []
    statement = (
        insert_or_ignore(session, WarningNotice)
        .on_conflict_do_nothing(index_elements=["message_id", "user_id"])
        .returning(WarningNotice.user_id)
    )
    return [int(u) for u in session.execute(statement, list(rows)).scalars()]


def notice_counts(session: Session, warning_id: int) -> list[Any]:
    """(message id, role, people, first notice) per message of the warning that notified anyone."""
    return list(
        session.execute(
            select(
                WarningNotice.message_id,
                WarningNotice.role,
                func.count(WarningNotice.id),
                func.min(WarningNotice.created_at),
            )
            .where(WarningNotice.warning_id == warning_id)
            .group_by(WarningNotice.message_id, WarningNotice.role)
            .order_by(WarningNotice.message_id, WarningNotice.role)
        ).all()
    )


def people_notified(session: Session, warning_id: int) -> int:
    return (
        session.scalar(
            select(func.count(func.distinct(WarningNotice.user_id))).where(
                WarningNotice.warning_id == warning_id
            )
        )
        or 0
    )


def tasks_of(
    session: Session, warning_id: int, *, target_codes: Sequence[str] | None = None
) -> list[WarningTask]:
    query = select(WarningTask).where(WarningTask.warning_id == warning_id)
    if target_codes is not None:
        query = query.where(WarningTask.target_code.in_(list(target_codes)))
    return list(session.scalars(query.order_by(WarningTask.id)))


def evacuations_of(session: Session, warning_id: int) -> list[WarningEvacuation]:
    """Every report of the warning, oldest first."""
    return list(
        session.scalars(
            select(WarningEvacuation)
            .where(WarningEvacuation.warning_id == warning_id)
            .order_by(WarningEvacuation.id)
        )
    )


# --- monitoring stations ---------------------------------------------------------------------------


def all_stations(session: Session) -> list[WarningStation]:
    return list(session.scalars(select(WarningStation).order_by(WarningStation.code)))


def station_by_code(session: Session, code: str) -> WarningStation | None:
    return session.scalar(select(WarningStation).where(WarningStation.code == code))


def stations_of_devices(session: Session, device_ids: Iterable[int]) -> list[WarningStation]:
    """The stations of these devices, in id order (the order their states are locked in)."""
    ids = sorted(set(device_ids))
    if not ids:
        return []
    return list(session.scalars(select(WarningStation).where(WarningStation.device_id.in_(ids))
                                .order_by(WarningStation.id)))


def station_states(session: Session, station_ids: Sequence[int]) -> dict[int, StationState]:
    """Each station's state for the hazard it warns of now, by station id."""
    if not station_ids:
        return {}
    rows = session.scalars(
        select(StationState)
        .join(WarningStation, WarningStation.id == StationState.station_id)
        .where(StationState.station_id.in_(list(station_ids)), StationState.hazard == WarningStation.hazard)
    )
    return {row.station_id: row for row in rows}


def warnings_by_id(session: Session, warning_ids: Iterable[int]) -> dict[int, HazardWarning]:
    ids = list(set(warning_ids))
    if not ids:
        return {}
    return {w.id: w for w in session.scalars(select(HazardWarning).where(HazardWarning.id.in_(ids)))}


def lock_station_state(session: Session, station_id: int, hazard: str) -> StationState:
    """The station's state for the hazard, created if new, held until the transaction ends: a second
    batch of the station waits here and then reads what the first one did. The insert comes first:
    on SQLite it takes the write lock before anything is read; on PostgreSQL the row is locked."""
    session.execute(
        insert_or_ignore(session, StationState)
        .values(station_id=station_id, hazard=hazard, metrics={}, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["station_id", "hazard"])
    )
    state = session.scalar(
        select(StationState)
        .where(StationState.station_id == station_id, StationState.hazard == hazard)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert state is not None
    return state
