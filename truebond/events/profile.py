"""Profile events on the user stream `user-<id>`: profile, preferences, photos, settings, FCM tokens.

The subject of every event is the user id, so erasing the account's key shreds the personal
fields (name, bio, photo URLs, interests, device tokens) in all past events.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from truebond.events.base import Event, event, personal

MAX_FCM_TOKENS = 10  # the read model keeps the newest ones


def encode_urls(urls: list[str]) -> str:
    """A photo URL list as one string, so it can be encrypted as a single personal field."""
    return json.dumps(list(urls), separators=(",", ":"))


def decode_urls(value: str | None) -> list[str]:
    """The photo URL list of `encode_urls`; an erased or malformed value reads as no photos."""
    if not value:
        return []
    try:
        data = json.loads(value)
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    return [u for u in data if isinstance(u, str)]


@event("ProfileUpdated")
@attrs.frozen
class ProfileUpdated(Event):
    """The owner changed public profile fields; None means unchanged.

    `profile_pictures` (an `encode_urls` string) is the complete new photo list: a reorder or a
    subset of the photos the account already had, so profile and photo changes stay one event.
    """

    name: str | None = personal(default=None)
    bio: str | None = personal(default=None)
    intent: str | None = None
    profile_pictures: str | None = personal(default=None)


@event("PreferencesUpdated")
@attrs.frozen
class PreferencesUpdated(Event):
    """The owner changed match preferences; None means unchanged (min ≤ max holds after merging)."""

    interested_in: str | None = personal(default=None)
    min_age: int | None = None
    max_age: int | None = None
    max_distance_km: int | None = None


@event("PhotoAdded")
@attrs.frozen
class PhotoAdded(Event):
    """A checked, re-encoded photo was stored and appended to the account's photo list."""

    url: str = personal()
    content_type: str = "image/jpeg"
    width: int = 0
    height: int = 0
    size: int = 0


@event("SettingsUpdated")
@attrs.frozen
class SettingsUpdated(Event):
    """App settings changed: `changes` is the validated partial (nested sections merged key by key)."""

    changes: dict[str, Any] = attrs.field(factory=dict)


@event("FcmTokenRegistered")
@attrs.frozen
class FcmTokenRegistered(Event):
    """A device push token was stored for the account (stored only; nothing is ever sent)."""

    token: str = personal()


@event("FcmTokenRemoved")
@attrs.frozen
class FcmTokenRemoved(Event):
    """A device push token was removed; None removes every token of the account."""

    token: str | None = personal(default=None)
