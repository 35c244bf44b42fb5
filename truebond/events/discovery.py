"""Discovery events: a user's location (`location-<user>`) and who viewed a profile (`views-<user>`).

Coordinates are personal data: `coords` ("lat,lng", already rounded to 3 decimals) is encrypted
with the owner's key, so erasing the account shreds every location it ever sent.
"""

from __future__ import annotations

import attrs

from truebond.events.base import Event, event, personal


def encode_coords(lat: float, lng: float) -> str:
    """Rounded coordinates as one string, so they are encrypted as a single personal field."""
    return f"{lat:.3f},{lng:.3f}"


def decode_coords(value: str) -> tuple[float, float] | None:
    """The (lat, lng) of `encode_coords`; None for an erased or malformed value."""
    lat, sep, lng = value.partition(",")
    if not sep:
        return None
    try:
        return float(lat), float(lng)
    except ValueError:
        return None


@event("LocationUpdated")
@attrs.frozen
class LocationUpdated(Event):
    """The owner sent their position (rounded to 3 decimals); at most one per 30 s is recorded."""

    coords: str = personal()


@event("LocationCleared")
@attrs.frozen
class LocationCleared(Event):
    """The stored position was dropped (the account was deleted)."""

    reason: str = "account_deleted"


@event("ProfileViewed")
@attrs.frozen
class ProfileViewed(Event):
    """Another user opened the profile; one per viewer per day (idempotency id)."""

    viewer_id: str
