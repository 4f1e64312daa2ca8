"""Request and response shapes of the risk register API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cityops.cases.schemas import CaseSummary
from cityops.governance.assessment.schemas import UnitCode, UnitRef


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_unit_code: UnitCode = Field(description="The unit that carries out the control task")
    title: str = Field(min_length=1, max_length=150)
    description: str = Field(default="", max_length=5000)


class StageChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["excavator", "roller", "closed"]
    note: str | None = Field(default=None, max_length=5000, description="Aftercare (to roller)")
    root_cause: str | None = Field(default=None, max_length=5000, description="Needed to close")


class ScanReport(BaseModel):
    registered: int
    updated: int


class TaskRead(BaseModel):
    id: int
    title: str
    org_unit: UnitRef | None
    case: CaseSummary | None
    created_by_name: str | None
    created_at: datetime


class RiskSummary(BaseModel):
    id: int
    kind: str
    title: str
    type_code: str
    category: str
    division_code: str
    lon: float
    lat: float
    radius_m: float
    case_count: int
    first_at: datetime
    last_at: datetime
    stage: str
    identified_at: datetime


class RiskRead(RiskSummary):
    aftercare: str | None
    root_cause: str | None
    closed_at: datetime | None
    cases: list[CaseSummary]
    tasks: list[TaskRead]


class RiskPage(BaseModel):
    items: list[RiskSummary]
    total: int
    limit: int
    offset: int
