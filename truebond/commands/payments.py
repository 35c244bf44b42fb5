"""Payment commands: orders from the server's package table, verified Stripe events, reconciliation.

Coins are credited only by `settle_succeeded`, from a verified Stripe event (or a reconciliation
that asked Stripe itself) that agrees with the server's own order, as one `CreditsPurchased`
event whose idempotency id is `stripe-pi:<intent>`: however many deliveries, event ids or
reconciliation runs announce one payment, it is credited once.

Streams: `payment-<intent>` (the order and its status decisions), `stripe-<event id>` (each
verified webhook and, when refused, its rejection), `account-<user>` (the coins).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from truebond.adapters.stripe_gateway import GatewayError, IntentFacts, PaymentGateway
from truebond.commands import ledger
from truebond.commands.bus import HandlerTable, ReactionTable
from truebond.commands.ledger import LedgerResult
from truebond.commands.unit import Unit, new_id
from truebond.errors import DependencyDown, MalformedStripeEvent, NotFound, ValidationFailed
from truebond.events import codec
from truebond.events.base import Event, Head, Meta
from truebond.events.ledger import CreditsPurchased, CreditsReversed, LedgerEvent
from truebond.events.payments import (
    PaymentCreated,
    PaymentFailed,
    PaymentRejected,
    PaymentReversed,
    PaymentSucceeded,
    StripeEventReceived,
    StripeEventRejected,
)
from truebond.events.store import with_retry
from truebond.logging import get_logger
from truebond.projections import ledger as ledger_view
from truebond.projections.payments import PAYMENTS, REVERSED_STATUS, for_user

log = get_logger(__name__)

CURRENCY = "inr"
MIN_PURCHASE = 100
SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
REFUNDED = "charge.refunded"
DISPUTED = "charge.dispute.created"
REVERSAL_CAUSES = {REFUNDED: "refund", DISPUTED: "dispute"}
REVERSED_STATUSES = tuple(REVERSED_STATUS.values())  # the payment statuses a refund or dispute sets
METADATA_KEYS = ("user_id", "package_id", "payment_id")
_STRIPE_ID = re.compile(r"^[A-Za-z0-9_]{3,255}$")


@attrs.frozen
class Package:
    """A coin package: what it costs (rupees) and what it gives."""

    id: str
    coins: int
    amount_inr: int
    label: str
    discount: int
    popular: bool

    @property
    def amount(self) -> int:
        """The Stripe amount: rupees x 100 (paise)."""
        return self.amount_inr * 100


# The server's price table (LEGACY.md), in API.md's order: the only source of amounts, currencies and coins.
PACKAGES: dict[str, Package] = {
    p.id: p
    for p in (
        Package("premium", coins=1000, amount_inr=800, label="Premium", discount=20, popular=True),
        Package("popular", coins=500, amount_inr=450, label="Popular", discount=10, popular=False),
        Package("starter", coins=100, amount_inr=100, label="Starter", discount=0, popular=False),
    )
}


@attrs.frozen
class Order:
    """A created order: what the client needs to confirm the payment with Stripe."""

    payment_id: str
    intent_id: str
    client_secret: str
    amount: int
    currency: str
    coins: int
    package_id: str


@attrs.frozen
class Outcome:
    """What handling a Stripe fact did."""

    status: str  # credited | already_credited | rejected | failed_marked | reversed | recorded | ignored
    reason: str = ""
    coins: int = 0
    user_id: str | None = None
    payment_id: str | None = None


@attrs.define
class ReconcileReport:
    """What a reconciliation run found and did."""

    checked: int = 0
    credited: int = 0
    already_credited: int = 0
    foreign: int = 0
    rejected: list[tuple[str, str]] = attrs.field(factory=list)


def payment_stream(intent_id: str) -> str:
    """The stream of one PaymentIntent's order and status."""
    return f"payment-{intent_id}"


def credit_event_id(intent_id: str) -> str:
    """The idempotency id of the one credit a PaymentIntent can give."""
    return f"stripe-pi:{intent_id}"


def reversal_event_id(intent_id: str) -> str:
    """The idempotency id of the one withdrawal a refunded or disputed PaymentIntent causes."""
    return f"stripe-reversal:{intent_id}"


def receipt_event_id(stripe_event_id: str) -> str:
    """The idempotency id of a verified Stripe webhook event."""
    return f"stripe-evt:{stripe_event_id}"


def _gateway(unit: Unit) -> PaymentGateway:
    if unit.stripe is None:
        raise DependencyDown("Payment provider unavailable")
    return unit.stripe


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


