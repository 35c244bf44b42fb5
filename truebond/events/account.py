"""Account safety events on the stream `user-<id>`: verification, password resets, deletion, erasure."""

from __future__ import annotations

import attrs

from truebond.events.base import Event, event


@event("EmailVerified")
@attrs.frozen
class EmailVerified(Event):
    """The account proved it receives mail at its email (`email_otp` or `otp_login`)."""

    method: str


@event("PasswordResetRequested")
@attrs.frozen
class PasswordResetRequested(Event):
    """A reset link was mailed; the token itself is never stored in an event."""

    expires_at: str
    ip: str = ""


@event("AccountDeleted")
@attrs.frozen
class AccountDeleted(Event):
    """The person deleted their account: read models are anonymised and their key destroyed."""

    user_id: str
    reason: str = "user_request"


@event("AccountErased")
@attrs.frozen
class AccountErased(Event):
    """The deletion finished: sessions ended, email and phone released, photos and key destroyed.

    Until this event is stored, the maintenance sweep runs the erasure again (it is idempotent).
    """

    user_id: str
