"""One error hierarchy for the whole platform; translated once to JSON and once to HTML in app.py."""

from __future__ import annotations

from typing import Any


class CityopsError(Exception):
    status = 400
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 field: str | None = None, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.field = field
        self.detail = detail or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.detail:
            body["detail"] = self.detail
        return body


class NotFound(CityopsError):
    status = 404
    code = "not_found"


class Conflict(CityopsError):
    status = 409
    code = "conflict"


class Forbidden(CityopsError):
    status = 403
    code = "forbidden"


class Unauthorized(CityopsError):
    status = 401
    code = "unauthorized"


class TooManyRequests(CityopsError):
    status = 429
    code = "too_many_requests"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class ValidationFailed(CityopsError):
    status = 422
    code = "validation_failed"
