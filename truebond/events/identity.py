"""Identity events: accounts, email claims, passwords, sessions and roles."""

from __future__ import annotations

import attrs

from truebond.events.base import Event, event, personal


@event("UserRegistered")
@attrs.frozen
class UserRegistered(Event):
    """A new account (stream `user-<id>`); personal fields are encrypted with the user's key."""

    user_id: str
    name: str = personal()
    email: str = personal()
    mobile_number: str = personal()
    password_hash: str = personal()
    age: int = 18
    gender: str = "other"
    interested_in: str = personal(default="everyone")
    intent: str = "dating"
    min_age: int = 18
    max_age: int = 100
    max_distance_km: int = 50
    address_line: str | None = personal(default=None)
    city: str | None = personal(default=None)
    state: str | None = personal(default=None)
    country: str | None = personal(default=None)
    pincode: str | None = personal(default=None)
    referral_code: str = ""
    referred_by: str | None = None


@event("EmailClaimed")
@attrs.frozen
class EmailClaimed(Event):
    """An account took a normalised email (stream `email-<sha256>`), so no other can."""

    user_id: str


@event("EmailReleased")
@attrs.frozen
class EmailReleased(Event):
    """The account holding an email let it go (deletion), so it can be claimed again."""

    user_id: str


@event("PasswordChanged")
@attrs.frozen
class PasswordChanged(Event):
    """A new argon2id password hash for the account."""

    password_hash: str = personal()


@event("RoleGranted")
@attrs.frozen
class RoleGranted(Event):
    """The account's role became `role` (operator CLI only)."""

    role: str
    previous_role: str
    reason: str = ""


@event("SessionStarted")
@attrs.frozen
class SessionStarted(Event):
    """A login opened a session (stream `session-<id>`)."""

    session_id: str
    user_id: str
    refresh_hash: str
    expires_at: str
    device_id: str | None = None
    device: str = ""
    ip: str = ""
    method: str = "password"


@event("SessionRefreshed")
@attrs.frozen
class SessionRefreshed(Event):
    """A refresh token was used and replaced by a new one."""

    refresh_hash: str
    previous_hash: str
    ip: str = ""


@event("SessionRevoked")
@attrs.frozen
class SessionRevoked(Event):
    """The session ended: logout, logout-all, refresh reuse, password reset, suspension."""

    reason: str
