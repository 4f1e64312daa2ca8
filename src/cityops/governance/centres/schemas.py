"""Request and response shapes of the centres API."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

PHONE = r"^[0-9+\-]{5,20}$"


class DutyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duty_date: date
    shift: str = Field(pattern=r"^(day|night)$", description="day or night")
    person_name: str = Field(min_length=1, max_length=60)
    phone: str | None = Field(default=None, pattern=PHONE)


class RosterSet(BaseModel):
    """Roster entries of a centre; every day named here is replaced by the entries given for it.
    Checked after the scope (a centre elsewhere answers 404)."""

    model_config = ConfigDict(extra="forbid")

    entries: list[DutyIn] | None = Field(default=None, max_length=200)


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)
    phone: str | None = Field(default=None, pattern=PHONE)
    organisation: str = Field(min_length=1, max_length=120)


class TrioSet(BaseModel):
    """一村一警一法律顾问一民调组织; a role left out stays as it is. Checked after the scope."""

    model_config = ConfigDict(extra="forbid")

    police: ContactIn | None = None
    legal: ContactIn | None = None
    mediation: ContactIn | None = None


class DutyRead(BaseModel):
    duty_date: date
    shift: str
    person_name: str
    phone: str | None


class ContactRead(BaseModel):
    role: str
    name: str
    phone: str | None
    organisation: str


class CentreSummary(BaseModel):
    id: int
    code: str
    name: str
    level: str
    division_code: str
    today: list[DutyRead]
    trio: list[ContactRead] = Field(description="Village centres: police officer, legal adviser, mediation")


class CentrePage(BaseModel):
    items: list[CentreSummary]
    total: int
    limit: int
    offset: int


class CentreRead(CentreSummary):
    pii_visible: bool
    roster: list[DutyRead] = Field(description="Today and the next 6 days")
    open_cases: dict[str, int] = Field(description="Open cases the centre holds, per status")
    open_disputes: int
