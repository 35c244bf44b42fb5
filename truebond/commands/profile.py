"""Profile commands: profile fields, preferences, photos, settings and FCM tokens.

Each handler decides on the caller's users read model (caught up to the `user-<id>` head),
appends at most one event with optimistic concurrency (`decide_and_append`), and answers from
the read model, updated inline. Photos a profile edit drops leave storage in a reaction to
`ProfileUpdated`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from truebond.adapters.images import CleanImage
from truebond.adapters.storage import StorageUnavailable
from truebond.commands.bus import Bus, Command, Context, HandlerTable, Reaction, ReactionTable
from truebond.commands.decide import Decision, decide_and_append, read_model
from truebond.commands.unit import Unit, new_id
from truebond.errors import Conflict, DependencyDown, NotFound, PhotoLimit, ValidationFailed
from truebond.events.base import Event, Recorded
from truebond.events.crypto import ERASED
from truebond.events.profile import (
    FcmTokenRegistered,
    FcmTokenRemoved,
    PhotoAdded,
    PreferencesUpdated,
    ProfileUpdated,
    SettingsUpdated,
    decode_urls,
    encode_urls,
)
from truebond.events.store import ConcurrencyError
from truebond.logging import get_logger
from truebond.projections import users as users_view
from truebond.projections.users import USERS

log = get_logger(__name__)

MAX_PHOTOS = 5

# What a new account's settings are until it changes them (GET /api/settings answers these): the
# keys the client sends and reads. Effects: `privacy.show_online` false hides presence from others,
# `show_last_seen` false hides last-seen times, `show_distance` false leaves the distance out of
# discovery results, `safety.hide_from_search` keeps the account out of every discovery list, and
# `require_verified_matches` lets only verified users message or call it; the rest are stored.
DEFAULT_SETTINGS: Mapping[str, Any] = {
    "notifications": {"messages": True, "matches": True, "nearby": True, "marketing": False},
    "privacy": {"show_online": True, "show_last_seen": True, "show_distance": True},
    "safety": {"block_screenshots": False, "require_verified_matches": False, "hide_from_search": False},
    "dark_mode": False,
    "language": "en",
}


@attrs.frozen
class UpdateProfile(Command[dict[str, Any]]):
    """Change name, bio, intent and the order/subset of the account's photos; None leaves a field."""

    user_id: str
    name: str | None = None
    bio: str | None = None
    intent: str | None = None
    profile_pictures: list[str] | None = None


@attrs.frozen
class UpdatePreferences(Command[dict[str, Any]]):
    """Change match preferences; None leaves a field. Answers the merged preferences."""

    user_id: str
    interested_in: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    max_distance_km: int | None = None


@attrs.frozen
class AddedPhoto:
    """What an upload answers: the new photo's URL and the account's photo list after it."""

    url: str
    profile_pictures: list[str]


@attrs.frozen
class UploadPhoto(Command[AddedPhoto]):
    """Store a photo the edge already checked and re-encoded, and add it to the profile."""

    user_id: str
    image: CleanImage


@attrs.frozen
class UpdateSettings(Command[dict[str, Any]]):
    """Merge a validated partial (nested sections key by key) into the settings; answers them all."""

    user_id: str
    changes: Mapping[str, Any]


@attrs.frozen
class RegisterFcmToken(Command[None]):
    """Store a device push token (the newest 10 are kept)."""

    user_id: str
    token: str


@attrs.frozen
class RemoveFcmToken(Command[None]):
    """Remove one device push token, or every token when `token` is None."""

    user_id: str
    token: str | None = None


def _active(doc: dict[str, Any] | None) -> dict[str, Any]:
    if doc is None or doc.get("status") != "active":
        raise NotFound("User not found")
    return doc


async def _decide(deps: Unit, ctx: Context, user_id: str, kind: str, decide: Callable[[dict[str, Any]], Event | None]) -> None:
    """Decide on the active account's read model and append what `decide` returns (if anything)."""
    stream, event_id = f"user-{user_id}", f"{kind}:{user_id}:{new_id()}"

    def step(doc: dict[str, Any] | None) -> Decision | None:
        event = decide(_active(doc))
        return None if event is None else Decision(event, event_id, subject=user_id)

    await decide_and_append(deps, stream, read_model(USERS, stream, user_id), step, ctx.meta())


async def _read(deps: Unit, user_id: str) -> dict[str, Any]:
    doc = await users_view.by_id(deps.db, user_id)
    if doc is None:
        raise NotFound("User not found")
    return doc


def _changed(new: str | None, old: Any) -> str | None:
    return new if new is not None and new != old else None


def _photos_error() -> ValidationFailed:
    return ValidationFailed([{"loc": ["body", "profile_pictures"], "msg": "only a reorder or subset of your current photos is allowed"}])


async def update_profile(cmd: UpdateProfile, ctx: Context, deps: Unit) -> dict[str, Any]:
    """Change the profile as one event (nothing when nothing changes); returns the read model."""

    def decide(doc: dict[str, Any]) -> Event | None:
        current = [str(u) for u in doc.get("profile_pictures", [])]
        pictures = cmd.profile_pictures
        if pictures is not None and (len(set(pictures)) != len(pictures) or any(p not in current for p in pictures)):
            raise _photos_error()
        event = ProfileUpdated(
            name=_changed(cmd.name, doc.get("name")),
            bio=_changed(cmd.bio, doc.get("bio")),
            intent=_changed(cmd.intent, doc.get("intent")),
            profile_pictures=encode_urls(pictures) if pictures is not None and pictures != current else None,
        )
        return None if event == ProfileUpdated() else event

    await _decide(deps, ctx, cmd.user_id, "profile", decide)
    return await _read(deps, cmd.user_id)


