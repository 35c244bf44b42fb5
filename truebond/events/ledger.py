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


@event("ReferralRewardGranted")
@attrs.frozen
class ReferralRewardGranted(LedgerEvent):
    """The 50 coins a referrer gets when someone signs up with their code (once per signup)."""


@event("CreditsPurchased")
@attrs.frozen(kw_only=True)
class CreditsPurchased(LedgerEvent):
    """A package's coins, credited once per PaymentIntent (idempotency id `stripe-pi:<intent>`)."""

    payment_id: str
    intent_id: str
    package_id: str


@event("CreditsReversed")
@attrs.frozen(kw_only=True)
class CreditsReversed(LedgerEvent):
    """A refund or dispute withdrew what was left of a purchase (never below zero; amount <= 0).

    The same event flags the account for admin review (`flagged`), so both happen together.
    """

    payment_id: str
    intent_id: str
    cause: str
    flagged: bool = True
