"""Blocks between users: the one query every list, profile, message and call check asks.

Blocking itself comes with the safety work; until then nobody has blocked anybody. Every place
that must hide a pair from each other calls `blocked_either_way`, so the blocks read model
plugs in here and nowhere else.
"""

from __future__ import annotations

from typing import Any


async def blocked_either_way(db: Any, a: str, b: str) -> bool:
    """Whether `a` blocked `b` or `b` blocked `a` (always False until blocks exist)."""
    return False
