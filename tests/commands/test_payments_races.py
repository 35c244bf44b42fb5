"""A refund racing the credit of the same payment: whatever the interleaving, no refunded coins stay.

The success path credits first and then completes the payment with optimistic concurrency on its
stream; the refund path records the reversal on that stream first and then withdraws whatever was
credited. These tests force the two dangerous interleavings deterministically.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.stripe_api import stripe_id
from truebond.adapters.stripe_gateway import IntentFacts
from truebond.bootstrap import Runtime
from truebond.commands import payments
from truebond.commands.ledger import grant_signup_bonus
from truebond.commands.unit import Unit
from truebond.events.base import Meta
from truebond.projections.ledger import coins

USER = "r" * 32
META = Meta(actor="stripe")


async def _paid_order(unit: Unit) -> IntentFacts:
    await grant_signup_bonus(unit, USER, Meta(actor=f"user:{USER}"))
    package = payments.PACKAGES["popular"]
    intent = stripe_id("pi")
    await payments.record_order(unit, intent_id=intent, payment_id="p" * 32, user_id=USER, package=package, meta=Meta(actor=f"user:{USER}"))
    metadata = {"user_id": USER, "package_id": "popular", "payment_id": "p" * 32}
    return IntentFacts(
        intent_id=intent, amount=package.amount, currency="inr", status="succeeded", amount_received=package.amount, metadata=metadata
    )


async def test_refund_recorded_after_the_success_check_but_before_the_credit(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = runtime.unit
    facts = await _paid_order(unit)
    real_credit = payments._credit

    async def refund_first(unit: Unit, order: Any, meta: Meta) -> Any:
        # The whole refund runs here: it sees no credit yet, so it withdraws nothing.
        outcome = await payments.settle_reversal(unit, facts.intent_id, "refund", "evt_refund", META)
        assert outcome.coins == 0
        return await real_credit(unit, order, meta)

    monkeypatch.setattr(payments, "_credit", refund_first)
    await payments.settle_succeeded(unit, facts, "evt_success", META)

    assert await coins(unit.db, USER) == 10
    doc = await unit.db["payments"].find_one({"_id": facts.intent_id})
    assert doc["status"] == "refunded"
    kinds = [r.type for r in await unit.store.load(f"account-{USER}")]
    assert kinds == ["SignupBonusGranted", "CreditsPurchased", "CreditsReversed"]


async def test_refund_arriving_between_the_credit_and_the_completion(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = runtime.unit
    facts = await _paid_order(unit)
    real_credit = payments._credit

    async def refund_after(unit: Unit, order: Any, meta: Meta) -> Any:
        result = await real_credit(unit, order, meta)
        outcome = await payments.settle_reversal(unit, facts.intent_id, "refund", "evt_refund", META)
        assert outcome.coins == 500
        return result

    monkeypatch.setattr(payments, "_credit", refund_after)
    await payments.settle_succeeded(unit, facts, "evt_success", META)

    assert await coins(unit.db, USER) == 10
    doc = await unit.db["payments"].find_one({"_id": facts.intent_id})
    assert doc["status"] == "refunded"
    assert len([r for r in await unit.store.load(f"account-{USER}") if r.type == "CreditsReversed"]) == 1


async def test_a_reversed_payment_is_not_credited_by_a_late_success(runtime: Runtime) -> None:
    unit = runtime.unit
    facts = await _paid_order(unit)
    await payments.settle_reversal(unit, facts.intent_id, "dispute", "evt_dispute", META)
    outcome = await payments.settle_succeeded(unit, facts, "evt_success", META)
    assert (outcome.status, outcome.reason) == ("rejected", "payment_reversed")
    assert await coins(unit.db, USER) == 10
    assert await unit.store.get(payments.credit_event_id(facts.intent_id)) is None
