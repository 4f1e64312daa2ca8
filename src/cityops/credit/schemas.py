"""Pydantic schemas of the credit API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

Kind = Literal["enterprise", "individual", "cooperative", "social_org", "other"]
Status = Literal["active", "revoked", "cancelled", "moved_out"]


class CodeCheck(BaseModel):
    """What a unified social credit code says, or why it is not one."""

    code: str
    valid: bool
    reason: str | None = None  # length, character, authority, type, division or check_digit
    message: str | None = None
    authority: str | None = None  # the registration authority's name (Chinese)
    entity_type: str | None = None  # the entity type's name (Chinese)
    kind: Kind | None = None
    division: str | None = None  # the registration authority's division code


class IndustryRef(BaseModel):
    code: str  # the division, 2 digits
    section: str
    name: str
    section_name: str


class DepartmentRef(BaseModel):
    id: int
    code: str
    name: str


class EntitySummary(BaseModel):
    """A list row: the legal representative always masked."""

    id: int
    code: str
    name: str
    kind: Kind
    industry: IndustryRef | None
    status: Status
    capital: int | None  # in units of capital_currency
    capital_currency: str
    established_on: date | None
    division_code: str
    grid_code: str | None
    legal_rep_name: str
    synthetic: bool


class EntityRead(EntitySummary):
    address: str
    lon: float | None
    lat: float | None
    village_code: str | None
    located_by: Literal["point", "address", "code"]
    division_name: str | None
    legal_rep_id_number: str | None
    pii_visible: bool
    departments: list[DepartmentRef]
    code_check: CodeCheck
    created_at: datetime
    updated_at: datetime


class EntityPage(BaseModel):
    items: list[EntitySummary]
    total: int
    limit: int
    offset: int


class ImportProblem(BaseModel):
    line: int
    field: str
    reason: str


class ImportResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    rejected: list[ImportProblem]
