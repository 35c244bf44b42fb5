"""The presence leases on a real Redis: each online/offline transition is reported exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from truebond.adapters.presence import LEASE_SECONDS, Presence
from truebond.adapters.redis_client import connect
from truebond.clock import OffsetClock


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    """A client of the test's private Redis."""
    client = connect(redis_url)
    yield client
    await client.aclose()


async def test_concurrent_connects_and_disconnects_announce_once(redis: Any, clock: OffsetClock) -> None:
    servers = [Presence(redis, clock) for _ in range(4)]  # as many processes
    came = await asyncio.gather(*(p.open("u1", f"sid{i}") for i, p in enumerate(servers)))
    assert sorted(came) == [False, False, False, True]
    assert await servers[0].is_online("u1")

    gone = await asyncio.gather(*(p.close("u1", f"sid{i}") for i, p in enumerate(servers)))
    assert sorted(gone) == [False, False, False, True]
    assert not await servers[0].is_online("u1")
    # Closing again (a repeated disconnect) reports nothing.
    assert await servers[0].close("u1", "sid0") is False


async def test_racing_sweeps_report_an_expired_user_once(redis: Any, clock: OffsetClock) -> None:
    presence = Presence(redis, clock)
    for i in range(30):
        await presence.open(f"user{i}", f"sid{i}")
    await presence.open("kept", "sid-kept")
    clock.advance(LEASE_SECONDS / 2)
    await presence.renew([("kept", "sid-kept")])
    clock.advance(LEASE_SECONDS / 2 + 1)

    sweeps = await asyncio.gather(*(Presence(redis, clock).expire(batch=7) for _ in range(3)))
    reported = [uid for sweep in sweeps for uid in sweep]
    assert sorted(reported) == sorted(f"user{i}" for i in range(30))
    assert await presence.online_among(["kept", "user0", "user29"]) == {"kept"}


async def test_a_user_with_a_live_lease_is_not_reported_when_a_dead_one_expires(redis: Any, clock: OffsetClock) -> None:
    presence = Presence(redis, clock)
    await presence.open("u1", "dead-server-sid")
    clock.advance(LEASE_SECONDS / 2)
    assert await presence.open("u1", "live-sid") is False
    clock.advance(LEASE_SECONDS / 2 + 1)
    assert await presence.expire() == []
    assert await presence.is_online("u1")
    assert await presence.close("u1", "live-sid") is True


async def test_the_lease_length_is_injectable(redis: Any, clock: OffsetClock) -> None:
    presence = Presence(redis, clock, lease_seconds=5)
    await presence.open("u1", "s1")
    clock.advance(4)
    assert await presence.is_online("u1")
    clock.advance(2)
    assert not await presence.is_online("u1")
    assert await presence.expire() == ["u1"]
