"""Two-step confirmation of destructive admin actions: single-use tokens in Redis.

A token is bound to the admin, the action and the target: its Redis key is a digest of all four,
so presenting it with another admin, action or target finds nothing. GETDEL makes it single use
even under concurrent presentations; it lives 5 minutes (Redis TTL, and the expiry stored in the
value is checked against the service clock too).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from redis.exceptions import RedisError

from truebond.clock import Clock
from truebond.errors import DependencyDown

TTL_SECONDS = 300
PREFIX = "tb:confirm:"


class ConfirmTokens:
    """Issue and consume confirmation tokens."""

    def __init__(self, redis: Any, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock

    @staticmethod
    def _key(token: str, admin_id: str, action: str, target_id: str) -> str:
        bound = "\x1f".join((admin_id, action, target_id, token))
        return PREFIX + hashlib.sha256(bound.encode()).hexdigest()

    async def issue(self, admin_id: str, action: str, target_id: str) -> str:
        """A fresh token for this admin, action and target, valid for 5 minutes."""
        token = secrets.token_urlsafe(24)
        expires = self._clock.time() + TTL_SECONDS
        try:
            await self._redis.set(self._key(token, admin_id, action, target_id), f"{expires:.3f}", ex=TTL_SECONDS)
        except (RedisError, OSError) as exc:
            raise DependencyDown() from exc
        return token

    async def consume(self, token: str, admin_id: str, action: str, target_id: str) -> bool:
        """Use a token up; True only for an unexpired token issued for exactly these."""
        if not token or len(token) > 128:
            return False
        try:
            value = await self._redis.getdel(self._key(token, admin_id, action, target_id))
        except (RedisError, OSError) as exc:
            raise DependencyDown() from exc
        if value is None:
            return False
        try:
            expires = float(value)
        except (TypeError, ValueError):
            return False
        return self._clock.time() < expires
