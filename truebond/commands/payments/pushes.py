"""Reactions: `balance_updated {coins}` reaches the user's sockets after a credit or a withdrawal.

One push per settled payment: a credit whose completion is recorded is announced by the
completion (`PaymentSucceeded`), which also covers a retry that completes what a failed attempt
credited but could not announce; a credit left uncompleted (a refund came first) announces
itself, and every withdrawal does. Not re-driven: a lost push is healed by the client's next read.
"""

from __future__ import annotations

from truebond.commands.bus import Bus, Context, Reaction, ReactionTable
from truebond.events.base import Recorded
from truebond.events.ledger import CreditsPurchased, CreditsReversed
from truebond.events.payments import PaymentSucceeded
from truebond.logging import get_logger
from truebond.projections import ledger as ledger_view
from truebond.projections import payments as payments_view

log = get_logger(__name__)


async def announce_credit(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Push the balance after a purchase credit, unless its completion announces it."""
    event = rec.event
    assert isinstance(event, CreditsPurchased)
    if not await payments_view.records_completion(bus.deps.db, event.intent_id, rec.id):
        await push_balance(bus, event.user_id)


async def announce_completion(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Push the balance after a payment's completion is recorded."""
    user_id = await payments_view.buyer(bus.deps.db, payments_view.PAYMENTS.key(rec))
    if user_id is not None:
        await push_balance(bus, user_id)


async def announce_withdrawal(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Push the balance after a refund or dispute withdrew coins."""
    event = rec.event
    assert isinstance(event, CreditsReversed)
    await push_balance(bus, event.user_id)


async def push_balance(bus: Bus, user_id: str) -> None:
    """Push `balance_updated` from the balance projection; a push failure never undoes a credit."""
    unit = bus.deps
    try:
        coins = await ledger_view.coins(unit.db, user_id)
        await unit.notifier.emit_to_user(user_id, "balance_updated", {"coins": coins})
    except Exception:  # noqa: BLE001 - the coins are stored; the client reads them on its next call
        log.warning("payment.notify_failed")


REACTIONS: ReactionTable = {
    CreditsPurchased: [Reaction(announce_credit)],
    PaymentSucceeded: [Reaction(announce_completion)],
    CreditsReversed: [Reaction(announce_withdrawal)],
}
