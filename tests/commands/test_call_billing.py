"""Server-billed calls: every started minute charged once, in advance, by the billing worker.

Time is the runtime's clock moved forward; the worker is driven pass by pass.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from tests.support.calls_support import balance, call, connected_call, expected_ticks, give, pair, run_worker, tick_ids
from truebond.bootstrap import Runtime
from truebond.clock import OffsetClock
from truebond.commands.calls import EndCall, state
from truebond.workers.billing import BillingWorker


async def _advance(rt: Runtime, clock: OffsetClock, seconds: float, worker: BillingWorker | None = None) -> None:
    """Move time in steps of at most 10 s, with a worker pass after each (as a running worker would)."""
    while seconds > 0:
        step = min(10.0, seconds)
        clock.advance(step)
        seconds -= step
        await run_worker(rt, worker)


@pytest.mark.parametrize(("call_type", "rate", "talk"), [("audio", 5, 150), ("video", 10, 61), ("audio", 5, 30)])
async def test_a_hung_up_call_costs_ceil_of_its_connected_minutes(
    runtime: Runtime, clock: OffsetClock, call_type: str, rate: int, talk: int
) -> None:
    p = await pair(runtime)
    await give(runtime, p.caller, 990)  # 1000 coins
    call_id = await connected_call(runtime, p, call_type)
    assert await balance(runtime, p.caller) == 1000 - rate  # the first minute, at accept
    await _advance(runtime, clock, talk)
    await runtime.bus.handle(EndCall(p.caller, call_id), p.as_caller)
    doc = await call(runtime, call_id)
    minutes = math.ceil(doc["duration_seconds"] / 60)
    assert doc["status"] == "completed" and doc["end_reason"] == "ended"
    assert abs(doc["duration_seconds"] - talk) <= 1
    assert doc["credits_spent"] == minutes * rate == math.ceil(talk / 60) * rate
    assert await balance(runtime, p.caller) == 1000 - minutes * rate
    assert sorted(await tick_ids(runtime, call_id)) == expected_ticks(call_id, minutes)
    # Hanging up charged nothing more, and later passes charge nothing either.
    await _advance(runtime, clock, 180)
    assert await balance(runtime, p.caller) == 1000 - minutes * rate
    assert await balance(runtime, p.receiver) == 10  # the receiver never pays


async def test_the_call_ends_at_the_paid_boundary_when_the_coins_run_out(runtime: Runtime, clock: OffsetClock) -> None:
    p = await pair(runtime)
    await give(runtime, p.caller, 7)  # 17 coins: three audio minutes, 2 left over
    call_id = await connected_call(runtime, p)
    await _advance(runtime, clock, 600)
    doc = await call(runtime, call_id)
    assert doc["state"] == "ended" and doc["end_reason"] == "insufficient_credits"
    assert doc["duration_seconds"] == 180  # exactly the three paid minutes
    assert doc["credits_spent"] == 15 and doc["status"] == "completed"
    assert await balance(runtime, p.caller) == 2
    assert sorted(await tick_ids(runtime, call_id)) == expected_ticks(call_id, 3)


async def test_the_call_ends_at_zero(runtime: Runtime, clock: OffsetClock) -> None:
    p = await pair(runtime)  # 10 coins: two audio minutes
    call_id = await connected_call(runtime, p)
    await _advance(runtime, clock, 300)
    doc = await call(runtime, call_id)
    assert (doc["end_reason"], doc["duration_seconds"], doc["credits_spent"]) == ("insufficient_credits", 120, 10)
    assert await balance(runtime, p.caller) == 0


async def test_a_worker_killed_mid_tick_and_restarted_neither_skips_nor_repeats(
    runtime: Runtime, clock: OffsetClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await pair(runtime)
    await give(runtime, p.caller, 90)  # 100 coins
    call_id = await connected_call(runtime, p)
    await _advance(runtime, clock, 70)  # tick 1 charged
    # The next worker dies right after charging tick 2, before the call records it.
    real = state.decide_call
    crashed: list[str] = []

    async def dies(deps: Any, ctx: Any, cid: str, decide: Any) -> None:
        if decide.__name__ == "record" and not crashed:
            crashed.append(cid)
            raise asyncio.CancelledError()
        await real(deps, ctx, cid, decide)

    monkeypatch.setattr(state, "decide_call", dies)
    clock.advance(55)
    with pytest.raises(asyncio.CancelledError):
        await BillingWorker(runtime.bus).handle((await BillingWorker(runtime.bus).schedule.claim(clock.time()))[0])
    assert crashed == [call_id]
    monkeypatch.setattr(state, "decide_call", real)
    # Its claim holds until the lease runs out; then a fresh worker takes the call over.
    restarted = BillingWorker(runtime.bus)
    assert await restarted.run_once() == 0
    clock.advance(31)
    await restarted.run_once()
    await _advance(runtime, clock, 60, restarted)
    doc = await call(runtime, call_id)
    assert doc["paid_ticks"] == 4
    assert sorted(await tick_ids(runtime, call_id)) == expected_ticks(call_id, 4)
    assert await balance(runtime, p.caller) == 100 - 4 * 5


async def test_a_lost_schedule_is_rebuilt_from_the_read_model(runtime: Runtime, clock: OffsetClock) -> None:
    p = await pair(runtime)
    await give(runtime, p.caller, 90)
    call_id = await connected_call(runtime, p)
    await runtime.unit.redis.flushdb()  # Redis lost everything, the worker restarts
    worker = BillingWorker(runtime.bus)
    assert await worker.rebuild() == 1
    await _advance(runtime, clock, 125, worker)
    assert sorted(await tick_ids(runtime, call_id)) == expected_ticks(call_id, 3)


async def test_two_workers_racing_charge_every_tick_once(runtime: Runtime, clock: OffsetClock) -> None:
    calls = []
    for _ in range(3):
        p = await pair(runtime)
        await give(runtime, p.caller, 90)
        calls.append((p, await connected_call(runtime, p)))
    a, b = BillingWorker(runtime.bus), BillingWorker(runtime.bus)
    for _ in range(30):  # five minutes
        clock.advance(10)
        await asyncio.gather(a.run_once(), b.run_once(), a.rebuild())
    for p, call_id in calls:
        ids = await tick_ids(runtime, call_id)
        assert sorted(ids) == expected_ticks(call_id, 6), ids  # minute 0 and the five that started
        assert await balance(runtime, p.caller) == 100 - 6 * 5


async def test_the_same_tick_charged_twice_at_once_is_charged_once(runtime: Runtime, clock: OffsetClock) -> None:
    from truebond.commands.calls import BillTick

    p = await pair(runtime)
    await give(runtime, p.caller, 90)
    call_id = await connected_call(runtime, p)
    clock.advance(61)
    results = await asyncio.gather(*(runtime.bus.handle(BillTick(call_id, 1), p.as_caller) for _ in range(5)))
    assert any(results)
    assert sorted(await tick_ids(runtime, call_id)) == expected_ticks(call_id, 2)
    assert await balance(runtime, p.caller) == 90
