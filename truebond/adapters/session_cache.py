"""The Redis allow-list of live session ids (a cache; the session events are the truth)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

PREFIX = "tb:sess:"
SEEN_PREFIX = "tb:seen:"
# An entry lives no longer than an access token: if a revocation's DEL is ever lost to a Redis
# failure, the stale entry cannot outlive the tokens it vouches for; misses fall back to the
# sessions read model, which holds the truth.
MAX_ENTRY_SECONDS = 15 * 60


class SessionCache:
    """Live sessions by id, with their last-seen time."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def allow(self, session_id: str, user_id: str, ttl_seconds: int) -> None:
        """Mark a session live for up to `ttl_seconds`; a Redis failure is tolerated."""
        try:
            await self._redis.set(PREFIX + session_id, user_id, ex=max(1, min(ttl_seconds, MAX_ENTRY_SECONDS)))
        except RedisError:
            return

    async def revoke(self, session_id: str) -> None:
        """Drop a session from the allow-list."""
        try:
            await self._redis.delete(PREFIX + session_id, SEEN_PREFIX + session_id)
        except RedisError:
            return

    async def owner(self, session_id: str) -> str | None:
        """The user of a cached live session, or None on a miss or a Redis failure."""
        try:
            value = await self._redis.get(PREFIX + session_id)
        except RedisError:
            return None
        return None if value is None else str(value)

    async def touch(self, session_id: str, at: float, ttl_seconds: int) -> None:
        """Record that the session was just used."""
        try:
            await self._redis.set(SEEN_PREFIX + session_id, str(at), ex=max(1, ttl_seconds))
        except RedisError:
            return

    async def last_seen(self, session_ids: list[str]) -> dict[str, float]:
        """Last-use times of the given sessions that Redis knows."""
        if not session_ids:
            return {}
        try:
            values = await self._redis.mget([SEEN_PREFIX + s for s in session_ids])
        except RedisError:
            return {}
        return {sid: float(v) for sid, v in zip(session_ids, values, strict=True) if v is not None}
