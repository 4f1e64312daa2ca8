"""Request and response shapes of the project risk assessment API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["project", "decision"]
Level = Literal["low", "medium", "high"]
DivisionCode = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{6}([0-9]{3}){0,2}$", description="Division the project lies in (6, 9 or 12 digits)"
    ),
]
UnitCode = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z\-_.]+$")]
Factor = Annotated[str, Field(min_length=1, max_length=200)]


class UnitRef(BaseModel):
    id: int
    code: str
    name: str


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: Kind = "project"
    description: str = Field(default="", max_length=5000)
    owner_unit_code: UnitCode = Field(description="Org unit code of the owner department")
    division_code: DivisionCode | None = Field(default=None, description="Default: your own scope")
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)


class AssessmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Level
    factors: list[Factor] = Field(
        default_factory=list, max_length=30, description="The risk factors considered"
    )
    conclusion: str = Field(default="", max_length=5000)


class MitigationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    measure: str = Field(min_length=1, max_length=500)
    responsible_unit_code: UnitCode
    due_date: date | None = None


class MitigationDone(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


class AdvanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["approved", "proceeding"] = Field(description="approved, then proceeding")


class AssessmentRead(BaseModel):
    id: int
    level: str
    factors: list[str]
    conclusion: str
    assessed_by_name: str | None
    assessed_at: datetime


class MitigationRead(BaseModel):
    id: int
    measure: str
    responsible_unit: UnitRef | None
    due_date: date | None
    done_at: datetime | None
    done_note: str | None
    overdue: bool


class ProjectSummary(BaseModel):
    id: int
    name: str
    kind: str
    status: str
    risk_level: str | None
    blocked: bool
    open_mitigations: int
    owner_unit: UnitRef | None
    division_code: str
    created_at: datetime
    approved_at: datetime | None


class ProjectRead(ProjectSummary):
    description: str
    lon: float | None
    lat: float | None
    blocked_at: datetime | None
    # What stands between the project and approval (empty when it may go ahead).
    missing: list[str]
    assessments: list[AssessmentRead]
    mitigations: list[MitigationRead]


class ProjectCounts(BaseModel):
    total: int
    high: int
    blocked: int = Field(description="High risk with mitigations still open: stopped")
    released: int = Field(description="High risk, every mitigation done, approved")


class ProjectPage(BaseModel):
    items: list[ProjectSummary]
    total: int
    limit: int
    offset: int
    counts: ProjectCounts
