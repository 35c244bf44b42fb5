"""Payment commands: orders from the server's package table, verified Stripe events, reconciliation.

`packages` holds the prices and the ids, `orders` places an order, `webhooks` receives a verified
Stripe event, `reconcile` asks Stripe for what the webhooks missed, `settlement` is what both of
them do with a Stripe fact, and `pushes` tells the user's sockets the new balance.
"""

from __future__ import annotations

from truebond.commands.bus import HandlerTable, ReactionTable
from truebond.commands.payments import orders, pushes, reconcile, webhooks
from truebond.commands.payments.orders import Order, PlaceOrder, record_order
from truebond.commands.payments.packages import CURRENCY, MIN_PURCHASE, PACKAGES, Package, credit_event_id, payment_stream
from truebond.commands.payments.reconcile import Reconcile, ReconcileReport
from truebond.commands.payments.settlement import Outcome
from truebond.commands.payments.webhooks import ReceiveStripeEvent

__all__ = [
    "CURRENCY",
    "HANDLERS",
    "MIN_PURCHASE",
    "PACKAGES",
    "REACTIONS",
    "Order",
    "Outcome",
    "Package",
    "PlaceOrder",
    "ReceiveStripeEvent",
    "Reconcile",
    "ReconcileReport",
    "credit_event_id",
    "payment_stream",
    "record_order",
]

HANDLERS: HandlerTable = {
    PlaceOrder: orders.place_order,
    ReceiveStripeEvent: webhooks.receive_stripe_event,
    Reconcile: reconcile.reconcile,
}
REACTIONS: ReactionTable = pushes.REACTIONS
