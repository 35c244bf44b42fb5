"""OTP codes, tries, send windows, locks and reset tokens in Redis: the only OTP store.

Every decision (expiry, lock, send spacing, hourly windows) is taken inside one Lua script
against timestamps from the injected clock, so it is atomic across servers and tests can move
time. Redis TTLs are only generous clean-up. Any Redis failure raises DependencyDown: no check
is ever skipped. Live codes are also listed by expiry time (ids only), so the maintenance sweep
can audit the ones that run out unused.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Literal

import attrs
from redis.asyncio import Redis
from redis.exceptions import RedisError

from truebond.adapters.redis_client import LuaScript as _Script
from truebond.clock import Clock
from truebond.errors import DependencyDown, RateLimited

CODE_TTL_SECONDS = 5 * 60
MAX_TRIES = 5
LOCK_SECONDS = 15 * 60
SEND_WINDOW_SECONDS = 3600
SENDS_PER_EMAIL = 3
SEND_SPACING_SECONDS = 60
SENDS_PER_IP = 10
VERIFIES_PER_IP = 30
RESET_TTL_SECONDS = 15 * 60
CLEANUP_SECONDS = 2 * 3600

VerifyStatus = Literal["ok", "wrong", "expired", "missing", "locked", "locked_now"]

_RESERVE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local per_email = tonumber(ARGV[3])
local spacing = tonumber(ARGV[4])
local per_ip = tonumber(ARGV[5])
local ttl = tonumber(ARGV[7])
local lock_until = tonumber(redis.call('GET', KEYS[3]) or '0')
if lock_until > now then return {'locked', lock_until - now} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if redis.call('ZCARD', KEYS[2]) >= per_ip then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {'ip_limit', tonumber(first[2]) + window - now}
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last > 0 and now - tonumber(last[2]) < spacing then
  return {'spacing', spacing - (now - tonumber(last[2]))}
end
if redis.call('ZCARD', KEYS[1]) >= per_email then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {'email_limit', tonumber(first[2]) + window - now}
end
redis.call('ZADD', KEYS[1], now, ARGV[6])
redis.call('ZADD', KEYS[2], now, ARGV[6])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {'ok', 0}
"""

_STORE = """
local old = redis.call('HMGET', KEYS[1], 'code_id', 'expires')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'mac', ARGV[1], 'code_id', ARGV[2], 'expires', ARGV[3], 'tries', 0)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
if old[1] then redis.call('ZREM', KEYS[2], ARGV[5] .. old[1]) end
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[5] .. ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[6]) - tonumber(ARGV[4]))
if old[1] then return {old[1], old[2]} end
return {}
"""

_VERIFY = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {'ip_limit', tonumber(first[2]) + window - now, '', 0}
end
redis.call('ZADD', KEYS[3], now, ARGV[7])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[8]))
local lock_until = tonumber(redis.call('GET', KEYS[2]) or '0')
if lock_until > now then return {'locked', lock_until - now, '', 0} end
local code = redis.call('HMGET', KEYS[1], 'mac', 'code_id', 'expires', 'tries')
if not code[1] then return {'missing', 0, '', 0} end
if tonumber(code[3]) <= now then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[4], ARGV[9] .. code[2])
  return {'expired', 0, code[2], tonumber(code[4])}
end
if code[1] == ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[4], ARGV[9] .. code[2])
  return {'ok', 0, code[2], tonumber(code[4])}
end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
if tries >= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[4], ARGV[9] .. code[2])
  redis.call('SET', KEYS[2], now + tonumber(ARGV[4]), 'PX', tonumber(ARGV[8]))
  return {'locked_now', tonumber(ARGV[4]), code[2], tries}
