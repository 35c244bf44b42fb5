"""AuthGate on a real Redis: one script call per check, limits shared with `limits`, batching."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.exceptions import RedisError

from tests.support import otp_support
from truebond.adapters.auth_gate import AuthGate
from truebond.adapters.ratelimit import Policy, RateLimiter
from truebond.adapters.redis_client import connect
from truebond.adapters.session_cache import SessionCache
from truebond.errors import RateLimited


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = connect(redis_url)
    yield client
    await client.aclose()


async def live(redis: Any, role: str = "user") -> tuple[str, str]:
    """A fresh allowed session of a fresh active user."""
    session_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    await SessionCache(redis).allow(session_id, user_id, 60)
    await AuthGate(redis).fill_standing(user_id, "active", role)
    return session_id, user_id


async def check(gate: AuthGate, session_id: str, user_id: str, limits: Any = ()) -> Any:
    return await gate.check(session_id, user_id, seen_at=time.time(), seen_ttl=60, now=time.time(), limits=limits)


async def test_a_check_reads_the_session_and_standing_and_touches_the_session(redis: Any) -> None:
    gate = AuthGate(redis)
    session_id, user_id = await live(redis, role="admin")
    assert (await check(gate, uuid.uuid4().hex, user_id)).kind == "session_miss"
    assert (await check(gate, session_id, uuid.uuid4().hex)).kind == "revoked"  # someone else's session
    verdict = await check(gate, session_id, user_id)
    assert (verdict.kind, verdict.role) == ("ok", "admin")
    assert session_id in await SessionCache(redis).last_seen([session_id])

    await gate.drop_standing(user_id)
    assert (await check(gate, session_id, user_id)).kind == "standing_miss"
    await gate.fill_standing(user_id, "suspended", "admin")
    assert (await check(gate, session_id, user_id)).kind == "inactive"


async def test_the_gate_and_the_limits_library_count_in_the_same_window(redis: Any, redis_url: str) -> None:
    gate, limiter = AuthGate(redis), RateLimiter(redis_url)
    policy, key = Policy(f"t{uuid.uuid4().hex[:8]}", "3/minute"), uuid.uuid4().hex
    session_id, user_id = await live(redis)
    assert (await check(gate, session_id, user_id, [(policy, key)])).kind == "ok"
    await limiter.hit(policy, key)
    assert (await check(gate, session_id, user_id, [(policy, key)])).kind == "ok"
    with pytest.raises(RateLimited) as refused:
        await limiter.hit(policy, key)  # the library sees the gate's two hits and its own
    verdict = await check(gate, session_id, user_id, [(policy, key)])
    assert verdict.kind == "limited" and verdict.limited == policy
    assert 1 <= verdict.retry_after <= 60 and abs(verdict.retry_after - refused.value.retry_after) <= 1


async def test_the_first_refused_limit_stops_the_count(redis: Any) -> None:
    gate = AuthGate(redis)
    tight, loose = Policy(f"a{uuid.uuid4().hex[:8]}", "1/minute"), Policy(f"b{uuid.uuid4().hex[:8]}", "10/minute")
    session_id, user_id = await live(redis)
    limits = [(tight, user_id), (loose, user_id)]
    assert (await check(gate, session_id, user_id, limits)).kind == "ok"
    assert (await check(gate, session_id, user_id, limits)).limited == tight
    assert await redis.llen(loose.storage_key(user_id)) == 1  # the refused request did not count there


async def test_concurrent_checks_each_get_their_own_answer(redis: Any) -> None:
    gate = AuthGate(redis)
    users = [await live(redis) for _ in range(20)]
    await gate.drop_standing(users[3][1])
    verdicts = await asyncio.gather(*(check(gate, s, u) for s, u in users), check(gate, uuid.uuid4().hex, users[0][1]))
    kinds = [v.kind for v in verdicts]
    assert kinds == ["ok"] * 3 + ["standing_miss"] + ["ok"] * 16 + ["session_miss"]


async def test_a_flushed_script_cache_is_loaded_again(redis: Any) -> None:
    gate = AuthGate(redis)
    session_id, user_id = await live(redis)
    assert (await check(gate, session_id, user_id)).kind == "ok"
    await redis.script_flush()
    verdicts = await asyncio.gather(*(check(gate, session_id, user_id) for _ in range(3)))
    assert [v.kind for v in verdicts] == ["ok"] * 3


async def test_redis_down_fails_every_waiting_check() -> None:
    dead = connect(otp_support.closed_port_url())
    gate = AuthGate(dead)
    try:
        results = await asyncio.gather(*(check(gate, "s", "u") for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, RedisError | OSError) for r in results), results
    finally:
        await dead.aclose()
