"""Safety between users: the queries every list, profile, message and call check asks.

Every place that must hide a pair from each other, or keep a shadow-banned user's messages and
profile from others, calls these functions; they read the `block_lists` read model
(projections/safety.py) and the `shadow_banned` flag of the users read model.
"""

from __future__ import annotations

from typing import Any

from truebond.projections import safety

USERS = "users"


async def blocked_either_way(db: Any, a: str, b: str) -> bool:
    """Whether `a` blocked `b` or `b` blocked `a`."""
    if a == b:
        return False
    return await safety.has_blocked(db, a, b) or await safety.has_blocked(db, b, a)


async def shadow_banned(db: Any, user_id: str) -> bool:
    """Whether `user_id` is shadow-banned: their messages reach nobody, their profile leaves lists."""
    doc = await db[USERS].find_one({"_id": user_id, "shadow_banned": True}, projection={"_id": 1})
    return doc is not None


async def out_of_sight(db: Any, viewer_id: str, other_id: str) -> bool:
    """Whether `viewer_id` must not see or reach `other_id`: blocked either way, or `other_id` shadow-banned.

    Never oneself: a shadow-banned user sees and reaches everyone as before (nothing tells them).
    """
    if viewer_id == other_id:
        return False
    return await blocked_either_way(db, viewer_id, other_id) or await shadow_banned(db, other_id)


async def shadow_banned_ids(db: Any) -> set[str]:
    """Ids of every shadow-banned account."""
    cursor = db[USERS].find({"shadow_banned": True}, projection={"_id": 1})
    return {str(doc["_id"]) async for doc in cursor}


async def hidden_from(db: Any, viewer_id: str) -> set[str]:
    """Ids of users `viewer_id` must not see in any list: blocked either way, or shadow-banned.

    A shadow-banned viewer still sees everyone else (nothing tells them), never themselves hidden.
    """
    hidden = {str(e["user_id"]) for e in await safety.blocked_by_me(db, viewer_id)}
    hidden.update(await safety.who_blocked(db, viewer_id))
    hidden.update(await shadow_banned_ids(db))
    hidden.discard(viewer_id)
    return hidden