async def update_preferences(cmd: UpdatePreferences, ctx: Context, deps: Unit) -> dict[str, Any]:
    """Change match preferences; min_age ≤ max_age is checked on the merged result (422)."""
    changes = {k: v for k, v in attrs.asdict(cmd).items() if k != "user_id" and v is not None}

    def decide(doc: dict[str, Any]) -> Event | None:
        current = dict(doc.get("preferences") or {})
        merged = {**current, **changes}
        low, high = merged.get("min_age"), merged.get("max_age")
        if isinstance(low, int) and isinstance(high, int) and low > high:
            loc = "min_age" if "min_age" in changes else "max_age"
            raise ValidationFailed([{"loc": ["body", loc], "msg": "min_age must not exceed max_age"}])
        delta = {k: v for k, v in changes.items() if v != current.get(k)}
        return PreferencesUpdated(**delta) if delta else None

    await _decide(deps, ctx, cmd.user_id, "preferences", decide)
    return dict((await _read(deps, cmd.user_id)).get("preferences") or {})


def ensure_room_for_photo(doc: Mapping[str, Any]) -> None:
    """Refuse (409) when the account already has the maximum number of photos."""
    if len(doc.get("profile_pictures", [])) >= MAX_PHOTOS:
        raise PhotoLimit(f"At most {MAX_PHOTOS} photos are allowed")


async def upload_photo(cmd: UploadPhoto, ctx: Context, deps: Unit) -> AddedPhoto:
    """Store the photo and append it to the profile (409 at the limit)."""
    ensure_room_for_photo(await _read(deps, cmd.user_id))
    image = cmd.image
    try:
        url = await deps.storage.put(image.data, image.content_type, image.extension)
    except StorageUnavailable:
        raise DependencyDown("Photo storage is unavailable, try again later") from None
    event = PhotoAdded(url=url, content_type=image.content_type, width=image.width, height=image.height, size=len(image.data))

    def decide(doc: dict[str, Any]) -> Event:
        ensure_room_for_photo(doc)
        return event

    try:
        await _decide(deps, ctx, cmd.user_id, "photo", decide)
    except (Conflict, NotFound, ConcurrencyError):
        # Lost the race for the last slot (or the account went away): nothing refers to the object.
        # Other failures keep it: the event may be stored, and a dangling photo is worse than an orphan.
        await _discard(deps, url)
        raise
    return AddedPhoto(url, list((await _read(deps, cmd.user_id)).get("profile_pictures", [])))


async def _discard(deps: Unit, url: str) -> None:
    """Best effort: a photo no longer on the profile is removed from storage."""
    try:
        await deps.storage.delete(url)
    except StorageUnavailable:
        log.warning("profile.photo_discard_failed")


def _photos_after(history: Iterable[Recorded]) -> list[str]:
    """The account's photo list after these events of its stream."""
    photos: list[str] = []
    for rec in history:
        if isinstance(rec.event, PhotoAdded):
            photos.append(rec.event.url)
        elif isinstance(rec.event, ProfileUpdated) and rec.event.profile_pictures is not None:
            photos = decode_urls(rec.event.profile_pictures)
    return photos


async def discard_dropped_photos(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Remove from storage the photos a profile edit dropped from the list it had before.

    Idempotent: a dropped URL never comes back (uploads get fresh keys), and deleting a missing
    object is harmless, so running this again changes nothing.
    """
    e = rec.event
    assert isinstance(e, ProfileUpdated)
    if e.profile_pictures is None or e.profile_pictures == ERASED:
        return
    kept = set(decode_urls(e.profile_pictures))
    before = _photos_after(await bus.deps.store.load(rec.stream, until_version=rec.version - 1))
    for url in before:
        if url not in kept and url != ERASED:
            await _discard(bus.deps, url)


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


async def update_settings(cmd: UpdateSettings, ctx: Context, deps: Unit) -> dict[str, Any]:
    """Merge the partial into the account's settings (nothing appended when it changes nothing)."""

    def decide(doc: dict[str, Any]) -> Event | None:
        current = settings_of(doc)
        return None if _merged(current, cmd.changes) == current else SettingsUpdated(changes=copy.deepcopy(dict(cmd.changes)))

    await _decide(deps, ctx, cmd.user_id, "settings", decide)
    return settings_of(await _read(deps, cmd.user_id))


async def register_fcm_token(cmd: RegisterFcmToken, ctx: Context, deps: Unit) -> None:
    """Store a device push token (already stored → nothing appended)."""

    def decide(doc: dict[str, Any]) -> Event | None:
        return None if cmd.token in doc.get("fcm_tokens", []) else FcmTokenRegistered(token=cmd.token)

    await _decide(deps, ctx, cmd.user_id, "fcm", decide)


async def remove_fcm_token(cmd: RemoveFcmToken, ctx: Context, deps: Unit) -> None:
    """Remove one token, or every token (absent → nothing appended)."""

    def decide(doc: dict[str, Any]) -> Event | None:
        tokens = doc.get("fcm_tokens", [])
        if not tokens or (cmd.token is not None and cmd.token not in tokens):
            return None
        return FcmTokenRemoved(token=cmd.token)

    await _decide(deps, ctx, cmd.user_id, "fcm-remove", decide)


HANDLERS: HandlerTable = {
    UpdateProfile: update_profile,
    UpdatePreferences: update_preferences,
    UploadPhoto: upload_photo,
    UpdateSettings: update_settings,
    RegisterFcmToken: register_fcm_token,
    RemoveFcmToken: remove_fcm_token,
}
# Losing the discard would leave a photo the owner removed readable at its URL: re-driven.
REACTIONS: ReactionTable = {ProfileUpdated: [Reaction(discard_dropped_photos, redrive=True)]}
