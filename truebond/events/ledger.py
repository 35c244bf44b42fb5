"""Coin ledger events on the stream `account-<user>`: each carries the balance after it."""

from __future__ import annotations

import attrs

from truebond.events.base import Event, event


@attrs.frozen
class LedgerEvent(Event):
    """A change of coins: signed amount, reason, reference and the balance after it."""

    user_id: str
    amount: int
    reason: str
    reference: str
    balance_after: int
    description: str = ""


@event("SignupBonusGranted")
@attrs.frozen
class SignupBonusGranted(LedgerEvent):
    """The 10 coins every new account gets."""


@event("CoinsDeducted")
@attrs.frozen
class CoinsDeducted(LedgerEvent):
    """Coins spent on something billable (amount is negative)."""
