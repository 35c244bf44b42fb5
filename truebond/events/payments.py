"""Payment events: orders on `payment-<intent>` streams, verified Stripe webhooks on `stripe-<event>`.

Coins never move here: the purchase and its reversal are ledger events (`CreditsPurchased`,
`CreditsReversed` in events/ledger.py) on the account stream. These events record what the server
ordered, what Stripe told it, and the decisions taken about the payment's status.
"""

from __future__ import annotations

import attrs

from truebond.events.base import Event, event


@event("PaymentCreated")
@attrs.frozen
class PaymentCreated(Event):
    """The server created a PaymentIntent for one of its packages (stream `payment-<intent>`)."""

    payment_id: str
    user_id: str
    package_id: str
    coins: int
    amount: int
    currency: str
    intent_id: str


@event("PaymentSucceeded")
@attrs.frozen
class PaymentSucceeded(Event):
    """The payment's coins were credited (the `CreditsPurchased` event named here holds them)."""

    stripe_event_id: str
    coins: int
    credit_event_id: str
    charge_id: str | None = None


@event("PaymentFailed")
@attrs.frozen
class PaymentFailed(Event):
    """Stripe reported a failed attempt while the payment was still pending."""

    stripe_event_id: str
    failure_code: str = ""


@event("PaymentRejected")
@attrs.frozen
class PaymentRejected(Event):
    """Stripe reported success, but what it reported disagrees with the order: nothing credited."""

    stripe_event_id: str
    reason: str


@event("PaymentReversed")
@attrs.frozen
class PaymentReversed(Event):
    """The payment was refunded or disputed (`cause` is `refund` or `dispute`)."""

    stripe_event_id: str
    cause: str


@event("StripeEventReceived")
@attrs.frozen
class StripeEventReceived(Event):
    """A Stripe webhook event whose signature verified (stream `stripe-<event id>`).

    Only the fields the server acts on are kept, with a digest of the raw payload; Stripe
    objects can carry billing names and emails, which are never copied into the store.
    """

    stripe_event_id: str
    event_type: str
    object_type: str
    object_id: str
    created: int
    livemode: bool
    payload_sha256: str
    intent_id: str | None = None
    charge_id: str | None = None
    amount: int | None = None
    amount_received: int | None = None
    currency: str | None = None
    status: str | None = None
    failure_code: str | None = None
    metadata: dict[str, str] = attrs.field(factory=dict)


@event("StripeEventRejected")
@attrs.frozen
class StripeEventRejected(Event):
    """A verified Stripe event the server refused to act on (for admins to review)."""

    stripe_event_id: str
    event_type: str
    reason: str
    intent_id: str | None = None
    user_id: str | None = None
    payment_id: str | None = None
    amount: int | None = None
