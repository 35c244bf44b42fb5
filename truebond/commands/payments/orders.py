"""Orders: a PaymentIntent for one of the server's packages, recorded as the payment's first event."""

from __future__ import annotations

import attrs

from truebond.adapters.stripe_gateway import GatewayError
from truebond.commands.bus import Command, Context
from truebond.commands.payments.packages import CURRENCY, PACKAGES, Package, gateway, payment_stream
from truebond.commands.unit import Unit, new_id
from truebond.errors import DependencyDown, ValidationFailed
from truebond.events.base import Head, Meta
from truebond.events.payments import PaymentCreated
from truebond.logging import get_logger

log = get_logger(__name__)


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
class PlaceOrder(Command[Order]):
    """Buy one of the server's coin packages: create its PaymentIntent and record the order."""

    user_id: str
    package_id: str


async def place_order(cmd: PlaceOrder, ctx: Context, deps: Unit) -> Order:
    """Create a PaymentIntent for a server package and record it as `PaymentCreated`.

    Amount, currency and coins come from PACKAGES only. The Stripe Idempotency-Key is bound to
    the new payment id, so the client library's network retries cannot create two intents.
    """
    package = PACKAGES.get(cmd.package_id)
    if package is None:
        raise ValidationFailed([{"loc": ["body", "package_id"], "msg": "unknown package"}])
    stripe = gateway(deps)
    payment_id = new_id()
    try:
        created = await stripe.create_intent(
            amount=package.amount,
            currency=CURRENCY,
            metadata={"user_id": cmd.user_id, "package_id": package.id, "payment_id": payment_id},
            idempotency_key=f"truebond-order-{payment_id}",
            description=f"TrueBond {package.label}: {package.coins} coins",
        )
    except GatewayError:
        raise DependencyDown("Payment provider unavailable") from None
    if created.amount != package.amount or created.currency.lower() != CURRENCY:
        log.error("payment.order_mismatch", amount=created.amount, status="refused")
        raise DependencyDown("Payment provider unavailable")
    await record_order(deps, intent_id=created.id, payment_id=payment_id, user_id=cmd.user_id, package=package, meta=ctx.meta())
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
