"""Settling what Stripe reports: a succeeded intent credits its order once, a failure marks it,
a refund or dispute withdraws the purchase's unspent coins.

Coins are credited only by `settle_succeeded`, from a verified Stripe event (or a reconciliation
that asked Stripe itself) that agrees with the server's own order, as one `CreditsPurchased`
event whose idempotency id is `stripe-pi:<intent>`: however many deliveries, event ids or
reconciliation runs announce one payment, it is credited once. These are shared steps of the
webhook and reconcile handlers, not commands of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from truebond.adapters.stripe_gateway import IntentFacts
from truebond.commands import ledger
from truebond.commands.decide import Decision, Loader, decide_and_append, read_model
from truebond.commands.ledger import LedgerResult
from truebond.commands.payments.packages import PACKAGES, REVERSED_STATUSES, credit_event_id, payment_stream, reversal_event_id
from truebond.commands.unit import Unit
from truebond.events.base import Event, Head, Meta
from truebond.events.ledger import CreditsPurchased, CreditsReversed, LedgerEvent
from truebond.events.payments import PaymentFailed, PaymentRejected, PaymentReversed, PaymentSucceeded
from truebond.logging import get_logger
from truebond.projections.payments import PAYMENTS

log = get_logger(__name__)

Payment = dict[str, Any]


@attrs.frozen
class Outcome:
    """What handling a Stripe fact did."""

    status: str  # credited | already_credited | rejected | failed_marked | reversed | recorded | ignored
    reason: str = ""
    coins: int = 0
    user_id: str | None = None
    payment_id: str | None = None


def mismatch(order: Mapping[str, Any], facts: IntentFacts) -> str | None:
    """Why Stripe's facts disagree with the server's order, or None when they agree."""
    if facts.status != "succeeded":
        return "not_succeeded"
    if facts.amount != order["amount"] or (facts.amount_received is not None and facts.amount_received != order["amount"]):
        return "amount_mismatch"
    if facts.currency.lower() != order["currency"]:
        return "currency_mismatch"
    expected = {"user_id": order["userId"], "package_id": order["package_id"], "payment_id": order["payment_id"]}
    if any(facts.metadata.get(k) != v for k, v in expected.items()):
        return "metadata_mismatch"
    return None


async def settle_succeeded(unit: Unit, facts: IntentFacts, source: str, meta: Meta) -> Outcome:
    """Credit the order's coins for a succeeded PaymentIntent, once; refuse anything that disagrees.

    Refused: an intent the server never created, an amount, currency or metadata that differs
    from the order, a payment already refunded or disputed before it was credited.
    """
    intent = facts.intent_id
    order, head = await unit.load(PAYMENTS, payment_stream(intent), intent)
    if order is None:
        return Outcome("rejected", "unknown_intent")
    user_id, payment_id = str(order["userId"]), str(order["payment_id"])
    problem = mismatch(order, facts)
    if problem is not None:
        await _mark_rejected(unit, intent, source, problem, meta)
        return Outcome("rejected", problem, user_id=user_id, payment_id=payment_id)
    if order.get("status") in REVERSED_STATUSES and await unit.store.get(credit_event_id(intent)) is None:
        return Outcome("rejected", "payment_reversed", user_id=user_id, payment_id=payment_id)
    credited = await _credit(unit, order, meta)
    await _complete(unit, intent, credited, facts.charge_id, source, meta, known=(order, head))
    status = "credited" if credited.created else "already_credited"
    return Outcome(status, coins=credited.entry.amount, user_id=user_id, payment_id=payment_id)


async def _credit(unit: Unit, order: Mapping[str, Any], meta: Meta) -> LedgerResult:
    """The order's coins as one `CreditsPurchased` event, once per intent (`stripe-pi:<intent>`)."""
    intent, payment_id, package_id = str(order["intent_id"]), str(order["payment_id"]), str(order["package_id"])
    coins = int(order["coins"])
    package = PACKAGES.get(package_id)
    label = package.label if package is not None else package_id
    return await ledger.credit(
        unit,
        str(order["userId"]),
        coins,
        event_class=CreditsPurchased,
        reason="purchase",
        reference=f"payment:{payment_id}",
        event_id=credit_event_id(intent),
        meta=meta,
        description=f"Purchased {coins} coins ({label})",
        fields={"payment_id": payment_id, "intent_id": intent, "package_id": package_id},
    )


