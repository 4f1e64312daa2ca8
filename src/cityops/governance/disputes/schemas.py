"""Request and response shapes of the dispute API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumValidationError

MAX_ID = 2_147_483_647
PHONE = r"^[0-9+\-]{5,20}$"
Level = Literal["village", "township", "county", "city"]
RelationReason = Literal["same_party", "same_place"]


def check_id_number(value: str | None) -> str | None:
    """A resident ID number (GB 11643) checked with python-stdnum: 18 characters, birth date, check
    digit and region; None when not given."""
    if value is None or not value.strip():
        return None
    try:
        return str(ric.validate(value.strip().upper()))
    except StdnumValidationError as exc:
        raise ValueError(f"not a valid resident ID number: {exc}") from None
    except KeyError:
        # python-stdnum raises KeyError for a region it knows only at province level.
        raise ValueError(f"not a valid resident ID number: unknown region {value.strip()[:6]}") from None


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)
    phone: str | None = Field(default=None, pattern=PHONE)
    id_number: str | None = Field(default=None, max_length=18)
    address: str | None = Field(default=None, max_length=200)

    _id = field_validator("id_number")(check_id_number)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a name is required")
        return value.strip()


class DisputeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str = Field(min_length=1, max_length=40, description="A category of case type 'dispute'")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    place: str = Field(default="", max_length=200, description="Where it happened (address)")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    amount_yuan: float | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)
    risk: Literal["low", "medium", "high"] | None = None
    parties: list[PartyIn] = Field(min_length=2, max_length=50)


class SessionCreate(BaseModel):
    """A mediation session. Fields are checked after the scope (a dispute outside it answers 404)."""

    model_config = ConfigDict(extra="forbid")

    held_on: date | None = None
    mediator: str | None = Field(default=None, max_length=60)
    place: str | None = Field(default=None, max_length=200)
    outcome: Literal["agreement", "continue", "referred"] | None = None
    notes: str = Field(default="", max_length=2000)


class OutcomeCreate(BaseModel):
    """Agreement reached (with its text), or referral up the ladder (to the next level, optionally a
    named unit there). Checked after the scope."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["agreement", "referral"] | None = None
    agreement: str | None = Field(default=None, max_length=5000)
    to_level: Level | None = None
    to_unit_code: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, max_length=500)


class PartyRead(BaseModel):
    id: int
    name: str
    phone: str | None
    id_number: str | None
    address: str | None


class SessionRead(BaseModel):
    id: int
    held_on: date
    mediator: str
    place: str
    outcome: str
    notes: str
    level: str
    created_at: datetime


class DisputeSummary(BaseModel):
    id: int
    case_id: int
    case_number: str
    case_status: str
    level: str
    handling_unit: str | None
    division_code: str
    village_code: str
    category: str
    category_name: str
    title: str
    place: str
    status: str
    parties: list[str] = Field(description="Party names, masked in lists")
    repeat: bool = False
    synthetic: bool
    created_at: datetime


class RelatedDispute(BaseModel):
    id: int
    title: str
    created_at: datetime
    reason: RelationReason


class DisputeRead(DisputeSummary):
    description: str
    lon: float
    lat: float
    agreement: str | None
    referral_level: str | None
    referral_unit_code: str | None
    referral_reason: str | None
    outcome_at: datetime | None
    pii_visible: bool
    party_details: list[PartyRead]
    sessions: list[SessionRead]
    related: list[RelatedDispute]


class DisputePage(BaseModel):
    items: list[DisputeSummary]
    total: int
    limit: int
    offset: int


class DisputeFigure(BaseModel):
    name: str
    level: str | None = None
    value: float
    disputes_url: str | None = None


class UnitFigures(BaseModel):
    division_code: str
    name: str
    reported: int
    resolved: int
    village: int
    township: int
    county: int
    city: int
    kept_in_village: float | None
    kept_in_township: float | None
    repeat: int


class DisputeFiguresRead(BaseModel):
    division_code: str
    start: date
    end: date
    figures: list[DisputeFigure]
    units: list[UnitFigures] = Field(description="The same figures per unit one level down")
