"""The deduction command: decided against the account stream, refused below zero, once per id."""

from __future__ import annotations

import asyncio

import pytest

from truebond.bootstrap import Runtime
from truebond.commands.ledger import account_stream, deduct, grant_signup_bonus
from truebond.errors import PaymentRequired
from truebond.events.base import Meta
from truebond.events.ledger import LedgerEvent
from truebond.projections.ledger import coins, history

USER = "a" * 32
META = Meta(actor=f"user:{USER}")


async def test_a_deduction_below_zero_is_refused_with_402_and_stores_nothing(runtime: Runtime) -> None:
    unit = runtime.unit
    await grant_signup_bonus(unit, USER, META)
    with pytest.raises(PaymentRequired) as refused:
        await deduct(unit, USER, 11, reason="call", reference="call:1:tick:1", event_id="call:1:tick:1", meta=META)
    assert refused.value.status == 402
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


async def test_concurrent_deductions_never_overdraw(runtime: Runtime) -> None:
    unit = runtime.unit
    await grant_signup_bonus(unit, USER, META)

    async def one(n: int) -> bool:
        try:
            await deduct(unit, USER, 1, reason="message", reference=f"msg:{n}", event_id=f"msg:{n}", meta=META)
        except PaymentRequired:
            return False
        return True

    outcomes = await asyncio.gather(*(one(n) for n in range(30)))
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
