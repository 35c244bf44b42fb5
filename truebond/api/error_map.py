"""The one table from an error to what the client sees: an HTTP status, or a socket error ack.

Errors carry a stable `code` and a safe `detail` (truebond.errors); the edge alone decides the
status. An error that is in no row here is unexpected: it answers 500 and its traceback goes to
the log only.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError
from redis.exceptions import RedisError

from truebond.adapters.email import EmailFailed
from truebond.adapters.storage import StorageUnavailable
from truebond.adapters.stripe_gateway import GatewayError
from truebond.errors import (
    BadRequest,
    Conflict,
    DependencyDown,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PaymentRequired,
    RateLimited,
    TrueBondError,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from truebond.events.store import ConcurrencyError

STATUS: dict[type[TrueBondError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    PaymentRequired: 402,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    ValidationFailed: 422,
    RateLimited: 429,
    DependencyDown: 503,
    StorageUnavailable: 503,
    GatewayError: 503,
    EmailFailed: 503,
    # Optimistic concurrency that kept losing its retries: busy, not broken; try again.
    ConcurrencyError: 503,
}


# Driver errors that reach the edge untranslated (a read model's query or write, an inline apply):
# MongoDB or Redis is down or refused, so the client may retry. A stray duplicate key is a bug.
DRIVER_ERRORS: tuple[type[Exception], ...] = (PyMongoError, RedisError)


def as_dependency_down(exc: Exception) -> DependencyDown | None:
    """The DependencyDown a driver error stands for at the edge, or None for anything else."""
    if isinstance(exc, DRIVER_ERRORS) and not isinstance(exc, DuplicateKeyError):
        return DependencyDown()
    return None


def status_of(exc: TrueBondError) -> int | None:
    """The HTTP status of an error (its nearest class in STATUS), or None when it is unexpected."""
    for cls in type(exc).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return None


def body_of(exc: TrueBondError) -> dict[str, Any]:
    """`{detail, code}` plus the error's extras (a 422's `errors`); never the exception text."""
    return {"detail": exc.detail, "code": exc.code, **exc.extra}


def ack_of(exc: TrueBondError) -> dict[str, Any]:
    """The socket twin of an HTTP error: `{success: false, error, code}` (+ `errors`, `retry_after`)."""
    ack: dict[str, Any] = {"success": False, "error": exc.detail, "code": exc.code, **exc.extra}
    if isinstance(exc, RateLimited):
        ack["retry_after"] = exc.retry_after
    return ack
