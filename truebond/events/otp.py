"""OTP audit events on the stream `otp-<sha256 of the normalised email>`; never the code itself."""

from __future__ import annotations

import attrs

from truebond.events.base import Event, event


@event("OtpSent")
@attrs.frozen
class OtpSent(Event):
    """A code was issued for `purpose` (mailed only when the email belongs to an account)."""

    purpose: str
    code_id: str
    expires_at: str
    ip: str = ""
    delivered: bool = False
    replaced_code_id: str | None = None


@event("OtpSendFailed")
@attrs.frozen
class OtpSendFailed(Event):
    """The mail provider refused or failed; the code was discarded and no allowance was used."""

    purpose: str
    code_id: str
    ip: str = ""


@event("OtpVerified")
@attrs.frozen
class OtpVerified(Event):
    """A code was presented correctly and used up."""

    purpose: str
    code_id: str
    ip: str = ""


@event("OtpVerifyFailed")
@attrs.frozen
class OtpVerifyFailed(Event):
    """A verification failed: `wrong`, `expired`, `no_code` or `locked`."""

    purpose: str
    reason: str
    code_id: str | None = None
    tries: int = 0
    ip: str = ""


@event("OtpLocked")
@attrs.frozen
class OtpLocked(Event):
    """Too many wrong tries: the code is void and the purpose is locked until `until`."""

    purpose: str
    code_id: str
    until: str
    ip: str = ""


@event("OtpExpired")
@attrs.frozen
class OtpExpired(Event):
    """A code passed its expiry unused.

    Recorded once, by whichever notices first: a verification presenting it, the next send
    replacing it, or the maintenance sweep (`truebond project`, every 30 s).
    """

    purpose: str
    code_id: str
