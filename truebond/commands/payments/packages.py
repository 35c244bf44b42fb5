"""The server's price table, the Stripe event types it acts on, and the ids of payment events.

Streams: `payment-<intent>` (the order and its status decisions), `stripe-<event id>` (each
verified webhook and, when refused, its rejection), `account-<user>` (the coins).
"""

from __future__ import annotations

import attrs

from truebond.adapters.stripe_gateway import PaymentGateway
from truebond.commands.unit import Unit
from truebond.errors import DependencyDown
from truebond.projections.payments import REVERSED_STATUS

CURRENCY = "inr"
MIN_PURCHASE = 100
SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
REFUNDED = "charge.refunded"
DISPUTED = "charge.dispute.created"
REVERSAL_CAUSES = {REFUNDED: "refund", DISPUTED: "dispute"}
REVERSED_STATUSES = tuple(REVERSED_STATUS.values())  # the payment statuses a refund or dispute sets


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


# The server's price table (LEGACY.md): the only source of amounts, currencies and coins. In the
# order starter, popular, premium: the client pairs the cards with its own copy by index.
PACKAGES: dict[str, Package] = {
    p.id: p
    for p in (
        Package("starter", coins=100, amount_inr=100, label="Starter", discount=0, popular=False),
        Package("popular", coins=500, amount_inr=450, label="Popular", discount=10, popular=False),
        Package("premium", coins=1000, amount_inr=800, label="Premium", discount=20, popular=True),
    )
}


def payment_stream(intent_id: str) -> str:
    """The stream of one PaymentIntent's order and status."""
    return f"payment-{intent_id}"


def stripe_stream(stripe_event_id: str) -> str:
    """The stream of one verified Stripe webhook event (its receipt and any rejection)."""
    return f"stripe-{stripe_event_id}"


def credit_event_id(intent_id: str) -> str:
    """The idempotency id of the one credit a PaymentIntent can give."""
    return f"stripe-pi:{intent_id}"


def reversal_event_id(intent_id: str) -> str:
    """The idempotency id of the one withdrawal a refunded or disputed PaymentIntent causes."""
    return f"stripe-reversal:{intent_id}"


def receipt_event_id(stripe_event_id: str) -> str:
    """The idempotency id of a verified Stripe webhook event."""
    return f"stripe-evt:{stripe_event_id}"


def gateway(unit: Unit) -> PaymentGateway:
    """The Stripe client, or DependencyDown when the server runs without one."""
    if unit.stripe is None:
        raise DependencyDown("Payment provider unavailable")
    return unit.stripe
