"""One live call per user: a Redis slot per user holding the id of their ringing or connected call.

Both participants' slots are taken together in one Lua call, so two calls racing for one user
cannot both get it. A slot is freed when its call ends (a re-driven reaction); a slot left behind
(a lost reaction) is found stale by the caller of `take`, which checks the holder against the
`calls` read model and frees it. Losing Redis loses no money: the read model is checked too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PREFIX = "tb:call:slot:"
SLOT_TTL_SECONDS = 24 * 3600

_TAKE = """
local busy = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder and holder ~= ARGV[1] then
    busy[#busy + 1] = i
    busy[#busy + 1] = holder
  end
end
if #busy > 0 then return busy end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', tonumber(ARGV[2]))
end
return {}
"""

_RELEASE = """
local freed = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    freed = freed + 1
  end
end
return freed
"""


class CallSlots:
    """The live-call slot of each user."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def take(self, user_ids: Sequence[str], call_id: str) -> dict[str, str]:
        """Take every user's slot for `call_id`, or none: returns {user: holding call} when busy."""
        keys = [PREFIX + u for u in user_ids]
        raw = await self._redis.eval(_TAKE, len(keys), *keys, call_id, str(SLOT_TTL_SECONDS))
        return {user_ids[int(raw[i]) - 1]: str(raw[i + 1]) for i in range(0, len(raw), 2)}

    async def release(self, user_ids: Sequence[str], call_id: str) -> int:
        """Free the slots that `call_id` holds (others are left alone); returns how many."""
        keys = [PREFIX + u for u in user_ids]
        return int(await self._redis.eval(_RELEASE, len(keys), *keys, call_id))

    async def holder(self, user_id: str) -> str | None:
        """The call holding a user's slot, if any."""
        value = await self._redis.get(PREFIX + user_id)
        return None if value is None else str(value)
