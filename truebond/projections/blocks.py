"""Safety between users: the queries every list, profile, message and call check asks.

Blocking and shadow-bans come with the safety work; until then nobody has blocked anybody and
nobody is shadow-banned. Every place that must hide a pair from each other, or keep a
shadow-banned user's messages and profile from others, calls these functions, so the safety read
models plug in here and nowhere else.
"""

from __future__ import annotations

from typing import Any


async def blocked_either_way(db: Any, a: str, b: str) -> bool:
    """Whether `a` blocked `b` or `b` blocked `a` (always False until blocks exist)."""
    return False


async def shadow_banned(db: Any, user_id: str) -> bool:
    """Whether `user_id` is shadow-banned: their messages reach nobody, their profile leaves lists."""
    return False


async def hidden_from(db: Any, viewer_id: str) -> set[str]:
    """Ids of users `viewer_id` must not see in any list: blocked either way, or shadow-banned."""
    return set()
