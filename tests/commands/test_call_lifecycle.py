"""Calls from ring to end: who may start, accept and end one, rings and graces running out."""

from __future__ import annotations

import pytest

from tests.support.calls_support import balance, call, connected_call, expected_ticks, give, pair, person, run_worker, tick_ids
from truebond.bootstrap import Runtime
from truebond.clock import OffsetClock
from truebond.commands.calls import (
    AcceptCall,
    CallBlocked,
    CallNotFound,
    CallOver,
    EndCall,
    InitiateCall,
    NotTheReceiver,
    ParticipantLeft,
    ParticipantRejoined,
    RejectCall,
    SelfCall,
    UserBusy,
)
from truebond.errors import PaymentRequired
from truebond.projections import blocks
from truebond.projections import notifications as notifications_view


async def test_an_unanswered_call_is_missed_after_25_seconds_at_no_cost(runtime: Runtime, clock: OffsetClock) -> None:
    p = await pair(runtime)
    call_id = await runtime.bus.handle(InitiateCall(p.caller, p.receiver, "video"), p.as_caller)
    clock.advance(24)
    await run_worker(runtime)
    assert (await call(runtime, call_id))["state"] == "ringing"
    clock.advance(2)
    await run_worker(runtime)
    doc = await call(runtime, call_id)
    assert (doc["state"], doc["status"], doc["end_reason"], doc["credits_spent"]) == ("ended", "missed", "missed", 0)
    assert await balance(runtime, p.caller) == 10
    # A missed call cannot be answered afterwards.
    with pytest.raises(CallOver):
        await runtime.bus.handle(AcceptCall(p.receiver, call_id), p.as_receiver)
    assert await tick_ids(runtime, call_id) == []
    # The receiver is told of it, once, and the caller is not.
    mine = await notifications_view.of_user(runtime.unit.db, p.receiver, unread_only=False, limit=10)
    assert [n["type"] for n in mine] == ["missed_call"]
    assert await notifications_view.of_user(runtime.unit.db, p.caller, unread_only=False, limit=10) == []


async def test_an_ended_call_cannot_be_accepted_or_restarted(runtime: Runtime, clock: OffsetClock) -> None:
    p = await pair(runtime)
    call_id = await connected_call(runtime, p)
    await runtime.bus.handle(EndCall(p.receiver, call_id), p.as_receiver)
    with pytest.raises(CallOver):
        await runtime.bus.handle(AcceptCall(p.receiver, call_id), p.as_receiver)
    # Ending again changes nothing; nothing more is charged.
    again = await runtime.bus.handle(EndCall(p.caller, call_id), p.as_caller)
    assert again["end_reason"] == "ended" and again["ended_by"] == p.receiver
    assert await balance(runtime, p.caller) == 5
    # The pair may call again: that is a new call.
    assert await runtime.bus.handle(InitiateCall(p.caller, p.receiver, "audio"), p.as_caller) != call_id


async def test_a_rejected_call_is_over_and_costs_nothing(runtime: Runtime) -> None:
    p = await pair(runtime)
    call_id = await runtime.bus.handle(InitiateCall(p.caller, p.receiver, "audio"), p.as_caller)
    doc = await runtime.bus.handle(RejectCall(p.receiver, call_id, "busy"), p.as_receiver)
    assert (doc["status"], doc["end_reason"]) == ("rejected", "rejected")
    with pytest.raises(CallOver):
        await runtime.bus.handle(AcceptCall(p.receiver, call_id), p.as_receiver)
    assert await balance(runtime, p.caller) == 10


async def test_one_live_call_per_user(runtime: Runtime) -> None:
    p = await pair(runtime)
    third = await person(runtime)
    await runtime.bus.handle(InitiateCall(p.caller, p.receiver, "audio"), p.as_caller)
    with pytest.raises(UserBusy):
        await runtime.bus.handle(InitiateCall(p.caller, third, "audio"), p.as_caller)  # the caller is busy
    with pytest.raises(UserBusy):
        await runtime.bus.handle(InitiateCall(third, p.receiver, "audio"), p.as_caller)  # the receiver is busy
    with pytest.raises(UserBusy):
        await runtime.bus.handle(InitiateCall(p.receiver, p.caller, "audio"), p.as_receiver)


async def test_racing_starts_make_one_call(runtime: Runtime) -> None:
    import asyncio

    p = await pair(runtime)
    others = [await person(runtime) for _ in range(4)]
    results = await asyncio.gather(
        *(runtime.bus.handle(InitiateCall(p.caller, o, "audio"), p.as_caller) for o in others), return_exceptions=True
    )
    assert sum(isinstance(r, str) for r in results) == 1
    assert all(isinstance(r, UserBusy) for r in results if not isinstance(r, str))


async def test_a_slot_left_by_a_lost_reaction_does_not_block_the_next_call(runtime: Runtime) -> None:
    p = await pair(runtime)
    call_id = await runtime.bus.handle(InitiateCall(p.caller, p.receiver, "audio"), p.as_caller)
    await runtime.bus.handle(EndCall(p.caller, call_id), p.as_caller)
    await runtime.unit.redis.set(f"tb:call:slot:{p.caller}", call_id)  # as if the release was lost
    assert await runtime.bus.handle(InitiateCall(p.caller, p.receiver, "audio"), p.as_caller)


