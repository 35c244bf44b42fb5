"""What discovery answers show of a place: jittered coordinates and bucketed distances, never more.

The jitter of a user's point is fixed per stored location (HMAC of the user id and the time it was
recorded), between 0.0001° and 0.0005° on each axis: asking again returns the same point, so
averaging many answers cannot recover the rounded position.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from truebond.api.routes_profile import public_body
from truebond.commands.profile import settings_of

JITTER_MAX = 0.0005
JITTER_MIN = 0.0001
BUCKETS_KM = (1, 2, 5, 10, 25, 50, 100, 250, 500)


def _offset(key: bytes, label: str) -> float:
    digest = hmac.new(key, label.encode(), hashlib.sha256).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    magnitude = JITTER_MIN + fraction * (JITTER_MAX - JITTER_MIN)
    return magnitude if digest[4] & 1 else -magnitude


def jittered(key: bytes, user_id: str, lat: float, lng: float, recorded_at: datetime | None) -> tuple[float, float]:
    """The point shown for a user: their rounded point moved by a fixed, secret offset."""
    stamp = recorded_at.isoformat() if recorded_at is not None else ""
    return (
        round(max(-90.0, min(90.0, lat + _offset(key, f"lat|{user_id}|{stamp}"))), 4),
        round(((lng + _offset(key, f"lng|{user_id}|{stamp}") + 180.0) % 360.0) - 180.0, 4),
    )


def bucket(km: float) -> tuple[int, str]:
    """A distance as its bucket: the bound it is under, and a label such as "< 5 km"."""
    for bound in BUCKETS_KM:
        if km < bound:
            return bound, f"< {bound} km"
    return BUCKETS_KM[-1], f"{BUCKETS_KM[-1]}+ km"


def shows_distance(user: dict[str, Any]) -> bool:
    """Whether the user lets others see how far away they are (`privacy.show_distance`)."""
    return bool(settings_of(user)["privacy"]["show_distance"])


def listed(user: dict[str, Any], km: float | None = None) -> dict[str, Any]:
    """A public profile in a list, with the bucketed distance when there is one and it may be shown."""
    body = public_body(user)
    if km is not None and shows_distance(user):
        body["distance_km"], body["distance"] = bucket(km)
    return body
