"""The call-billing schedule: a Redis sorted set of calls by the time the billing worker must act.

One member per live call, scored by when it next needs the worker (its next minute, the end of
its ringing or of a participant's grace). A worker claims what is due atomically (one Lua call
moves each claimed member a lease ahead), so two workers never take one call at the same time;
a worker that dies holding a claim loses it when the lease runs out and another takes it again.
Finishing a claim sets the next time only if nobody rescheduled the call meanwhile. The set is
short-lived state: `truebond bill` re-derives it from the `calls` read model at start and
periodically, and every tick's charge is idempotent by its event id, so a lost or repeated
claim neither skips nor repeats a charge.

Every script is sent with EVAL (not EVALSHA): `truebond dev`'s in-process Redis drops the
connection after a NOSCRIPT answer.
"""

from __future__ import annotations

from typing import Any

import attrs

KEY = "tb:bill:due"
LEASE_SECONDS = 30.0

_CLAIM = """
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #items, 2 do
  redis.call('ZADD', KEYS[1], ARGV[2], items[i])
  out[#out + 1] = items[i]
  out[#out + 1] = items[i + 1]
end
return out
"""

# Finish a claim: set the next time (or remove the call) only if the member still holds our lease.
_FINISH = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
"""


@attrs.frozen
class Claim:
    """A call the worker holds until `lease`; it was due at `due` (epoch seconds)."""

    call_id: str
    due: float
    lease: float


class BillingSchedule:
    """The sorted set of live calls by next action time (epoch seconds)."""

    def __init__(self, redis: Any, key: str = KEY) -> None:
        self._redis = redis
        self._key = key

    async def schedule(self, call_id: str, at: float) -> None:
        """Look at the call at `at` (replaces any earlier plan for it)."""
        await self._redis.zadd(self._key, {call_id: at})

    async def schedule_no_later(self, call_id: str, at: float) -> None:
        """Look at the call at `at` or sooner (adds it when missing; never postpones it)."""
        await self._redis.zadd(self._key, {call_id: at}, lt=True)

    async def cancel(self, call_id: str) -> None:
        """The call is over: forget it."""
        await self._redis.zrem(self._key, call_id)

    async def claim(self, now: float, *, limit: int = 500, lease: float = LEASE_SECONDS) -> list[Claim]:
        """Take up to `limit` calls due at `now`, each held for `lease` seconds (atomically)."""
        until = now + lease
        raw = await self._redis.eval(_CLAIM, 1, self._key, repr(now), repr(until), str(limit))
        return [Claim(str(raw[i]), float(raw[i + 1]), until) for i in range(0, len(raw), 2)]

    async def finish(self, claim: Claim, next_at: float | None) -> bool:
        """Release a claim: the next time for the call, or None when it is over.

        False (and nothing changed) when the call was rescheduled after the claim: that newer
        plan stands.
        """
        done = await self._redis.eval(_FINISH, 1, self._key, claim.call_id, repr(claim.lease), "" if next_at is None else repr(next_at))
        return bool(done)

    async def when(self, call_id: str) -> float | None:
        """When the call is scheduled (None: not scheduled)."""
        score = await self._redis.zscore(self._key, call_id)
        return None if score is None else float(score)

    async def size(self) -> int:
        """How many calls are scheduled."""
        return int(await self._redis.zcard(self._key))
