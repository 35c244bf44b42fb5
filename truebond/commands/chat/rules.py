"""Who may chat with whom: the checks every chat command makes before it appends anything.

Blocks and shadow-bans are the safety area's: asked only through `projections.blocks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from truebond.commands.unit import Unit
from truebond.errors import Forbidden, NotFound, ValidationFailed
from truebond.events.chat import conversation_id_of
from truebond.projections import blocks
from truebond.projections import users as users_view


def _wants_verified_senders(receiver: Mapping[str, Any]) -> bool:
    safety = (receiver.get("settings") or {}).get("safety") or {}
    return bool(safety.get("require_verified_matches"))


async def ensure_pair(deps: Unit, user_id: str, other_id: str, conversation_id: str | None = None, *, field: str = "receiver_id") -> str:
    """The pair's conversation id, when the two may chat; refuses otherwise.

    422 for oneself, 403 for a `conversation_id` that is not the pair's, 404 for an unknown or
    closed account (and a shadow-banned one: gone for everybody else), 403 when either blocked the other.
    """
    if other_id == user_id:
        raise ValidationFailed([{"loc": ["body", field], "msg": "you cannot chat with yourself"}])
    pair = conversation_id_of(user_id, other_id)
    if conversation_id is not None and conversation_id != pair:
        raise Forbidden("This conversation is not yours")
    other = await users_view.by_id(deps.db, other_id)
    if other is None or other.get("status") != "active":
        raise NotFound("User not found")
    if await blocks.blocked_either_way(deps.db, user_id, other_id):
        raise Forbidden("You cannot chat with this user")
    if await blocks.shadow_banned(deps.db, other_id):
        raise NotFound("User not found")
    return pair


async def ensure_may_message(deps: Unit, sender_id: str, receiver_id: str, conversation_id: str | None) -> str:
    """`ensure_pair`, and a receiver who accepts messages only from verified users gets them only so."""
    pair = await ensure_pair(deps, sender_id, receiver_id, conversation_id)
    receiver = await users_view.by_id(deps.db, receiver_id)
    if receiver is not None and _wants_verified_senders(receiver):
        sender = await users_view.by_id(deps.db, sender_id)
        if sender is None or not sender.get("is_verified"):
            raise Forbidden("This user accepts messages from verified accounts only")
    return pair
