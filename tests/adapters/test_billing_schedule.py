"""The billing schedule on a real Redis: atomic claims with a lease, and finishing only what one still holds."""

from __future__ import annotations

import asyncio

from truebond.adapters.billing_schedule import BillingSchedule
from truebond.adapters.redis_client import connect


async def test_each_due_call_is_claimed_by_one_claimer_until_its_lease_runs_out(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        schedule = BillingSchedule(redis)
        for i in range(200):
            await schedule.schedule(f"c{i}", 100.0 + i % 2)
        await schedule.schedule("later", 500.0)
        batches = await asyncio.gather(*(schedule.claim(150.0, limit=30, lease=30) for _ in range(10)))
        claimed = [c.call_id for batch in batches for c in batch]
        assert sorted(claimed) == sorted(f"c{i}" for i in range(200))  # each once, "later" not yet
        assert await schedule.claim(179.0) == []  # all held
        again = await schedule.claim(181.0, limit=1000)
        assert len(again) == 200  # the leases ran out: claimable again
    finally:
        await redis.aclose()


async def test_finish_keeps_a_plan_made_after_the_claim(redis_url: str) -> None:
    redis = connect(redis_url)
    try:
        schedule = BillingSchedule(redis)
        await schedule.schedule("a", 10.0)
        await schedule.schedule("b", 10.0)
        claim_a, claim_b = sorted(await schedule.claim(20.0), key=lambda c: c.call_id)
        assert claim_a.due == 10.0
        await schedule.schedule("b", 95.0)  # a command rescheduled b meanwhile
        assert await schedule.finish(claim_a, 80.0) is True
        assert await schedule.finish(claim_b, 200.0) is False
        assert (await schedule.when("a"), await schedule.when("b")) == (80.0, 95.0)
        await schedule.schedule_no_later("a", 90.0)  # a rebuild never postpones
        await schedule.schedule_no_later("c", 70.0)  # and adds what is missing
        assert (await schedule.when("a"), await schedule.when("c")) == (80.0, 70.0)
        claim = (await schedule.claim(100.0))[0]
        assert await schedule.finish(claim, None) is True
        assert await schedule.size() == 2
    finally:
        await redis.aclose()
