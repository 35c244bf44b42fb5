"""Errors a command or route may raise on purpose; each maps to one status and code."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An expected failure with a safe message for the client."""

    status = 400
    code = "bad_request"
    detail = "Bad request"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.extra = extra


class BadRequest(AppError):
    """The request is malformed."""


class Unauthorized(AppError):
    """No, invalid or revoked credentials."""

    status, code, detail = 401, "unauthorized", "Not authenticated"


class PaymentRequired(AppError):
    """Not enough coins."""

    status, code, detail = 402, "insufficient_coins", "Not enough coins"


class Forbidden(AppError):
    """Authenticated but not allowed."""

    status, code, detail = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    """Missing, or not visible to this caller."""

    status, code, detail = 404, "not_found", "Not found"


class Conflict(AppError):
    """The request conflicts with the current state."""

    status, code, detail = 409, "conflict", "Conflict"


class PayloadTooLarge(AppError):
    """The body is over the route's limit."""

    status, code, detail = 413, "payload_too_large", "Request body too large"


class UnsupportedMediaType(AppError):
    """The body's type is not accepted."""

    status, code, detail = 415, "unsupported_media_type", "Unsupported media type"


class ValidationFailed(AppError):
    """Fields failed validation; `errors` lists [{loc, msg}]."""

    status, code, detail = 422, "validation_error", "Invalid request"

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None) -> None:
        super().__init__(detail, errors=errors)


class RateLimited(AppError):
    """Too many requests; retry after `retry_after` seconds."""

    status, code, detail = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class DependencyDown(AppError):
    """A dependency needed to answer safely is unavailable (fail closed)."""

    status, code, detail = 503, "dependency_unavailable", "Service temporarily unavailable"
