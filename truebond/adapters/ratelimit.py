"""Rate limits on Redis through the `limits` library (moving window), failing closed."""

from __future__ import annotations

import math
import time
from functools import lru_cache

import attrs
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from truebond.errors import DependencyDown, RateLimited


@attrs.frozen
class Policy:
    """A named limit such as `10/15minutes`, counted per key."""

    name: str
    rate: str

    @property
    def item(self) -> RateLimitItem:
        """The parsed `limits` item."""
        return _parse(self.rate)

    def storage_key(self, key: str) -> str:
        """The Redis list `limits`' moving window keeps for this policy and key (shared with AuthGate)."""
        return _storage_key(self.name, self.rate, key)


# `limits`' RedisStorage prefix: the auth path's Lua script counts in the very same lists.
REDIS_PREFIX = RedisStorage.PREFIX


@lru_cache(maxsize=64)
def _parse(rate: str) -> RateLimitItem:
    return parse(rate)


@lru_cache(maxsize=8192)
def _storage_key(name: str, rate: str, key: str) -> str:
    return REDIS_PREFIX + ":" + _parse(rate).key_for(name, key)


# The numbers of DESIGN.md "Policies"; route tables refer to these by name.
DEFAULT_IP = Policy("ip", "120/minute")
DEFAULT_USER = Policy("user", "300/minute")
LOGIN = Policy("login", "10/15minutes")
ADMIN_LOGIN = Policy("admin_login", "10/15minutes")
SIGNUP = Policy("signup", "20/hour")
REFRESH = Policy("refresh", "60/minute")
ADMIN_ACTIONS = Policy("admin", "60/minute")


class RateLimiter:
    """Count hits per (policy, key) in Redis; raise RateLimited or DependencyDown."""

    def __init__(self, redis_url: str | None) -> None:
        storage: Storage
        if redis_url is None:
            # `truebond dev` with its in-process Redis: counters live in this one process.
            storage = MemoryStorage()
        else:
            storage = RedisStorage(
                "async+" + redis_url, implementation="redispy", wrap_exceptions=True, socket_connect_timeout=2, socket_timeout=2
            )
        self._limiter = MovingWindowRateLimiter(storage)
        self.in_redis = redis_url is not None

    async def hit(self, policy: Policy, key: str) -> None:
        """Count one hit; over the limit raises RateLimited with the seconds to wait."""
        item = policy.item
        try:
            allowed = await self._limiter.hit(item, policy.name, key)
            if allowed:
                return
            stats = await self._limiter.get_window_stats(item, policy.name, key)
        except (StorageError, RedisError, OSError) as exc:
            raise DependencyDown("Rate limiter unavailable") from exc
        raise RateLimited(retry_after=retry_after(stats.reset_time, time.time()))

    async def reset(self, policy: Policy, key: str) -> None:
        """Forget the hits of one key (e.g. after a successful login)."""
        try:
            await self._limiter.clear(policy.item, policy.name, key)
        except (StorageError, RedisError, OSError) as exc:
            raise DependencyDown("Rate limiter unavailable") from exc


def retry_after(reset_time: float, now: float) -> int:
    """Whole seconds until a refused key's oldest hit leaves the window (at least 1)."""
    return math.ceil(max(1.0, reset_time - now))