end
return {'wrong', 0, code[2], tries}
"""

_PUT_RESET = """
local previous = redis.call('GET', KEYS[2])
if previous then redis.call('DEL', ARGV[4] .. previous) end
redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'expires', ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('SET', KEYS[2], ARGV[5], 'PX', tonumber(ARGV[3]))
return 1
"""

_TAKE_RESET = """
local entry = redis.call('HMGET', KEYS[1], 'user_id', 'expires')
if not entry[1] then return {} end
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
if tonumber(entry[2]) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return {}
end
return {entry[1]}
"""


def derive_key(jwt_secret: str) -> bytes:
    """The OTP HMAC key, derived from JWT_SECRET under its own label."""
    return hmac.new(jwt_secret.encode(), b"truebond:otp-store:v1", hashlib.sha256).digest()


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


@attrs.frozen
class VerifyOutcome:
    """What a verification found: status, the code it concerned and tries, seconds to wait."""

    status: VerifyStatus
    code_id: str | None = None
    tries: int = 0
    retry_after: int = 0


@attrs.frozen
class ExpiredCode:
    """A code that ran out unused: its purpose, email hash and id (never the code)."""

    purpose: str
    ehash: str
    code_id: str
    member: str


@attrs.frozen
class PreviousCode:
    """The code a new one replaced, and whether it had already expired unused."""

    code_id: str
    expired: bool


class OtpStore:
    """Hashed codes with expiry, per-code tries, purpose locks and send/verify windows."""

    def __init__(self, redis: Redis, key: bytes, clock: Clock, prefix: str = "tb:otp:") -> None:
        self._redis = redis
        self._key = key
        self._clock = clock
        self._prefix = prefix
        self._reserve = _Script(redis, _RESERVE)
        self._store = _Script(redis, _STORE)
        self._verify = _Script(redis, _VERIFY)
        self._put_reset = _Script(redis, _PUT_RESET)
        self._take_reset = _Script(redis, _TAKE_RESET)

    # -- keys ------------------------------------------------------------------------------
    def _code_key(self, purpose: str, ehash: str) -> str:
        return f"{self._prefix}code:{purpose}:{ehash}"

    def _lock_key(self, purpose: str, ehash: str) -> str:
        return f"{self._prefix}lock:{purpose}:{ehash}"

    def _pending_key(self) -> str:
        # Live codes by expiry time (members `<purpose>:<email hash>:<code id>`), so codes
        # that run out unused are audited as expired even when nobody presents them again.
        return f"{self._prefix}pending"

    def _ip(self, ip: str) -> str:
        return hmac.new(self._key, f"ip:{ip}".encode(), hashlib.sha256).hexdigest()[:32]

    def mac(self, purpose: str, ehash: str, code: str) -> str:
        """HMAC-SHA256 of a code bound to its purpose and email: the only form ever stored."""
        return hmac.new(self._key, f"{purpose}:{ehash}:{code}".encode(), hashlib.sha256).hexdigest()

    def token_hash(self, token: str) -> str:
        """HMAC-SHA256 of a password-reset token (the raw token is never stored)."""
        return hmac.new(self._key, f"reset:{token}".encode(), hashlib.sha256).hexdigest()

    def _now_ms(self) -> int:
        return _ms(self._clock.time())

    async def _run(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys, args)
        except (RedisError, OSError) as exc:
            raise DependencyDown("OTP service unavailable") from exc

    # -- sends -----------------------------------------------------------------------------
    async def reserve_send(self, bucket: str, purpose: str, ehash: str, ip: str, ticket: str) -> None:
        """Count a send in the email's and the IP's hourly windows, or raise RateLimited.

        Refused while the purpose is locked, within 60 s of the email's last send, after 3 sends
        of the email or 10 of the IP in the hour. `release_send` gives the allowance back.
        """
        keys = [
            f"{self._prefix}sends:{bucket}:{ehash}",
            f"{self._prefix}ipsends:{bucket}:{self._ip(ip)}",
            self._lock_key(purpose, ehash),
        ]
        args = [
            self._now_ms(),
            _ms(SEND_WINDOW_SECONDS),
            SENDS_PER_EMAIL,
            _ms(SEND_SPACING_SECONDS),
            SENDS_PER_IP,
            ticket,
            _ms(CLEANUP_SECONDS),
        ]
        status, wait_ms = await self._run(self._reserve, keys, args)
        if status != "ok":
            raise RateLimited(retry_after=-(-int(wait_ms) // 1000))

    async def release_send(self, bucket: str, ehash: str, ip: str, ticket: str) -> None:
        """Give back a reserved send (the mail could not go out)."""
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(f"{self._prefix}sends:{bucket}:{ehash}", ticket)
                pipe.zrem(f"{self._prefix}ipsends:{bucket}:{self._ip(ip)}", ticket)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise DependencyDown("OTP service unavailable") from exc

    async def store_code(self, purpose: str, ehash: str, code: str, code_id: str) -> PreviousCode | None:
        """Keep a new code (as its HMAC) for 5 minutes, replacing any earlier one."""
        now = self._now_ms()
        expires = now + _ms(CODE_TTL_SECONDS)
        keys = [self._code_key(purpose, ehash), self._pending_key()]
        args = [self.mac(purpose, ehash, code), code_id, expires, _ms(CLEANUP_SECONDS), f"{purpose}:{ehash}:", now]
        old = await self._run(self._store, keys, args)
        if not old:
            return None
        return PreviousCode(code_id=str(old[0]), expired=int(old[1]) <= self._now_ms())

    def expires_at(self) -> float:
        """Epoch seconds at which a code stored now expires."""
        return self._clock.time() + CODE_TTL_SECONDS

    # -- verification ----------------------------------------------------------------------
    async def verify(self, purpose: str, ehash: str, code: str, ip: str, attempt_id: str) -> VerifyOutcome:
        """Check a code in one atomic step: IP window, lock, expiry, match, tries and lock-out."""
        keys = [
            self._code_key(purpose, ehash),
            self._lock_key(purpose, ehash),
            f"{self._prefix}ipverify:{self._ip(ip)}",
            self._pending_key(),
        ]
        args = [
            self._now_ms(),
            self.mac(purpose, ehash, code),
            MAX_TRIES,
            _ms(LOCK_SECONDS),
            _ms(SEND_WINDOW_SECONDS),
            VERIFIES_PER_IP,
            attempt_id,
            _ms(CLEANUP_SECONDS),
            f"{purpose}:{ehash}:",
        ]
        status, wait_ms, code_id, tries = await self._run(self._verify, keys, args)
        if status == "ip_limit":
            raise RateLimited(retry_after=-(-int(wait_ms) // 1000))
        return VerifyOutcome(status=status, code_id=str(code_id) or None, tries=int(tries), retry_after=-(-int(wait_ms) // 1000))

    async def expired_codes(self, limit: int = 500) -> list[ExpiredCode]:
        """Codes that passed their expiry unused and are not yet audited (oldest first).

        A code leaves this list when it is used, voided by a lock-out, replaced, found expired
        by a verification, or handed to `forget_expired` once its expiry is recorded.
        """
        try:
            members = await self._redis.zrangebyscore(self._pending_key(), "-inf", self._now_ms(), start=0, num=limit)
        except (RedisError, OSError) as exc:
            raise DependencyDown("OTP service unavailable") from exc
        found = []
        for member in members:
            purpose, _, rest = str(member).partition(":")
            ehash, _, code_id = rest.partition(":")
            found.append(ExpiredCode(purpose=purpose, ehash=ehash, code_id=code_id, member=str(member)))
        return found

    async def forget_expired(self, codes: list[ExpiredCode]) -> None:
        """Drop codes whose expiry was recorded from the list of live codes."""
        if not codes:
            return
        try:
            await self._redis.zrem(self._pending_key(), *(c.member for c in codes))
        except (RedisError, OSError) as exc:
            raise DependencyDown("OTP service unavailable") from exc

    # -- password reset tokens ---------------------------------------------------------------
    async def put_reset_token(self, token: str, user_id: str) -> None:
        """Keep a reset token's hash for 15 minutes; the user's earlier token stops working."""
        thash = self.token_hash(token)
        keys = [f"{self._prefix}reset:{thash}", f"{self._prefix}reset-user:{user_id}"]
        expires = self._now_ms() + _ms(RESET_TTL_SECONDS)
        await self._run(self._put_reset, keys, [user_id, expires, _ms(CLEANUP_SECONDS), f"{self._prefix}reset:", thash])

    async def reset_token_user(self, token: str, *, consume: bool) -> str | None:
        """The user a live reset token belongs to; `consume` makes it single use (atomically)."""
        keys = [f"{self._prefix}reset:{self.token_hash(token)}"]
        found = await self._run(self._take_reset, keys, [self._now_ms(), "1" if consume else "0"])
        return str(found[0]) if found else None
