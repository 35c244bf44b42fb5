"""The authenticated request's one Redis round trip: allow-list, touch, standing and limits.

One Lua script checks the session's allow-list entry, reads the user's cached standing (status
and role), records the session's last use and counts the request in each of its rate limits,
all in one EVALSHA. The limits are counted in the same lists, with the same moving-window rule,
as `limits`' RedisStorage (`adapters/ratelimit.py`), so both paths share one count per key.

The standing is a cache of the users read model, kept for `STANDING_SECONDS` at most and
dropped by the reactions to every event that changes a status or a role
(`commands/standing.py`), so the next request on any process reads the new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import attrs
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from truebond.adapters.ratelimit import Policy, retry_after
from truebond.adapters.redis_client import LuaScript
from truebond.adapters.session_cache import PREFIX, SEEN_PREFIX

STANDING_PREFIX = "tb:standing:"
# A drop lost to a Redis failure (the reaction is also re-driven) is outlived by at most this.
STANDING_SECONDS = 30

# KEYS: session entry, seen key, standing key, then one list per limit.
# ARGV: user id, seen value, seen ttl, now (wall clock, as `limits` counts), then limit, expiry
# per limit. Answers {kind, role, refused limit index, oldest hit of the refused window}.
_CHECK = """
local owner = redis.call('GET', KEYS[1])
if not owner then return {'session_miss'} end
if owner ~= ARGV[1] then return {'revoked'} end
local standing = redis.call('HMGET', KEYS[3], 'status', 'role')
if not standing[1] then return {'standing_miss'} end
if standing[1] ~= 'active' then return {'inactive', standing[2]} end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
local now = tonumber(ARGV[4])
for i = 4, #KEYS do
  local limit = tonumber(ARGV[3 + (i - 3) * 2])
  local expiry = tonumber(ARGV[4 + (i - 3) * 2])
  local oldest = redis.call('LINDEX', KEYS[i], limit - 1)
  if oldest and tonumber(oldest) >= now - expiry then
    return {'limited', standing[2], tostring(i - 4), oldest}
  end
  redis.call('LPUSH', KEYS[i], ARGV[4])
  redis.call('LTRIM', KEYS[i], 0, limit - 1)
  redis.call('EXPIRE', KEYS[i], expiry)
end
return {'ok', standing[2]}
"""


@attrs.frozen
class Verdict:
    """What the script found: `ok`, `session_miss`, `revoked`, `standing_miss`, `inactive`, `limited`."""

    kind: str
    role: str = "user"
    limited: Policy | None = None
    retry_after: int = 0


class _Batch:
    """Sends the script calls made in one event-loop turn as one pipeline: one write, one read.

    Each request still waits for exactly its own answer; concurrent requests share the socket
    round trip instead of each paying the client's per-call cost.
    """

    def __init__(self, redis: Redis, source: str) -> None:
        self._redis = redis
        self._script = LuaScript(redis, source)
        self._sha = self._script.sha
        self._loaded = False
        self._pending: list[tuple[list[str], list[Any], asyncio.Future[Any]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    def __call__(self, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """The answer of one call, sent with the others of this turn."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._pending:
            task = asyncio.ensure_future(self._flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        self._pending.append((keys, args, future))
        return future

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            rest = batch
            if not self._loaded:
                # EVAL first (LuaScript), so the pipeline's EVALSHAs find the script.
                keys, args, future = batch[0]
                _settle(future, await self._script(keys, args))
                self._loaded, rest = True, batch[1:]
            if rest:
                answers = await self._send(rest)
                for (keys, args, future), answer in zip(rest, answers, strict=True):
                    if isinstance(answer, NoScriptError):  # Redis restarted or flushed its scripts
                        self._loaded = False
                        answer = await self._script(keys, args)
                    _settle(future, answer)
        except BaseException as exc:  # every waiting request must get the failure
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else ConnectionError("cancelled"))
            if not isinstance(exc, Exception):
                raise

    async def _send(self, batch: list[tuple[list[str], list[Any], asyncio.Future[Any]]]) -> list[Any]:
        """EVALSHA every call in one write on one pooled connection, then read each answer.

        (A pipeline would do the same with more client work per command: this is the hot path.)
        """
        payload = b"".join(_pack(b"EVALSHA", self._sha, len(keys), *keys, *args) for keys, args, _ in batch)
        pool = self._redis.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.send_packed_command(payload, check_health=False)
            answers: list[Any] = []
            for _ in batch:
                try:
                    answers.append(await conn.read_response())
                except ResponseError as exc:  # this call's error; the connection reads on
                    answers.append(exc)
            return answers
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)


def _pack(*parts: Any) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _settle(future: asyncio.Future[Any], answer: Any) -> None:
    if future.done():
        return
    if isinstance(answer, Exception):
        future.set_exception(answer)
    else:
        future.set_result(answer)


class AuthGate:
    """Runs the auth script, and fills or drops a user's cached standing."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._check = _Batch(redis, _CHECK)

    async def check(
        self, session_id: str, user_id: str, *, seen_at: float, seen_ttl: int, now: float, limits: Sequence[tuple[Policy, str]] = ()
    ) -> Verdict:
        """One round trip: allow-list, standing, touch, then each limit in order (the first refusal stops)."""
        keys = [PREFIX + session_id, SEEN_PREFIX + session_id, STANDING_PREFIX + user_id]
        args: list[Any] = [user_id, repr(seen_at), seen_ttl, repr(now)]
        for policy, key in limits:
            item = policy.item
            keys.append(policy.storage_key(key))
            args += [item.amount, item.get_expiry()]
        answer = await self._check(keys, args)
        kind = str(answer[0])
        if kind != "limited":
            return Verdict(kind, str(answer[1]) if len(answer) > 1 and answer[1] else "user")
        policy = limits[int(answer[2])][0]
        reset = float(answer[3]) + policy.item.get_expiry()
        return Verdict(kind, str(answer[1] or "user"), policy, retry_after(reset, now))

    async def fill_standing(self, user_id: str, status: str, role: str) -> None:
        """Cache a user's standing as the users read model holds it."""
        key = STANDING_PREFIX + user_id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"status": status, "role": role})
            pipe.expire(key, STANDING_SECONDS)
            await pipe.execute()

    async def drop_standing(self, user_id: str) -> None:
        """Forget a user's cached standing (its status or role changed); a Redis failure raises."""
        await self._redis.delete(STANDING_PREFIX + user_id)
