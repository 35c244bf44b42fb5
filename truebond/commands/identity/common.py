"""What the identity commands share: how emails are compared, digests, roles, session tokens."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import attrs

REFRESH_TTL = timedelta(days=30)
ROLES = ("user", "admin", "super_admin")
ADMIN_ROLES = ("admin", "super_admin")


def normalise_email(email: str) -> str:
    """The form an email is compared and stored in."""
    return email.strip().lower()


def digest(value: str) -> str:
    """SHA-256 hex of `value`: claim and OTP stream names (of a normalised email or phone), refresh secrets."""
    return hashlib.sha256(value.encode()).hexdigest()


@attrs.frozen
class SessionTokens:
    """A session's fresh tokens."""

    user_id: str
    session_id: str
    role: str
    access_token: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)
