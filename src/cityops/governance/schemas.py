"""Request and response shapes of the police transfer API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, UrlConstraints

CallbackUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=500, allowed_schemes=["http", "https"])]


class PoliceTransferCreate(BaseModel):
    """A non-police 110 call as the police system sends it."""

    model_config = ConfigDict(extra="forbid")

    incident_no: str = Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z\-_.]+$",
                             description="The police system's incident number; a retry sends it again")
    category: str = Field(min_length=1, max_length=40, description="One of the transfer categories")
    description: str = Field(default="", max_length=5000)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    caller_name: str | None = Field(default=None, max_length=60)
    caller_phone: str | None = Field(default=None, pattern=r"^[0-9+\-]{5,20}$")
    reported_at: datetime | None = Field(default=None, description="When the caller rang 110 (with zone)")
    callback_url: CallbackUrl = Field(description="Where the result is POSTed when the case closes")


class HandlingUnit(BaseModel):
    code: str
    name: str


class PoliceTransferRead(BaseModel):
    incident_no: str
    case_id: int
    case_number: str
    status: str
    level: str
    handling_unit: HandlingUnit | None
    received_at: datetime
    result_pushed_at: datetime | None


class TransferCategory(BaseModel):
    code: str
    name_zh: str
    name_en: str
    type_code: str
    category: str
