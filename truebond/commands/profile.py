"""Profile commands: profile fields, preferences, photos, settings and FCM tokens.

Each command loads the user stream's state (`unit.load`), decides, and appends one event with
optimistic concurrency (`with_retry`); the users read model is updated inline, and every answer
is read back from it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import attrs

from truebond.adapters.images import CleanImage
from truebond.adapters.storage import StorageUnavailable
from truebond.commands.bus import HandlerTable, ReactionTable
from truebond.commands.unit import Unit, new_id
from truebond.errors import Conflict, DependencyDown, NotFound, PhotoLimit, ValidationFailed
from truebond.events.base import Event, Head, Meta
from truebond.events.profile import (
    FcmTokenRegistered,
    FcmTokenRemoved,
    PhotoAdded,
    PreferencesUpdated,
    ProfileUpdated,
    SettingsUpdated,
    encode_urls,
)
from truebond.events.store import ConcurrencyError, with_retry
from truebond.logging import get_logger
from truebond.projections import blocks
from truebond.projections import users as users_view
from truebond.projections.users import USERS

log = get_logger(__name__)

MAX_PHOTOS = 5
PREFERENCE_FIELDS = ("interested_in", "min_age", "max_age", "max_distance_km")

# What a new account's settings are until it changes them (GET /api/settings answers these).
DEFAULT_SETTINGS: Mapping[str, Any] = {
    "notifications": {
        "messages": True,
        "matches": True,
        "likes": True,
        "calls": True,
        "profile_views": True,
        "promotions": False,
        "email": True,
        "push": True,
        "sound": True,
        "vibration": True,
    },
    "privacy": {
        "show_online_status": True,
        "show_distance": True,
        "show_age": True,
        "read_receipts": True,
        "profile_visibility": "everyone",
    },
    "safety": {
        "blur_explicit_images": True,
        "verified_only_messages": False,
        "hide_from_search": False,
        "safe_mode": False,
    },
    "dark_mode": False,
    "language": "en",
}


@attrs.frozen
class ProfileChanges:
    """A validated PUT /api/users/profile body; None leaves a field as it is."""

    name: str | None = None
    bio: str | None = None
    intent: str | None = None
    profile_pictures: list[str] | None = None


def _meta(user_id: str, request_id: str | None) -> Meta:
    return Meta(actor=f"user:{user_id}", request_id=request_id)


async def _state(unit: Unit, user_id: str) -> tuple[dict[str, Any], Head]:
    doc, head = await unit.load(USERS, f"user-{user_id}", user_id)
    if doc is None or doc.get("status") != "active":
        raise NotFound("User not found")
    return doc, head


async def _append(unit: Unit, user_id: str, head: Head, event: Event, event_id: str, request_id: str | None) -> None:
    await unit.append(f"user-{user_id}", head, event, event_id=event_id, meta=_meta(user_id, request_id), subject=user_id)


async def _read(unit: Unit, user_id: str) -> dict[str, Any]:
    doc = await users_view.by_id(unit.db, user_id)
    if doc is None:
        raise NotFound("User not found")
    return doc


async def public_profile(unit: Unit, viewer_id: str, target_id: str) -> dict[str, Any]:
    """The target's users document if the viewer may see it; deleted, suspended, unknown or blocked → 404."""
    if not target_id or len(target_id) > 64:
        raise NotFound("User not found")
    doc = await users_view.by_id(unit.db, target_id)
    if doc is None or doc.get("status") != "active":
        raise NotFound("User not found")
    if viewer_id != target_id and await blocks.blocked_either_way(unit.db, viewer_id, target_id):
        raise NotFound("User not found")
    return doc


def _photos_error() -> ValidationFailed:
    return ValidationFailed([{"loc": ["body", "profile_pictures"], "msg": "only a reorder or subset of your current photos is allowed"}])


async def update_profile(unit: Unit, user_id: str, changes: ProfileChanges, request_id: str | None = None) -> dict[str, Any]:
    """Change name, bio, intent and the photo order/subset as one event; returns the read model."""
    command_id = new_id()

    async def attempt() -> list[str]:
        doc, head = await _state(unit, user_id)
        current = [str(u) for u in doc.get("profile_pictures", [])]
        pictures = changes.profile_pictures
        if pictures is not None and (len(set(pictures)) != len(pictures) or any(p not in current for p in pictures)):
            raise _photos_error()
        event = ProfileUpdated(
            name=changes.name if changes.name is not None and changes.name != doc.get("name") else None,
            bio=changes.bio if changes.bio is not None and changes.bio != doc.get("bio") else None,
            intent=changes.intent if changes.intent is not None and changes.intent != doc.get("intent") else None,
            profile_pictures=encode_urls(pictures) if pictures is not None and pictures != current else None,
        )
        if event == ProfileUpdated():
            return []
        await _append(unit, user_id, head, event, f"profile:{user_id}:{command_id}", request_id)
        return [u for u in current if pictures is not None and u not in pictures]

    removed = await with_retry(attempt)
    for url in removed:
        await _discard(unit, url)
    return await _read(unit, user_id)


