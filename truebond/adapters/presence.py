"""Presence in Redis: a lease per socket connection; a user is online while any lease lives.

Each connection (user id, socket id) holds a lease whose expiry time is its score in two sorted
sets: `tb:presence:user:<id>` (the user's leases, by socket id) and `tb:presence:expiry` (every
lease, for the sweep). Scores come from the injected clock, so a controllable clock drives
expiry in tests, and a lease's liveness never depends on a sweep having run: `is_online` counts
only leases whose expiry lies ahead. The web process renews the leases of its live sockets
(those still answering Engine.IO pings) well inside the 60 s lease; a server killed with SIGKILL
renews nothing, and its users go offline when their leases run out.

Which users were announced online is kept in `tb:presence:announced`, so each transition
(offline → online, online → offline) is reported exactly once, by the one Lua script call that
made it, whichever process runs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from truebond.adapters.redis_client import LuaScript
from truebond.clock import Clock

LEASE_SECONDS = 60.0
USER_KEY = "tb:presence:user:"
EXPIRY_KEY = "tb:presence:expiry"
ANNOUNCED_KEY = "tb:presence:announced"
# A user's lease set outlives its newest lease by this much (real time): garbage collection only.
GC_MARGIN_SECONDS = 300

# KEYS: expiry set, announced set. ARGV: user prefix, expiry ms, gc ttl ms, then (user id, sid) pairs.
# Returns the users that came online with these leases.
_OPEN = """
local came = {}
for i = 4, #ARGV, 2 do
  local uid, sid = ARGV[i], ARGV[i + 1]
  local ukey = ARGV[1] .. uid
  redis.call('ZADD', ukey, ARGV[2], sid)
  redis.call('PEXPIRE', ukey, ARGV[3])
  redis.call('ZADD', KEYS[1], ARGV[2], uid .. ' ' .. sid)
  if redis.call('SADD', KEYS[2], uid) == 1 then
    table.insert(came, uid)
  end
end
return came
"""

# KEYS: expiry set, announced set. ARGV: user prefix, now ms, user id, sid.
# Returns 1 when that was the user's last live lease (they went offline).
_CLOSE = """
local ukey = ARGV[1] .. ARGV[3]
redis.call('ZREM', ukey, ARGV[4])
redis.call('ZREM', KEYS[1], ARGV[3] .. ' ' .. ARGV[4])
if redis.call('ZCOUNT', ukey, '(' .. ARGV[2], '+inf') == 0 and redis.call('SREM', KEYS[2], ARGV[3]) == 1 then
  return 1
end
return 0
"""

# KEYS: expiry set, announced set. ARGV: user prefix, now ms, batch size.
# Removes expired leases; returns the users left with no live lease (they went offline).
_SWEEP = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local gone = {}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, ' ', 1, true)
  local uid = string.sub(member, 1, sep - 1)
  local ukey = ARGV[1] .. uid
  redis.call('ZREMRANGEBYSCORE', ukey, '-inf', ARGV[2])
  if redis.call('ZCOUNT', ukey, '(' .. ARGV[2], '+inf') == 0 and redis.call('SREM', KEYS[2], uid) == 1 then
    table.insert(gone, uid)
  end
end
return gone
"""


class Presence:
    """Connection leases in Redis and the online questions profiles and lists ask."""

    def __init__(self, redis: Any, clock: Clock, *, lease_seconds: float = LEASE_SECONDS) -> None:
        self._redis = redis
        self._clock = clock
        self.lease_seconds = lease_seconds
        self._open = LuaScript(redis, _OPEN)
        self._close = LuaScript(redis, _CLOSE)
        self._sweep = LuaScript(redis, _SWEEP)

    def _now_ms(self) -> int:
        return int(self._clock.time() * 1000)

    async def open(self, user_id: str, sid: str) -> bool:
        """Take (or renew) the lease of one connection; True when the user just came online."""
        return bool(await self.renew([(user_id, sid)]))

    async def renew(self, leases: Iterable[tuple[str, str]]) -> list[str]:
        """Renew the leases of live connections (user id, sid); returns users who came (back) online."""
        pairs = [part for lease in leases for part in lease]
        if not pairs:
            return []
        expiry = self._now_ms() + int(self.lease_seconds * 1000)
        gc_ms = int((self.lease_seconds + GC_MARGIN_SECONDS) * 1000)
        came = await self._open([EXPIRY_KEY, ANNOUNCED_KEY], [USER_KEY, expiry, gc_ms, *pairs])
        return [str(uid) for uid in came]

    async def close(self, user_id: str, sid: str) -> bool:
        """End one connection's lease; True when it was the user's last one (they went offline)."""
        gone = await self._close([EXPIRY_KEY, ANNOUNCED_KEY], [USER_KEY, self._now_ms(), user_id, sid])
        return bool(gone)

    async def expire(self, batch: int = 1000) -> list[str]:
        """Remove leases whose time ran out (a crashed server's); returns users who went offline."""
        now = self._now_ms()
        gone: list[str] = []
        while True:
            gone.extend(str(uid) for uid in await self._sweep([EXPIRY_KEY, ANNOUNCED_KEY], [USER_KEY, now, batch]))
            if not await self._redis.zcount(EXPIRY_KEY, "-inf", now):
                return gone

    async def is_online(self, user_id: str) -> bool:
        """Whether any lease of the user is still running."""
        return bool(await self._redis.zcount(USER_KEY + user_id, f"({self._now_ms()}", "+inf"))

    async def online_among(self, user_ids: Iterable[str]) -> set[str]:
        """Which of `user_ids` are online (one round trip)."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return set()
        now = f"({self._now_ms()}"
        async with self._redis.pipeline(transaction=False) as pipe:
            for uid in ids:
                pipe.zcount(USER_KEY + uid, now, "+inf")
            counts = await pipe.execute()
        return {uid for uid, count in zip(ids, counts, strict=True) if count}