async def place_order(unit: Unit, user_id: str, package_id: str, meta: Meta) -> Order:
    """Create a PaymentIntent for a server package and record it as `PaymentCreated`.

    Amount, currency and coins come from PACKAGES only. The Stripe Idempotency-Key is bound to
    the new payment id, so the client library's network retries cannot create two intents.
    """
    package = PACKAGES.get(package_id)
    if package is None:
        raise ValidationFailed([{"loc": ["body", "package_id"], "msg": "unknown package"}])
    gateway = _gateway(unit)
    payment_id = new_id()
    try:
        created = await gateway.create_intent(
            amount=package.amount,
            currency=CURRENCY,
            metadata={"user_id": user_id, "package_id": package.id, "payment_id": payment_id},
            idempotency_key=f"truebond-order-{payment_id}",
            description=f"TrueBond {package.label}: {package.coins} coins",
        )
    except GatewayError:
        raise DependencyDown("Payment provider unavailable") from None
    if created.amount != package.amount or created.currency.lower() != CURRENCY:
        log.error("payment.order_mismatch", amount=created.amount, status="refused")
        raise DependencyDown("Payment provider unavailable")
    await record_order(unit, intent_id=created.id, payment_id=payment_id, user_id=user_id, package=package, meta=meta)
    log.info("payment.order_created", amount=package.amount, status="pending")
    return Order(payment_id, created.id, created.client_secret, package.amount, CURRENCY, package.coins, package.id)


async def record_order(unit: Unit, *, intent_id: str, payment_id: str, user_id: str, package: Package, meta: Meta) -> PaymentCreated:
    """Record the server's own order for a PaymentIntent (first event of `payment-<intent>`)."""
    event = PaymentCreated(
        payment_id=payment_id,
        user_id=user_id,
        package_id=package.id,
        coins=package.coins,
        amount=package.amount,
        currency=CURRENCY,
        intent_id=intent_id,
    )
    appended = await unit.append(payment_stream(intent_id), Head(), event, event_id=f"payment-created:{intent_id}", meta=meta)
    stored = appended.recorded.event
    assert isinstance(stored, PaymentCreated)
    return stored


async def payment_status(unit: Unit, user_id: str, intent_id: str) -> tuple[str, int]:
    """(pending | completed | failed, coins credited) of the caller's own payment; reads only.

    A payment of someone else answers NotFound, like one that does not exist.
    """
    doc = await for_user(unit.db, user_id, intent_id)
    if doc is None:
        raise NotFound("Payment not found")
    status = str(doc.get("status", "pending"))
    if status == "completed":
        return "completed", int(doc.get("coins_credited", doc.get("coins", 0)))
    if status in ("pending", "failed"):
        # The credit is the truth: it may be stored a moment before the status follows it.
        credit = await unit.store.get(credit_event_id(intent_id))
        if credit is not None and isinstance(credit.event, LedgerEvent):
            return "completed", credit.event.amount
    if status == "pending":
        return "pending", 0
    return "failed", 0


# ---------------------------------------------------------------------------------------------
# Verified Stripe events
# ---------------------------------------------------------------------------------------------


def parse_stripe_event(data: Any, payload_sha256: str) -> StripeEventReceived:
    """The fields the server acts on, from a verified event body; ValueError when malformed."""
    if not isinstance(data, Mapping) or data.get("object") != "event":
        raise ValueError("not a Stripe event")
    event_id, event_type = data.get("id"), data.get("type")
    if not isinstance(event_id, str) or not _STRIPE_ID.match(event_id) or not event_id.startswith("evt_"):
        raise ValueError("bad event id")
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= 100:
        raise ValueError("bad event type")
    body = data.get("data")
    obj = body.get("object") if isinstance(body, Mapping) else None
    if not isinstance(obj, Mapping):
        raise ValueError("no data.object")
    object_type, object_id = str(obj.get("object", "")), str(obj.get("id", ""))
    fields: dict[str, Any] = {}
    if object_type == "payment_intent":
        fields = {
            "intent_id": object_id,
            "charge_id": _id_of(obj.get("latest_charge")),
            "amount_received": _int_or_none(obj.get("amount_received")),
            "failure_code": _failure_code(obj.get("last_payment_error")),
        }
    elif object_type in ("charge", "dispute"):
        fields = {
            "intent_id": _id_of(obj.get("payment_intent")),
            "charge_id": object_id if object_type == "charge" else _id_of(obj.get("charge")),
        }
    metadata = obj.get("metadata")
    kept = {}
    if isinstance(metadata, Mapping):
        kept = {k: str(metadata[k])[:100] for k in METADATA_KEYS if isinstance(metadata.get(k), (str, int))}
    currency = obj.get("currency")
    status = obj.get("status")
    return StripeEventReceived(
        stripe_event_id=event_id,
        event_type=event_type,
        object_type=object_type[:60],
        object_id=object_id[:255],
        created=_int_or_none(data.get("created")) or 0,
        livemode=bool(data.get("livemode", False)),
        payload_sha256=payload_sha256,
        amount=_int_or_none(obj.get("amount")),
        currency=currency.lower()[:10] if isinstance(currency, str) else None,
        status=status[:60] if isinstance(status, str) else None,
        metadata=kept,
        **fields,
    )


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value[:255] if isinstance(value, str) and value else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _failure_code(error: Any) -> str | None:
    if not isinstance(error, Mapping):
        return None
    code = error.get("decline_code") or error.get("code")
    return code[:60] if isinstance(code, str) else None


