"""Police transfers: non-police 110 calls handed over by the police system as cases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from cityops.core.db import Base, utcnow


class PoliceTransfer(Base):
    """One 110 call transferred to the governance system. The unique incident number makes a retried
    transfer find its first case instead of opening another."""

    __tablename__ = "police_transfers"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_no: Mapped[str] = mapped_column(String(40), unique=True)
    # Set in the same transaction right after the incident number is claimed (see the service), so
    # never empty once committed.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None, index=True)
    category: Mapped[str] = mapped_column(String(40))
    callback_url: Mapped[str] = mapped_column(String(500))
    # When the caller rang 110 (the police system's clock) and when the transfer reached us.
    reported_at: Mapped[datetime | None] = mapped_column(default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the result was queued for the police system's webhook; its delivery status (retries,
    # dead letters) is in webhook_deliveries.
    result_pushed_at: Mapped[datetime | None] = mapped_column(default=None)
