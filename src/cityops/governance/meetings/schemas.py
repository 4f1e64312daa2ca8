"""Request and response shapes of the meetings API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cityops.cases.schemas import MAX_ID, CaseSummary
from cityops.governance.assessment.schemas import DivisionCode, UnitCode, UnitRef

Attendee = Annotated[str, Field(min_length=1, max_length=80)]


class MeetingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    division_code: DivisionCode | None = Field(
        default=None,
        description="The division whose centre meets (default your scope); its level "
        "(village, township, county, city) decides the kind of meeting",
    )
    held_at: datetime = Field(
        description="When the meeting takes place (a time without zone is Beijing time)"
    )
    title: str | None = Field(default=None, max_length=200)
    attendees: list[Attendee] = Field(default_factory=list, max_length=100)

    @field_validator("held_at")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        if not 2000 <= value.year <= 2100:
            raise ValueError("a meeting is held between the years 2000 and 2100")
        return value


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="A case to discuss")
    title: str | None = Field(default=None, max_length=200, description="A topic without a case")


class NewCase(BaseModel):
    """The case a decision opens; where it is defaults to the agenda case's place."""

    model_config = ConfigDict(extra="forbid")

    type_code: str = Field(min_length=1, max_length=40)
    category: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    fields: dict[str, int | float | str | bool] = Field(default_factory=dict, max_length=30)


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: str = Field(min_length=1, max_length=5000)
    outcome: Literal["note", "new_case", "assign"] = Field(
        default="note",
        description="note: recorded only; new_case: opens `new_case`; assign: sends the "
        "agenda case to `org_unit_code`",
    )
    org_unit_code: UnitCode | None = None
    new_case: NewCase | None = None


class MinutesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attendees: list[Attendee] | None = Field(default=None, max_length=100)
    minutes: str | None = Field(default=None, max_length=20000)
    held: bool = Field(default=False, description="Mark the meeting as held")


class ItemRead(BaseModel):
    id: int
    position: int
    title: str
    case: CaseSummary | None
    decision: str | None
    outcome: str | None
    result_case: CaseSummary | None
    result_unit: UnitRef | None
    decided_at: datetime | None
    decided_by_name: str | None


class MeetingSummary(BaseModel):
    id: int
    level: str
    kind_zh: str
    kind_en: str
    title: str
    division_code: str
    org_unit: UnitRef | None
    held_at: datetime
    status: str
    items: int
    decided: int


class MeetingRead(MeetingSummary):
    attendees: list[str]
    minutes: str
    agenda_since: datetime | None
    agenda: list[ItemRead]


class MeetingPage(BaseModel):
    items: list[MeetingSummary]
    total: int
    limit: int
    offset: int


class DrawResult(BaseModel):
    added: int
    since: datetime
    meeting: MeetingRead
