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


# --- the response ----------------------------------------------------------------------------------

Count = Annotated[int, Field(ge=0, le=10_000_000)]


class EvacuationReport(_Input):
    """How many people of a village have been moved to safety so far: running totals, so the village's
    latest report holds its figures (a report sent twice counts once)."""

    village_code: Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
    evacuated: Count = Field(description="People moved out of danger so far")
    sheltered: Count = Field(default=0, description="Of them, people in shelters")
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class VillageEvacuation(BaseModel):
    village_code: str
    village_name: str
    evacuated: int
    sheltered: int
    reports: int
    reported_at: datetime


class EvacuationTotals(BaseModel):
    """The latest figures of each village that reported (those in the reader's scope), and their sums."""

    evacuated: int
    sheltered: int
    villages: list[VillageEvacuation]


class ResponseTarget(BaseModel):
    kind: Literal["grid", "village"]
    code: str
    name: str
    village_code: str
    added_at: datetime
    removed_at: datetime | None


class MessageNotices(BaseModel):
    """Who was told of one CAP message of the warning."""

    message_id: int
    msg_type: str
    level: str
    sent: str
    grid_workers: int
    village_heads: int


class ResponseTask(BaseModel):
    case_id: int
    number: str
    title: str
    item: str  # plan.item, e.g. flood.evacuate_low_lying
    item_name: str
    level: str  # the plan level the item belongs to
    target_code: str
    status: str
    org_unit: str | None
    deadline_at: datetime | None
    overdue: bool
    created_at: datetime


class WarningResponse(BaseModel):
    """What a warning set in motion: the grids and villages it covers, the people told of each message,
    its response tasks by status and the evacuation figures. Tasks and evacuations are those in the
    reader's scope."""

    warning_id: int
    status: str
    level: str
    grids: int
    villages: int
    targets: list[ResponseTarget]
    people_notified: int
    notices: list[MessageNotices]
    tasks_by_status: dict[str, int]
    tasks: list[ResponseTask]
    evacuations: EvacuationTotals


class HistoryEntry(BaseModel):
    at: datetime
    kind: Literal["message", "notice", "task", "evacuation"]
    kind_label: str
    event: str
    level: str | None = None
    subject: str = ""
    status: str | None = None
    count: int | None = None
    detail: str = ""


class WarningHistory(BaseModel):
    """A warning's lifecycle (each CAP message) and the response timeline (notices, tasks, evacuations),
    oldest first, for after-action review."""

    warning_id: int
    identifier: str
    hazard: str
    level: str
    status: str
    headline: str
    lifecycle: list[HistoryEntry]
    response: list[HistoryEntry]


# --- monitoring stations ---------------------------------------------------------------------------


class StationVillage(BaseModel):
    code: str
    name: str


class StationMetricRead(BaseModel):
    code: str  # rain_1h, level, rise_1h ...
    label: str
    unit: str
    value: float | None  # at the newest readings; None before any, or when the device fell silent
    thresholds: dict[str, float]  # level -> the value where it begins
    level: str | None  # the level this metric reaches


class StationRead(BaseModel):
    code: str
    name: str
    kind: str
    kind_label: str
    hazard: str
    hazard_label: str
    water_body: str | None
    hill: str | None
    device_id: int
    device_name: str
    lon: float
    lat: float
    villages: list[StationVillage]
    metrics: list[StationMetricRead]
    confirm_levels: list[str]
    hold_minutes: int
    level: str | None  # the highest level its newest readings reach
    level_label: str | None
    reading_at: datetime | None  # the time of those readings
    warning_id: int | None  # the station's warning, in force or awaiting confirmation
    warning_status: str | None
    warning_status_label: str | None
    warning_level: str | None
    # A level awaiting an operator's confirmation: the pending warning's, or an escalation's.
    proposed_level: str | None
    problem: str | None  # readings left out of the last evaluation, and why


class StationPage(BaseModel):
    items: list[StationRead]
    total: int