async def _discard(unit: Unit, url: str) -> None:
    """Best effort: a photo no longer on the profile is removed from storage."""
    try:
        await unit.storage.delete(url)
    except StorageUnavailable:
        log.warning("profile.photo_discard_failed")


async def update_preferences(unit: Unit, user_id: str, changes: Mapping[str, Any], request_id: str | None = None) -> dict[str, Any]:
    """Change match preferences; min_age ≤ max_age is checked on the merged result (422)."""
    command_id = new_id()

    async def attempt() -> None:
        doc, head = await _state(unit, user_id)
        current = dict(doc.get("preferences") or {})
        merged = {**current, **{k: v for k, v in changes.items() if v is not None}}
        low, high = merged.get("min_age"), merged.get("max_age")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            loc = "min_age" if "min_age" in changes else "max_age"
            raise ValidationFailed([{"loc": ["body", loc], "msg": "min_age must not exceed max_age"}])
        delta = {k: merged[k] for k in PREFERENCE_FIELDS if k in changes and changes[k] is not None and merged[k] != current.get(k)}
        if not delta:
            return
        await _append(unit, user_id, head, PreferencesUpdated(**delta), f"preferences:{user_id}:{command_id}", request_id)

    await with_retry(attempt)
    return dict((await _read(unit, user_id)).get("preferences") or {})


async def ensure_room_for_photo(unit: Unit, user_id: str) -> None:
    """Refuse early (409) when the account already has the maximum number of photos."""
    doc = await _read(unit, user_id)
    if len(doc.get("profile_pictures", [])) >= MAX_PHOTOS:
        raise _too_many_photos()


def _too_many_photos() -> Conflict:
    return PhotoLimit(f"At most {MAX_PHOTOS} photos are allowed")


async def add_photo(unit: Unit, user_id: str, image: CleanImage, request_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """Store a checked photo and append it to the profile (409 at the limit); returns its URL and the read model."""
    await ensure_room_for_photo(unit, user_id)
    try:
        url = await unit.storage.put(image.data, image.content_type, image.extension)
    except StorageUnavailable:
        raise DependencyDown("Photo storage is unavailable, try again later") from None
    event = PhotoAdded(url=url, content_type=image.content_type, width=image.width, height=image.height, size=len(image.data))

    async def attempt() -> None:
        doc, head = await _state(unit, user_id)
        if len(doc.get("profile_pictures", [])) >= MAX_PHOTOS:
            raise _too_many_photos()
        await _append(unit, user_id, head, event, f"photo:{user_id}:{new_id()}", request_id)

    try:
        await with_retry(attempt)
    except (Conflict, NotFound, ConcurrencyError):
        # Lost the race for the last slot (or the account went away): nothing refers to the object.
        # Other failures keep it: the event may be stored, and a dangling photo is worse than an orphan.
        await _discard(unit, url)
        raise
    return url, await _read(unit, user_id)


def settings_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The account's settings: the defaults overlaid with what it changed."""
    return _merged(DEFAULT_SETTINGS, doc.get("settings") or {})


def _merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


async def update_settings(unit: Unit, user_id: str, changes: Mapping[str, Any], request_id: str | None = None) -> dict[str, Any]:
    """Merge a validated partial into the account's settings; returns the full settings."""
    command_id = new_id()

    async def attempt() -> None:
        doc, head = await _state(unit, user_id)
        current = settings_of(doc)
        if _merged(current, changes) == current:
            return
        await _append(
            unit, user_id, head, SettingsUpdated(changes=copy.deepcopy(dict(changes))), f"settings:{user_id}:{command_id}", request_id
        )

    await with_retry(attempt)
    return settings_of(await _read(unit, user_id))


async def register_fcm_token(unit: Unit, user_id: str, token: str, request_id: str | None = None) -> None:
    """Store a device push token (already stored → nothing appended); the newest 10 are kept."""
    command_id = new_id()

    async def attempt() -> None:
        doc, head = await _state(unit, user_id)
        if token in doc.get("fcm_tokens", []):
            return
        await _append(unit, user_id, head, FcmTokenRegistered(token=token), f"fcm:{user_id}:{command_id}", request_id)

    await with_retry(attempt)


async def remove_fcm_token(unit: Unit, user_id: str, token: str | None, request_id: str | None = None) -> None:
    """Remove one device push token, or every token when `token` is None (absent → nothing appended)."""
    command_id = new_id()

    async def attempt() -> None:
        doc, head = await _state(unit, user_id)
        tokens = doc.get("fcm_tokens", [])
        if not tokens or (token is not None and token not in tokens):
            return
        await _append(unit, user_id, head, FcmTokenRemoved(token=token), f"fcm-remove:{user_id}:{command_id}", request_id)

    await with_retry(attempt)


HANDLERS: HandlerTable = {}
REACTIONS: ReactionTable = {}