async def receive_stripe_event(unit: Unit, payload: bytes, request_id: str | None = None) -> tuple[Outcome, bool]:
    """Record a verified webhook once (`stripe-evt:<id>`) and act on it; (outcome, first delivery).

    Acting is idempotent, so a redelivery (or Stripe's retry after a failure here) completes
    whatever an earlier attempt left undone and changes nothing that was done.
    """
    try:
        data = json.loads(payload)
        received = parse_stripe_event(data, hashlib.sha256(payload).hexdigest())
        # Lone surrogates (\ud800 escapes) parse, but no store or log can encode them.
        json.dumps(codec.encode(received), ensure_ascii=False).encode("utf-8")
    except (ValueError, TypeError, UnicodeError, RecursionError):
        raise MalformedStripeEvent() from None
    receipt = receipt_event_id(received.stripe_event_id)
    meta = Meta(actor="stripe", request_id=request_id, causation_id=receipt)
    appended = await unit.append(f"stripe-{received.stripe_event_id}", Head(), received, event_id=receipt, meta=meta)
    stored = appended.recorded.event
    assert isinstance(stored, StripeEventReceived)
    outcome = await _act(unit, stored, meta)
    if outcome.status == "rejected":
        await _record_rejection(unit, stored, outcome, meta)
        log.warning(
            "payment.rejected",
            event_id=stored.stripe_event_id,
            type=stored.event_type,
            amount=stored.amount,
            status="rejected",
            reason=outcome.reason,
        )
    else:
        log.info(
            "payment.webhook",
            event_id=stored.stripe_event_id,
            type=stored.event_type,
            amount=stored.amount,
            status=outcome.status if appended.created else f"duplicate:{outcome.status}",
        )
    return outcome, appended.created


async def _act(unit: Unit, received: StripeEventReceived, meta: Meta) -> Outcome:
    if received.event_type == SUCCEEDED:
        if received.object_type != "payment_intent" or received.intent_id is None:
            return Outcome("rejected", "not_a_payment_intent")
        facts = IntentFacts(
            intent_id=received.intent_id,
            amount=-1 if received.amount is None else received.amount,
            currency=received.currency or "",
            status=received.status or "",
            amount_received=received.amount_received,
            metadata=received.metadata,
            charge_id=received.charge_id,
            created=received.created,
        )
        return await settle_succeeded(unit, facts, received.stripe_event_id, meta)
    if received.event_type == FAILED and received.object_type == "payment_intent" and received.intent_id is not None:
        return await mark_failed(unit, received.intent_id, received.stripe_event_id, received.failure_code or "", meta)
    cause = REVERSAL_CAUSES.get(received.event_type)
    if cause is not None:
        if received.intent_id is None:
            return Outcome("ignored", "no_payment_intent")
        return await settle_reversal(unit, received.intent_id, cause, received.stripe_event_id, meta)
    return Outcome("recorded")


