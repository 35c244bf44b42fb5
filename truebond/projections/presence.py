"""Who is online, as others may see it: presence leases filtered by `privacy.show_online`.

The leases live in Redis (`adapters/presence.py`); these are the questions profiles and the
conversation list ask. A user whose `privacy.show_online` (or the older key
`show_online_status`) is off is never shown online to anyone else; they still see themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from truebond.adapters.presence import Presence
from truebond.projections.users import USERS

# The settings keys that hide presence: the client's, and the one the seed's settings used.
HIDING_KEYS = ("show_online", "show_online_status")


def presence_of(unit: Any) -> Presence:
    """The presence adapter over a Unit's Redis and clock."""
    return Presence(unit.redis, unit.clock)


def shows_online(user: Mapping[str, Any]) -> bool:
    """Whether the account lets others see when it is online (on unless turned off)."""
    settings = user.get("settings") or {}
    privacy = settings.get("privacy") if isinstance(settings, Mapping) else None
    if not isinstance(privacy, Mapping):
        return True
    return all(privacy.get(key, True) is not False for key in HIDING_KEYS)


async def online_as_seen_by(unit: Any, viewer_id: str, user: Mapping[str, Any]) -> bool:
    """Whether `viewer_id` sees `user` (a users read-model document) online."""
    user_id = str(user.get("_id", ""))
    if not user_id or (user_id != viewer_id and not shows_online(user)):
        return False
    return await presence_of(unit).is_online(user_id)


async def with_online(unit: Any, viewer_id: str, user: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the document with `is_online` as the viewer may see it (for the profile bodies)."""
    return {**user, "is_online": await online_as_seen_by(unit, viewer_id, user)}


async def visible_online_among(unit: Any, viewer_id: str, user_ids: Iterable[str]) -> set[str]:
    """Which of `user_ids` `viewer_id` sees online (for the conversation list's `online`)."""
    ids = [uid for uid in dict.fromkeys(user_ids) if uid]
    online = await presence_of(unit).online_among(ids)
    if not online:
        return set()
    hidden: set[str] = set()
    others = [uid for uid in online if uid != viewer_id]
    if others:
        cursor = unit.db[USERS.collection].find({"_id": {"$in": others}}, projection={"settings": 1})
        hidden = {str(doc["_id"]) async for doc in cursor if not shows_online(doc)}
    return online - hidden
