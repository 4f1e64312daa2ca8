"""Request and response shapes of the case API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 2_147_483_647
Source = Literal["web", "open311", "police", "grid_worker", "sensor", "warning", "credit"]


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type_code: str = Field(min_length=1, max_length=40)
    category: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    reporter_name: str | None = Field(default=None, max_length=60)
    reporter_phone: str | None = Field(default=None, pattern=r"^[0-9+\-]{5,20}$")
    source: Source = "web"
    fields: dict[str, Any] = Field(default_factory=dict)


class ActionRequest(BaseModel):
    """An action on a case. `version` is the version the actor saw; a newer one answers 409."""

    model_config = ConfigDict(extra="forbid")

    # Required, but checked after the scope: a case outside it answers 404 whatever the body says.
    version: int | None = Field(default=None, ge=1, le=MAX_ID)
    comment: str | None = Field(default=None, max_length=2000)
    reason: str | None = Field(default=None, max_length=500)
    result: str | None = Field(default=None, max_length=2000)
    org_unit_code: str | None = Field(default=None, max_length=40)
    assignee_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    merged_into: int | None = Field(default=None, ge=1, le=MAX_ID)


class OrgUnitRef(BaseModel):
    id: int
    code: str
    name: str


class CaseSummary(BaseModel):
    """A list row: reporter details always masked."""

    id: int
    number: str
    type_code: str
    type_name: str
    category: str
    category_name: str
    title: str
    status: str
    level: str
    division_code: str
    village_code: str
    org_unit: OrgUnitRef | None
    reporter_name: str | None
    reporter_phone: str | None
    source: str
    deadline_at: datetime | None
    # Working seconds left at the current level (negative once overdue), for countdowns.
    remaining_seconds: float | None = None
    overdue: bool = False
    created_at: datetime
    updated_at: datetime
    version: int


class CaseRead(CaseSummary):
    description: str
    grid_code: str | None
    lon: float
    lat: float
    assignee_id: int | None
    public: bool
    fields: dict[str, Any]
    merged_into_id: int | None
    paused_at: datetime | None
    paused_seconds: int
    closed_at: datetime | None
    pii_visible: bool
    allowed_actions: list[str]


class CasePage(BaseModel):
    items: list[CaseSummary]
    # Exact up to 10,000; a larger list answers 10,001 with total_is_lower_bound set.
    total: int
    total_is_lower_bound: bool = False
    limit: int
    offset: int


class CaseEventRead(BaseModel):
    id: int
    action: str
    actor_id: int | None
    actor_name: str | None
    from_status: str | None
    to_status: str
    level: str
    org_unit: OrgUnitRef | None
    comment: str | None
    data: dict[str, Any]
    at: datetime


class FigureRead(BaseModel):
    """One figure of a unit and period; `cases_url` lists the cases behind it."""

    name: str
    level: str | None
    value: float
    cases_url: str


class FiguresRead(BaseModel):
    division_code: str
    start: date
    end: date
    figures: list[FigureRead]
