"""Pydantic shapes of the accounts API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=256)


class OrgUnitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    name_en: str | None
    kind: str
    level: str
    division_code: str
    parent_id: int | None


class UserRead(BaseModel):
    """A user as a viewer may see it: phone and ID number masked unless `pii_visible`."""

    id: int
    username: str
    display_name: str
    role: str
    role_name: str
    org_unit: OrgUnitRead | None
    scope_code: str | None
    division_code: str | None
    phone: str | None
    id_number: str | None
    pii_visible: bool
    locale: str
    is_active: bool
    is_demo: bool
    created_at: datetime


class MeRead(UserRead):
    permissions: list[str]
    csrf_token: str | None
    auth_method: str | None


class LoginResponse(BaseModel):
    user: MeRead
    csrf_token: str


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=40)
    password: str = Field(max_length=256)
    display_name: str = Field(max_length=80)
    role: str
    org_unit_code: str | None = None
    scope_code: str | None = None
    phone: str | None = None
    id_number: str | None = None
    locale: str = "zh"


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    old_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    days: int = Field(default=90, ge=1, le=3650)
    username: str | None = Field(default=None, description="Another user's token (needs tokens.manage)")


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    prefix: str
    name: str
    user_id: int
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="Shown once; only its hash is stored")


class AuditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    user_id: int | None
    username: str | None
    action: str
    resource_type: str
    resource_id: str | None
    division_code: str | None
    ip: str | None
    detail: dict[str, Any] | None
