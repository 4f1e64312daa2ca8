"""Pydantic schemas of the warning API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from cityops.warning.hazards import LevelCode

DivisionCode = Annotated[str, StringConstraints(pattern=r"^\d{6}(\d{3}(\d{3})?)?$")]
Urgency = Literal["Immediate", "Expected", "Future"]
Certainty = Literal["Observed", "Likely", "Possible"]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Instruction = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Headline = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
GEOJSON_HELP = "A GeoJSON Polygon or MultiPolygon (WGS84 lon/lat)"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WarningCreate(_Input):
    """A warning issued by hand. The area is a polygon, division codes, or both (their union)."""

    hazard: str = Field(min_length=1, max_length=24, description="e.g. rainstorm, flood, landslide")
    level: LevelCode
    instruction: Instruction
    expires: AwareDatetime
    onset: AwareDatetime | None = None
    headline: Headline | None = None
    description: Text = ""
    headline_en: Headline | None = None
    description_en: Text | None = None
    instruction_en: Text | None = None
    area_desc: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] | None
    ) = None
    division_codes: list[DivisionCode] = Field(default_factory=list, max_length=200)
    area: dict[str, Any] | None = Field(default=None, description=GEOJSON_HELP)
    urgency: Urgency | None = None
    certainty: Certainty = "Likely"
    draft: bool = Field(default=False, description="Keep it as a draft; POST .../issue releases it")


class WarningUpdate(_Input):
    """What changes; at least one field. Published as a CAP Update."""

    level: LevelCode | None = None
    headline: Headline | None = None
    description: Text | None = None
    instruction: Instruction | None = None
    headline_en: Headline | None = None
    description_en: Text | None = None
    instruction_en: Text | None = None
    area_desc: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] | None
    ) = None
    division_codes: list[DivisionCode] | None = Field(default=None, max_length=200)
    area: dict[str, Any] | None = Field(default=None, description=GEOJSON_HELP)
    expires: AwareDatetime | None = None
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class WarningExtend(_Input):
    expires: AwareDatetime
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class WarningCancel(_Input):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class WarningMessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    action: str
    msg_type: str
    sender: str
    identifier: str
    sent: str
    level: str
    note: str | None
    actor_id: int | None
    created_at: datetime


class WarningRead(BaseModel):
    id: int
    identifier: str
    sender: str
    sender_name: str
    source: str
    source_detail: str
    hazard: str
    hazard_label: str
    level: str
    level_label: str
    severity: str
    status: str
    status_label: str
    category: str
    urgency: str
    certainty: str
    headline: str
    headline_en: str | None
    description: str
    description_en: str | None
    instruction: str
    instruction_en: str | None
    area_desc: str
    division_codes: list[str]
    area: dict[str, Any] | None
    onset: datetime | None
    expires: datetime
    created_at: datetime
    issued_at: datetime | None
    updated_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    allowed_actions: list[str]
    messages: list[WarningMessageRead] = Field(default_factory=list)


class WarningPage(BaseModel):
    items: list[WarningRead]
    total: int
    limit: int
    offset: int


class ImportResult(BaseModel):
    """What an imported message did: made a new warning, changed or cancelled a known one, or nothing
    (the same message imported before)."""

    outcome: Literal["created", "updated", "cancelled", "unchanged"]
    warning: WarningRead
