"""The deduction command: decided against the account stream, refused below zero, once per id."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.payments_support import interleave
from truebond.api.error_map import status_of
from truebond.bootstrap import Runtime
from truebond.commands.ledger import LedgerConflict, LedgerResult, account_stream, credit, deduct, grant_signup_bonus, record_change
from truebond.commands.unit import Unit
from truebond.errors import PaymentRequired
from truebond.events.base import Meta
from truebond.events.ledger import CoinsDeducted, LedgerEvent, ReferralRewardGranted
from truebond.projections.ledger import coins, history

USER = "a" * 32
META = Meta(actor=f"user:{USER}")


async def test_a_deduction_below_zero_is_refused_with_402_and_stores_nothing(runtime: Runtime) -> None:
    unit = runtime.unit
    await grant_signup_bonus(unit, USER, META)
    with pytest.raises(PaymentRequired) as refused:
        await deduct(unit, USER, 11, reason="call", reference="call:1:tick:1", event_id="call:1:tick:1", meta=META)
    assert status_of(refused.value) == 402
    assert await unit.store.get("call:1:tick:1") is None
    assert await coins(unit.db, USER) == 10
    result = await deduct(unit, USER, 10, reason="call", reference="call:1:tick:1", event_id="call:1:tick:1", meta=META)
    assert (result.entry.amount, result.entry.balance_after, result.created) == (-10, 0, True)


async def test_a_repeated_id_returns_the_first_result_and_charges_once(runtime: Runtime) -> None:
    unit = runtime.unit
    await grant_signup_bonus(unit, USER, META)
    results = await asyncio.gather(
        *(deduct(unit, USER, 3, reason="message", reference="msg:abc", event_id="msg:abc", meta=META) for _ in range(10))
    )
    assert sum(r.created for r in results) == 1
    assert {(r.entry.amount, r.entry.balance_after) for r in results} == {(-3, 7)}
    assert await coins(unit.db, USER) == 7


async def test_a_retried_deduction_that_took_the_last_coins_returns_the_first_result_not_402(runtime: Runtime) -> None:
    """A retried message or call charge must never answer "insufficient coins" for what was paid."""
    unit = runtime.unit
    await grant_signup_bonus(unit, USER, META)
    first = await deduct(unit, USER, 10, reason="call", reference="call:9:tick:1", event_id="call:9:tick:1", meta=META)
    assert (first.created, first.entry.balance_after) == (True, 0)
    again = await deduct(unit, USER, 10, reason="call", reference="call:9:tick:1", event_id="call:9:tick:1", meta=META)
    assert again.created is False
    assert (again.entry.amount, again.entry.balance_after) == (-10, 0)
    assert await coins(unit.db, USER) == 0
    assert len(await unit.store.load(account_stream(USER))) == 2


async def spend(unit: Unit, amount: int, n: int) -> bool:
    """Charge one message of `amount` coins; False when refused for want of coins."""
    try:
        await deduct(unit, USER, amount, reason="message", reference=f"msg:{n}", event_id=f"msg:{n}", meta=META)
    except PaymentRequired:
        return False
    return True


async def test_concurrent_deductions_never_overdraw(runtime: Runtime) -> None:
    unit = runtime.unit
    await grant_signup_bonus(unit, USER, META)
    interleave(unit.store)
    outcomes = await asyncio.gather(*(spend(unit, 1, n) for n in range(30)))
    assert sum(outcomes) == 10
    assert await coins(unit.db, USER) == 0
    records = await unit.store.load(account_stream(USER))
    assert [r.version for r in records] == list(range(1, 12))
    balances = [r.event.balance_after for r in records if isinstance(r.event, LedgerEvent)]
    assert balances == list(range(10, -1, -1))


async def test_deductions_must_be_positive(runtime: Runtime) -> None:
    for amount in (0, -5):
        with pytest.raises(ValueError, match="positive"):
            await deduct(runtime.unit, USER, amount, reason="x", reference="x", event_id=f"bad:{amount}", meta=META)


async def test_history_is_newest_first_and_replay_reproduces_it(runtime: Runtime) -> None:
    unit = runtime.unit
    await grant_signup_bonus(unit, USER, META)
    for n in range(3):
        await deduct(unit, USER, n + 1, reason="message", reference=f"msg:{n}", event_id=f"msg:{n}", meta=META)
    before = [(d["_id"], d["amount"], d["balance_after"]) for d in await history(unit.db, USER, 10)]
    assert before == [("msg:2", -3, 4), ("msg:1", -2, 7), ("msg:0", -1, 9), (f"signup-bonus:{USER}", 10, 10)]
    await unit.projections.replay(["balances", "credit_transactions"])
    assert [(d["_id"], d["amount"], d["balance_after"]) for d in await history(unit.db, USER, 10)] == before
    assert await coins(unit.db, USER) == 4


async def reward(unit: Unit, event_id: str = "referral:b", amount: int = 50) -> LedgerResult:
    """A referral-style credit through the generic `credit` command."""
    return await credit(
        unit,
        USER,
        amount,
        event_class=ReferralRewardGranted,
        reason="referral",
        reference="user:b",
        event_id=event_id,
        meta=Meta(actor="system"),
        description="Referral reward",
    )


async def test_credit_adds_once_per_id_and_races_with_deductions_without_losing_coins(runtime: Runtime) -> None:
    unit = runtime.unit
    await grant_signup_bonus(unit, USER, META)
    interleave(unit.store)
    outcomes = await asyncio.gather(reward(unit), *(spend(unit, 2, n) for n in range(40)), reward(unit))
    credited = [o for o in outcomes if isinstance(o, LedgerResult)]
    assert sorted(r.created for r in credited) == [False, True]
    spent = sum(1 for o in outcomes if o is True)
    # 60 coins at most reached the account, each charge took 2: never below zero, nothing lost.
    assert await coins(unit.db, USER) == 60 - 2 * spent >= 0
    records = await unit.store.load(account_stream(USER))
    running = 0
    for rec in records:
        assert isinstance(rec.event, LedgerEvent)
        running += rec.event.amount
        assert rec.event.balance_after == running >= 0
    (entry,) = [r.event for r in records if isinstance(r.event, ReferralRewardGranted)]
    assert (entry.amount, entry.reason, entry.reference, entry.description) == (50, "referral", "user:b", "Referral reward")


async def test_credits_must_be_positive(runtime: Runtime) -> None:
    for amount in (0, -5):
        with pytest.raises(ValueError, match="positive"):
            await reward(runtime.unit, f"bad:{amount}", amount)
    assert await runtime.unit.store.load(account_stream(USER)) == []


async def test_an_idempotency_id_of_another_account_is_never_taken_as_done(runtime: Runtime) -> None:
    unit = runtime.unit
    other = "b" * 32
    await grant_signup_bonus(unit, other, META)
    await deduct(unit, other, 1, reason="message", reference="msg:same", event_id="msg:same", meta=META)
    await grant_signup_bonus(unit, USER, META)
    with pytest.raises(LedgerConflict):
        await deduct(unit, USER, 1, reason="message", reference="msg:same", event_id="msg:same", meta=META)
    with pytest.raises(LedgerConflict):
        await reward(unit, f"signup-bonus:{other}")
    assert await coins(unit.db, USER) == 10 and await coins(unit.db, other) == 9


async def test_a_decision_that_breaks_the_chain_or_goes_below_zero_is_never_appended(runtime: Runtime) -> None:
    unit = runtime.unit
    await grant_signup_bonus(unit, USER, META)

    def wrong_balance(current: int) -> LedgerEvent:
        return CoinsDeducted(user_id=USER, amount=-1, reason="x", reference="x", balance_after=current)

    def overdraw(current: int) -> LedgerEvent:
        return CoinsDeducted(user_id=USER, amount=-(current + 1), reason="x", reference="x", balance_after=-1)

    with pytest.raises(ValueError, match="chain"):
        await record_change(unit, USER, event_id="x:1", meta=META, decide=wrong_balance)
    with pytest.raises(PaymentRequired):
        await record_change(unit, USER, event_id="x:2", meta=META, decide=overdraw)
    assert [r.id for r in await unit.store.load(account_stream(USER))] == [f"signup-bonus:{USER}"]
