"""Request and response shapes of the visit, patrol and problem-report API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

MAX_ID = 2_147_483_647
VisitKind = Literal["visit", "publicise", "check", "resolve", "support"]
Phone = Field(default=None, pattern=r"^[0-9+\-]{5,20}$")


class IssueCreate(BaseModel):
    """An issue found in the field; it becomes a case (source grid_worker). `kind` is one of the
    issue kinds (GET /api/governance/visits/issue-kinds), which fixes the case type and category."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    # Custom fields of the case type, over the kind's defaults (e.g. {"parties": 3}).
    fields: dict[str, Any] = Field(default_factory=dict, max_length=20)


class LocatedIssue(IssueCreate):
    """An issue with its own place: on a patrol, or reported on its own."""

    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)


class VisitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kinds: list[VisitKind] = Field(min_length=1, max_length=5)
    address: str = Field(min_length=1, max_length=200)
    household_head: str | None = Field(default=None, max_length=60)
    household_phone: str | None = Phone
    notes: str = Field(default="", max_length=5000)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    visited_at: AwareDatetime | None = None
    issues: list[IssueCreate] = Field(default_factory=list, max_length=10)


class IssueRef(BaseModel):
    """An issue and the case it became."""

    id: int
    case_id: int
    case_number: str
    case_status: str
    photo_url: str | None = None


class VisitRead(BaseModel):
    id: int
    worker_id: int | None
    worker_name: str
    division_code: str
    village_code: str
    kinds: list[str]
    address: str
    household_head: str | None
    household_phone: str | None
    pii_visible: bool
    notes: str
    lon: float
    lat: float
    photo_url: str | None
    visited_at: datetime
    synthetic: bool
    issues: list[IssueRef]


class VisitPage(BaseModel):
    items: list[VisitRead]
    total: int
    limit: int
    offset: int


class TrackPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    at: AwareDatetime | None = Field(default=None, description="When the phone was there; default now")


class PatrolStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: str = Field(default="", max_length=5000)
    points: list[TrackPoint] = Field(default_factory=list, max_length=500)


class PatrolPoints(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: list[TrackPoint] = Field(min_length=1, max_length=500)


class PatrolEnd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: str | None = Field(default=None, max_length=5000)
    points: list[TrackPoint] = Field(default_factory=list, max_length=500)


class PatrolRead(BaseModel):
    id: int
    worker_id: int | None
    worker_name: str
    division_code: str
    started_at: datetime
    ended_at: datetime | None
    point_count: int
    distance_m: float
    notes: str
    synthetic: bool
    issues: list[IssueRef]
    track: list[tuple[float, float, str]] | None = None


class PatrolPage(BaseModel):
    items: list[PatrolRead]
    total: int
    limit: int
    offset: int


class IssueKindRead(BaseModel):
    code: str
    name_zh: str
    name_en: str
    type_code: str
    category: str


class ReportRead(IssueRef):
    """A problem reported on its own from the phone page."""

    division_code: str
