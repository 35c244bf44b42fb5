"""The one error root: every failure the service raises on purpose is a `TrueBondError`.

Two branches: `DomainError` (the rules refused: a stable `code` and a safe `detail` for the
client) and `InfrastructureError` (a dependency or the stored history failed). Which HTTP status
or socket ack an error becomes is decided at the edge, in `truebond.api.error_map`, never here.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TrueBondError(Exception):
    """Root of every error the service raises on purpose; `code` is stable, `detail` is safe to show."""

    code: ClassVar[str] = "error"
    default_detail: ClassVar[str] = "Error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.default_detail)
        self.detail = detail or self.default_detail
        self.extra = extra


class DomainError(TrueBondError):
    """A request the rules refuse (bad input, no permission, not enough coins, a conflict)."""


class InfrastructureError(TrueBondError):
    """A dependency (MongoDB, Redis, Stripe, email, storage) or the stored history failed."""

    code = "dependency_unavailable"
    default_detail = "Service temporarily unavailable"


# -- domain ------------------------------------------------------------------------------------


class BadRequest(DomainError):
    """The request is malformed."""

    code, default_detail = "bad_request", "Bad request"


class Unauthorized(DomainError):
    """No, invalid or revoked credentials."""

    code, default_detail = "unauthorized", "Not authenticated"


class PaymentRequired(DomainError):
    """Not enough coins."""

    code, default_detail = "insufficient_coins", "Not enough coins"


class Forbidden(DomainError):
    """Authenticated but not allowed."""

    code, default_detail = "forbidden", "Forbidden"


class NotFound(DomainError):
    """Missing, or not visible to this caller."""

    code, default_detail = "not_found", "Not found"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    code, default_detail = "conflict", "Conflict"


class PayloadTooLarge(DomainError):
    """The body is over the route's limit."""

    code, default_detail = "payload_too_large", "Request body too large"


class UnsupportedMediaType(DomainError):
    """The body's type is not accepted."""

    code, default_detail = "unsupported_media_type", "Unsupported media type"


class ValidationFailed(DomainError):
    """Fields failed validation; `errors` lists [{loc, msg}]."""

    code, default_detail = "validation_error", "Invalid request"

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None) -> None:
        super().__init__(detail, errors=errors)


class RateLimited(DomainError):
    """Too many requests; retry after `retry_after` seconds."""

    code, default_detail = "rate_limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class EmailTaken(Conflict):
    """Another account holds this email."""

    code, default_detail = "email_taken", "An account with this email already exists"


class MobileTaken(Conflict):
    """Another account holds this mobile number."""

    code, default_detail = "mobile_taken", "An account with this mobile number already exists"


class RoleMismatch(Conflict):
    """A role change expected another current role."""

    code, default_detail = "role_mismatch", "The account holds another role"


class AlreadyVerified(Conflict):
    """The email is verified already."""

    code, default_detail = "already_verified", "Email is already verified"


class PhotoLimit(Conflict):
    """The profile holds the most photos it may."""

    code, default_detail = "photo_limit", "A profile holds at most 5 photos"


class ConfirmationRequired(Conflict):
    """A destructive admin action without a valid confirm_token: nothing changed; the extras carry a fresh token."""

    code, default_detail = "confirmation_required", "Confirm this action by repeating it with the confirm_token"


class BalanceBelowZero(Conflict):
    """An adjustment would take the balance below zero."""

    code, default_detail = "balance_below_zero", "The balance cannot go below zero"


class AlreadyResolved(Conflict):
    """A report was resolved already."""

    code, default_detail = "already_resolved", "This report was resolved already"


class RegistrationsClosed(Forbidden):
    """Signups are switched off in the platform settings."""

    code, default_detail = "registrations_closed", "New registrations are closed"


class InvalidResetToken(BadRequest):
    """A reset link that is unknown, used, expired or whose account is gone."""

    code, default_detail = "invalid_reset_token", "This reset link is invalid or has expired"


class MalformedStripeEvent(BadRequest):
    """A verified Stripe body that is not a usable event."""

    code, default_detail = "malformed_event", "Malformed Stripe event"


class InvalidSignature(BadRequest):
    """A webhook whose Stripe signature is missing, wrong or stale."""

    code, default_detail = "invalid_signature", "Invalid Stripe signature"


class InvalidOtp(Unauthorized):
    """A login code that is wrong, expired, used or never issued (one answer for all)."""

    code, default_detail = "invalid_otp", "Invalid or expired code"


class WrongVerificationCode(BadRequest):
    """An email-verification code that is wrong or expired: the caller's login itself is fine."""

    code, default_detail = "invalid_otp", "Invalid or expired code"


class CrossOrigin(Forbidden):
    """A cookie-authenticated call from another origin."""

    code, default_detail = "cross_origin", "Refreshing with the cookie is allowed only from the app"


class NotYourEmail(Forbidden):
    """A verification asked for an email that is not the caller's."""

    code, default_detail = "not_your_email", "You can only verify your own email"


class ImageTooLarge(PayloadTooLarge):
    """An image over the size or dimension limits."""

    code, default_detail = "image_too_large", "Image too large"


class UnknownEvent(BadRequest):
    """A socket event the server does not know."""

    code, default_detail = "unknown_event", "Unknown event"


# -- infrastructure ----------------------------------------------------------------------------


class DependencyDown(InfrastructureError):
    """A dependency needed to answer safely is unavailable (fail closed)."""