async def _record_rejection(unit: Unit, received: StripeEventReceived, outcome: Outcome, meta: Meta) -> None:
    stream = f"stripe-{received.stripe_event_id}"
    rejection = StripeEventRejected(
        stripe_event_id=received.stripe_event_id,
        event_type=received.event_type,
        reason=outcome.reason,
        intent_id=received.intent_id,
        user_id=outcome.user_id,
        payment_id=outcome.payment_id,
        amount=received.amount,
    )

    async def attempt() -> None:
        head = await unit.store.head(stream)
        await unit.append(stream, head, rejection, event_id=f"stripe-rejected:{received.stripe_event_id}", meta=meta)

    await with_retry(attempt)


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
    completed = await _complete(unit, intent, credited, facts.charge_id, source, meta, known=(order, head))
    if credited.created or completed:
        # Also when a retry completes what a failed attempt credited but could not announce.
        await _notify_balance(unit, user_id)
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
    known: tuple[dict[str, Any], Head],
) -> bool:
    """Move the payment to completed after its credit, or withdraw it if a reversal came first.

    The first attempt decides on the state read before crediting (`known`); if the payment stream
    moved since, the append conflicts and the next attempt decides on fresh state. True when
    this call recorded the completion.
    """
    stream = payment_stream(intent)
    first: list[tuple[dict[str, Any], Head]] = [known]

    async def attempt() -> bool:
        if first:
            doc, head = first.pop()
        else:
            fresh, head = await unit.load(PAYMENTS, stream, intent)
            assert fresh is not None
            doc = fresh
        if doc.get("status") in REVERSED_STATUSES:
            # A refund or dispute was recorded while this credit was being made: undo it now.
            await _withdraw(unit, doc, str(doc.get("reversals", ["refund"])[0]), meta)
            return False
        if doc.get("status") == "completed":
            return False
        event = PaymentSucceeded(
            stripe_event_id=source, coins=credited.entry.amount, credit_event_id=credit_event_id(intent), charge_id=charge_id
        )
        appended = await unit.append(stream, head, event, event_id=f"payment-succeeded:{intent}", meta=meta)
        return appended.created

    return await with_retry(attempt)


async def _record_on_payment(
    unit: Unit, intent: str, meta: Meta, applies: Callable[[dict[str, Any]], bool], event: Event, event_id: str
) -> dict[str, Any] | None:
    """Append `event` to the payment's stream when `applies(payment)`, retrying on a conflict.

    Returns the payment as it was decided on (None when the server has no such order).
    """
    stream = payment_stream(intent)

    async def attempt() -> dict[str, Any] | None:
        doc, head = await unit.load(PAYMENTS, stream, intent)
        if doc is not None and applies(doc):
            await unit.append(stream, head, event, event_id=event_id, meta=meta)
        return doc

    return await with_retry(attempt)


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
    doc = await _record_on_payment(
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
    order = await _record_on_payment(
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
        await _notify_balance(unit, user_id)
        log.warning("payment.reversed", type=cause, coins=-result.entry.amount, status="flagged")
    return -result.entry.amount


async def _notify_balance(unit: Unit, user_id: str) -> None:
    """Push `balance_updated` from the balance projection; a push failure never undoes a credit."""
    try:
        coins = await ledger_view.coins(unit.db, user_id)
        await unit.notifier.emit_to_user(user_id, "balance_updated", {"coins": coins})
    except Exception:  # noqa: BLE001 - the coins are stored; the client reads them on its next call
        log.warning("payment.notify_failed")


# ---------------------------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------------------------


async def reconcile(unit: Unit, since_days: int, meta: Meta | None = None) -> ReconcileReport:
    """Credit, through the same idempotent path, succeeded PaymentIntents Stripe lists since
    `since_days` ago that have no `CreditsPurchased` event (e.g. webhooks that never arrived).

    Intents without the server's metadata belong to something else on the Stripe account and are
    skipped; an intent with it that disagrees with an order is refused and reported.
    """
    gateway = _gateway(unit)
    meta = meta or Meta(actor="system:reconcile")
    created_gte = int(unit.clock.time() - since_days * 86400)
    report = ReconcileReport()
    try:
        async for facts in gateway.succeeded_intents(created_gte):
            report.checked += 1
            if not facts.metadata.get("payment_id"):
                report.foreign += 1
                continue
            if await unit.store.get(credit_event_id(facts.intent_id)) is not None:
                report.already_credited += 1
                continue
            outcome = await settle_succeeded(unit, facts, "reconcile", meta)
            if outcome.status == "credited":
                report.credited += 1
            elif outcome.status == "already_credited":
                report.already_credited += 1
            else:
                report.rejected.append((facts.intent_id, outcome.reason))
                log.warning("payment.reconcile_rejected", amount=facts.amount, status="rejected", reason=outcome.reason)
    except GatewayError:
        raise DependencyDown("Payment provider unavailable") from None
    log.info("payment.reconciled", checked=report.checked, credited=report.credited, rejected=len(report.rejected))
    return report


HANDLERS: HandlerTable = {}
REACTIONS: ReactionTable = {}