async def test_starting_needs_one_minutes_price(runtime: Runtime) -> None:
    p = await pair(runtime)  # 10 coins: enough for audio (5), also for video (10)
    await runtime.bus.handle(InitiateCall(p.caller, p.receiver, "video"), p.as_caller)
    q = await pair(runtime)
    from truebond.commands.ledger import deduct
    from truebond.events.base import Meta

    await deduct(runtime.unit, q.caller, 2, reason="message", reference="m", event_id="spend-q", meta=Meta(actor="system"))
    with pytest.raises(PaymentRequired):
        await runtime.bus.handle(InitiateCall(q.caller, q.receiver, "video"), q.as_caller)
    assert await runtime.bus.handle(InitiateCall(q.caller, q.receiver, "audio"), q.as_caller)


async def test_nobody_calls_themselves_a_stranger_or_someone_blocked(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    p = await pair(runtime)
    with pytest.raises(SelfCall):
        await runtime.bus.handle(InitiateCall(p.caller, p.caller, "audio"), p.as_caller)
    with pytest.raises(CallNotFound):
        await runtime.bus.handle(InitiateCall(p.caller, "f" * 32, "audio"), p.as_caller)

    async def blocked(db: object, a: str, b: str) -> bool:
        return {a, b} == {p.caller, p.receiver}

    monkeypatch.setattr(blocks, "blocked_either_way", blocked)
    with pytest.raises(CallBlocked):
        await runtime.bus.handle(InitiateCall(p.caller, p.receiver, "audio"), p.as_caller)


async def test_a_block_during_a_call_ends_it(runtime: Runtime, clock: OffsetClock, monkeypatch: pytest.MonkeyPatch) -> None:
    p = await pair(runtime)
    call_id = await connected_call(runtime, p)

    async def blocked(db: object, a: str, b: str) -> bool:
        return True

    monkeypatch.setattr(blocks, "blocked_either_way", blocked)
    clock.advance(61)
    await run_worker(runtime)
    doc = await call(runtime, call_id)
    assert (doc["end_reason"], doc["credits_spent"]) == ("blocked", 5)


async def test_only_the_participants_act_on_a_call(runtime: Runtime) -> None:
    p = await pair(runtime)
    stranger = await person(runtime)
    call_id = await runtime.bus.handle(InitiateCall(p.caller, p.receiver, "audio"), p.as_caller)
    for cmd in (AcceptCall(stranger, call_id), EndCall(stranger, call_id), RejectCall(stranger, call_id)):
        with pytest.raises(CallNotFound):
            await runtime.bus.handle(cmd, p.as_caller)
    with pytest.raises(NotTheReceiver):
        await runtime.bus.handle(AcceptCall(p.caller, call_id), p.as_caller)
    assert (await call(runtime, call_id))["state"] == "ringing"
    assert await balance(runtime, p.caller) == 10


async def test_rejoining_within_the_grace_resumes_the_same_call_with_no_new_first_minute(runtime: Runtime, clock: OffsetClock) -> None:
    p = await pair(runtime)
    await give(runtime, p.caller, 90)
    call_id = await connected_call(runtime, p)
    clock.advance(20)
    await runtime.bus.handle(ParticipantLeft(p.caller, call_id), p.as_caller)
    clock.advance(25)
    await run_worker(runtime)
    await runtime.bus.handle(ParticipantRejoined(p.caller, call_id), p.as_caller)
    doc = await call(runtime, call_id)
    assert doc["state"] == "connected" and not doc.get("away")
    assert await balance(runtime, p.caller) == 95  # still only the first minute
    # No free minutes: the time away was billed like any other.
    clock.advance(20)
    await run_worker(runtime)
    assert await balance(runtime, p.caller) == 90
    await runtime.bus.handle(EndCall(p.caller, call_id), p.as_caller)
    assert sorted(await tick_ids(runtime, call_id)) == expected_ticks(call_id, 2)


async def test_after_the_grace_the_call_ends_disconnected(runtime: Runtime, clock: OffsetClock) -> None:
    p = await pair(runtime)
    await give(runtime, p.caller, 90)
    call_id = await connected_call(runtime, p)
    clock.advance(10)
    await runtime.bus.handle(ParticipantLeft(p.receiver, call_id), p.as_receiver)
    clock.advance(29)
    await run_worker(runtime)
    assert (await call(runtime, call_id))["state"] == "connected"
    clock.advance(2)
    await run_worker(runtime)
    doc = await call(runtime, call_id)
    assert (doc["state"], doc["end_reason"], doc["ended_by"], doc["status"]) == ("ended", "disconnected", p.receiver, "completed")
    assert doc["duration_seconds"] == 40  # up to the end of the grace
    # Coming back later does not restart it.
    await runtime.bus.handle(ParticipantRejoined(p.receiver, call_id), p.as_receiver)
    assert (await call(runtime, call_id))["state"] == "ended"
    assert await balance(runtime, p.caller) == 95


async def test_a_rejoin_after_the_grace_but_before_the_worker_ends_the_call(runtime: Runtime, clock: OffsetClock) -> None:
    p = await pair(runtime)
    call_id = await connected_call(runtime, p)
    await runtime.bus.handle(ParticipantLeft(p.caller, call_id), p.as_caller)
    clock.advance(35)
    await runtime.bus.handle(ParticipantRejoined(p.caller, call_id), p.as_caller)
    doc = await call(runtime, call_id)
    assert (doc["state"], doc["end_reason"], doc["duration_seconds"]) == ("ended", "disconnected", 30)
