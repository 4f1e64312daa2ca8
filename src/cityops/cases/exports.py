"""The case list as a background Excel export (core.exports): the inbox's filters, the list's rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from cityops.cases import service
from cityops.cases.workflow import STATES
from cityops.core.auth.models import User
from cityops.core.exports import ExportKind, register


class CaseExportParams(BaseModel):
    """The filters of GET /api/cases (the same names), so a list's query string is its export's params."""

    model_config = ConfigDict(extra="forbid")

    status: list[str] = Field(default_factory=list, max_length=len(STATES))
    type_code: str | None = Field(default=None, max_length=40)
    level: str | None = Field(default=None, max_length=10)
    q: str | None = Field(default=None, max_length=60)
    box: Literal["scope", "unit", "mine"] = "scope"
    open_only: bool = False
    overdue: bool = False
    sort: Literal["newest", "oldest", "deadline"] = "newest"

    @field_validator("status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # ?status=a and ?status=a&status=b both arrive; empty values mean "no filter", as in the list.
        values = [value] if isinstance(value, str) else value
        return [v for v in values if v] if isinstance(values, list) else values

    @field_validator("type_code", "level", "q", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any) -> Any:
        return value or None


def _build(
    session: Session, viewer: User, params: CaseExportParams
) -> tuple[Sequence[str], int, Iterator[list[Any]]]:
    filters = params.model_dump()
    total = service.count_export(session, viewer=viewer, **filters)  # checks the filters now
    return service.EXPORT_HEADERS, total, service.export_rows(session, viewer=viewer, **filters)


CASES = register(
    ExportKind(
        code="cases", filename="案件列表.xlsx", sheet_title="cases", params=CaseExportParams, build=_build
    )
)
