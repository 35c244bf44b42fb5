"""A refund racing the credit of the same payment: whatever the interleaving, no refunded coins stay.

The success path credits first and then completes the payment with optimistic concurrency on its
stream; the refund path records the reversal on that stream first and then withdraws whatever was
credited. These tests force the two dangerous interleavings deterministically, with both Stripe
events going through the bus as the webhook route sends them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.stripe_api import event, stripe_id
from tests.support.payments_support import paid_intent
from truebond.bootstrap import Runtime
from truebond.commands import payments
from truebond.commands.bus import Context
from truebond.commands.ledger import grant_signup_bonus
from truebond.commands.payments import Outcome, ReceiveStripeEvent, settlement
from truebond.commands.unit import Unit
from truebond.events.base import Meta
from truebond.projections.ledger import coins

USER = "r" * 32
STRIPE = Context(actor="stripe")


async def _paid_order(unit: Unit) -> dict[str, Any]:
    """A pending order of USER (10 coins) and the `payment_intent.succeeded` event Stripe sends for it."""
    mine = Context(actor=f"user:{USER}").meta()
    await grant_signup_bonus(unit, USER, mine)
    package = payments.PACKAGES["popular"]
    intent = stripe_id("pi")
    await payments.record_order(unit, intent_id=intent, payment_id="p" * 32, user_id=USER, package=package, meta=mine)
    return event("payment_intent.succeeded", paid_intent(intent, USER, "p" * 32, package))


def _intent(evt: dict[str, Any]) -> str:
    return str(evt["data"]["object"]["id"])


async def _send(runtime: Runtime, evt: dict[str, Any]) -> Outcome:
    outcome, _ = await runtime.bus.handle(ReceiveStripeEvent(payload=json.dumps(evt).encode()), STRIPE)
    return outcome


async def _reverse(runtime: Runtime, intent: str, event_type: str = "charge.refunded") -> Outcome:
    charge = {"id": stripe_id("ch"), "object": "charge", "amount": 45000, "currency": "inr", "payment_intent": intent}
    return await _send(runtime, event(event_type, charge))


async def test_refund_recorded_after_the_success_check_but_before_the_credit(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = runtime.unit
    success = await _paid_order(unit)
    real_credit = settlement._credit

    async def refund_first(unit: Unit, order: Any, meta: Meta) -> Any:
        # The whole refund runs here: it sees no credit yet, so it withdraws nothing.
        outcome = await _reverse(runtime, _intent(success))
        assert outcome.coins == 0
        return await real_credit(unit, order, meta)

    monkeypatch.setattr(settlement, "_credit", refund_first)
    await _send(runtime, success)

    assert await coins(unit.db, USER) == 10
    doc = await unit.db["payments"].find_one({"_id": _intent(success)})
    assert doc["status"] == "refunded"
    kinds = [r.type for r in await unit.store.load(f"account-{USER}")]
    assert kinds == ["SignupBonusGranted", "CreditsPurchased", "CreditsReversed"]


async def test_refund_arriving_between_the_credit_and_the_completion(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = runtime.unit
    success = await _paid_order(unit)
    real_credit = settlement._credit

    async def refund_after(unit: Unit, order: Any, meta: Meta) -> Any:
        result = await real_credit(unit, order, meta)
        outcome = await _reverse(runtime, _intent(success))
        assert outcome.coins == 500
        return result

    monkeypatch.setattr(settlement, "_credit", refund_after)
    await _send(runtime, success)

    assert await coins(unit.db, USER) == 10
    doc = await unit.db["payments"].find_one({"_id": _intent(success)})
    assert doc["status"] == "refunded"
    assert len([r for r in await unit.store.load(f"account-{USER}") if r.type == "CreditsReversed"]) == 1


async def test_a_reversed_payment_is_not_credited_by_a_late_success(runtime: Runtime) -> None:
    unit = runtime.unit
    success = await _paid_order(unit)
    await _reverse(runtime, _intent(success), "charge.dispute.created")
    outcome = await _send(runtime, success)
    assert (outcome.status, outcome.reason) == ("rejected", "payment_reversed")
    assert await coins(unit.db, USER) == 10
    assert await unit.store.get(payments.credit_event_id(_intent(success))) is None