async def _complete(
    unit: Unit,
    intent: str,
    credited: LedgerResult,
    charge_id: str | None,
    source: str,
    meta: Meta,
    known: tuple[Payment, Head],
) -> None:
    """Move the payment to completed after its credit, or withdraw it if a reversal came first.

    The first attempt decides on the state read before crediting (`known`); if the payment stream
    moved since, the append conflicts and the next attempt decides on fresh state.
    """
    event = PaymentSucceeded(
        stripe_event_id=source, coins=credited.entry.amount, credit_event_id=credit_event_id(intent), charge_id=charge_id
    )
    doc, _ = await _record_on_payment(
        unit,
        intent,
        meta,
        lambda doc: doc.get("status") not in (*REVERSED_STATUSES, "completed"),
        event,
        f"payment-succeeded:{intent}",
        load=_known_first(known, read_model(PAYMENTS, payment_stream(intent), intent)),
    )
    if doc is not None and doc.get("status") in REVERSED_STATUSES:
        # A refund or dispute was recorded while this credit was being made: undo it now.
        await _withdraw(unit, doc, str(doc.get("reversals", ["refund"])[0]), meta)


def _known_first(known: tuple[Payment, Head], fresh: Loader[Payment | None]) -> Loader[Payment | None]:
    """A loader that answers `known` once (state already read), then loads fresh state."""
    pending = [known]

    async def load(unit: Unit) -> tuple[Payment | None, Head]:
        return pending.pop() if pending else await fresh(unit)

    return load


async def _record_on_payment(
    unit: Unit,
    intent: str,
    meta: Meta,
    applies: Callable[[Payment], bool],
    event: Event,
    event_id: str,
    load: Loader[Payment | None] | None = None,
) -> tuple[Payment | None, bool]:
    """Append `event` to the payment's stream when `applies(payment)`, retrying on a conflict.

    Returns the payment as it was last decided on (None when the server has no such order), and
    whether this call appended the event.
    """
    stream = payment_stream(intent)
    seen: list[Payment | None] = [None]

    def decide(doc: Payment | None) -> Decision | None:
        seen[0] = doc
        return Decision(event, event_id) if doc is not None and applies(doc) else None

    done = await decide_and_append(unit, stream, load or read_model(PAYMENTS, stream, intent), decide, meta)
    return seen[0], any(appended.created for appended in done)


async def _mark_rejected(unit: Unit, intent: str, source: str, reason: str, meta: Meta) -> None:
    await _record_on_payment(
        unit,
        intent,
        meta,
        lambda doc: doc.get("status") in ("pending", "failed"),
        PaymentRejected(stripe_event_id=source, reason=reason),
        f"payment-rejected:{intent}",
    )


async def mark_failed(unit: Unit, intent: str, source: str, failure_code: str, meta: Meta) -> Outcome:
    """A failed attempt: a pending payment becomes failed (a later success still credits it)."""
    doc, _ = await _record_on_payment(
        unit,
        intent,
        meta,
        lambda doc: doc.get("status") == "pending",
        PaymentFailed(stripe_event_id=source, failure_code=failure_code),
        f"payment-failed:{intent}",
    )
    if doc is None:
        return Outcome("ignored", "unknown_intent")
    if doc.get("status") != "pending":
        return Outcome("recorded", f"already_{doc.get('status')}")
    return Outcome("failed_marked", user_id=str(doc["userId"]), payment_id=str(doc["payment_id"]))


async def settle_reversal(unit: Unit, intent: str, cause: str, source: str, meta: Meta) -> Outcome:
    """A refund or dispute: record it on the payment, then withdraw the purchase's unspent coins.

    The withdrawal is min(coins purchased, current balance), once per intent, never below zero,
    and the same ledger event flags the account for review.
    """
    order, _ = await _record_on_payment(
        unit,
        intent,
        meta,
        lambda doc: cause not in doc.get("reversals", []),
        PaymentReversed(stripe_event_id=source, cause=cause),
        f"payment-{cause}:{intent}",
    )
    if order is None:
        return Outcome("ignored", "unknown_intent")
    withdrawn = await _withdraw(unit, order, cause, meta)
    return Outcome("reversed", coins=withdrawn, user_id=str(order["userId"]), payment_id=str(order["payment_id"]))


async def _withdraw(unit: Unit, order: Mapping[str, Any], cause: str, meta: Meta) -> int:
    """Take back what is left of a credited purchase (0 when it was never credited)."""
    user_id, intent = str(order["userId"]), str(order["intent_id"])
    purchase = await unit.store.get(credit_event_id(intent))
    if purchase is None or not isinstance(purchase.event, LedgerEvent):
        return 0
    purchased = purchase.event.amount

    def decide(coins: int) -> LedgerEvent:
        take = max(0, min(purchased, coins))
        return CreditsReversed(
            user_id=user_id,
            amount=-take,
            reason=cause,
            reference=f"payment:{order['payment_id']}",
            balance_after=coins - take,
            description=f"{cause.capitalize()}: {take} of {purchased} purchased coins withdrawn",
            payment_id=str(order["payment_id"]),
            intent_id=intent,
            cause=cause,
            flagged=True,
        )

    result = await ledger.record_change(unit, user_id, event_id=reversal_event_id(intent), meta=meta, decide=decide)
    if result.created:
        log.warning("payment.reversed", type=cause, coins=-result.entry.amount, status="flagged")
    return -result.entry.amount
