"""Ledger commands: coins change only through events decided against the account stream."""

from __future__ import annotations

import attrs

from truebond.commands.unit import Unit
from truebond.errors import PaymentRequired
from truebond.events.base import Meta
from truebond.events.ledger import CoinsDeducted, LedgerEvent, SignupBonusGranted
from truebond.events.store import with_retry
from truebond.projections.ledger import BALANCES

SIGNUP_BONUS = 10


def account_stream(user_id: str) -> str:
    """The ledger stream of a user."""
    return f"account-{user_id}"


@attrs.frozen
class LedgerResult:
    """The ledger entry that holds the change, and whether this call made it."""

    entry: LedgerEvent
    created: bool


async def balance(unit: Unit, user_id: str) -> tuple[int, int]:
    """(coins, stream version) decided against the account stream's current state."""
    doc, head = await unit.load(BALANCES, account_stream(user_id), user_id)
    return (0 if doc is None else int(doc.get("coins", 0))), head.version


async def grant_signup_bonus(unit: Unit, user_id: str, meta: Meta) -> LedgerResult:
    """The 10 coins of a new account, once (idempotency id `signup-bonus:<user>`)."""

    async def attempt() -> LedgerResult:
        doc, head = await unit.load(BALANCES, account_stream(user_id), user_id)
        coins = 0 if doc is None else int(doc.get("coins", 0))
        event = SignupBonusGranted(
            user_id=user_id,
            amount=SIGNUP_BONUS,
            reason="signup_bonus",
            reference=f"user:{user_id}",
            balance_after=coins + SIGNUP_BONUS,
            description="Welcome bonus",
        )
        appended = await unit.append(account_stream(user_id), head, event, event_id=f"signup-bonus:{user_id}", meta=meta)
        stored = appended.recorded.event
        assert isinstance(stored, LedgerEvent)
        return LedgerResult(stored, appended.created)

    return await with_retry(attempt)


async def deduct(
    unit: Unit,
    user_id: str,
    amount: int,
    *,
    reason: str,
    reference: str,
    event_id: str,
    meta: Meta,
    description: str = "",
    event_class: type[LedgerEvent] = CoinsDeducted,
) -> LedgerResult:
    """Take `amount` coins, refused with PaymentRequired when the balance would go below zero.

    A repeated `event_id` returns the first result and charges nothing more.
    """
    if amount <= 0:
        raise ValueError("deduction amount must be positive")

    async def attempt() -> LedgerResult:
        done = await unit.store.get(event_id)
        if done is not None:
            assert isinstance(done.event, LedgerEvent)
            return LedgerResult(done.event, created=False)
        doc, head = await unit.load(BALANCES, account_stream(user_id), user_id)
        coins = 0 if doc is None else int(doc.get("coins", 0))
        if coins < amount:
            raise PaymentRequired()
        event = event_class(
            user_id=user_id,
            amount=-amount,
            reason=reason,
            reference=reference,
            balance_after=coins - amount,
            description=description,
        )
        appended = await unit.append(account_stream(user_id), head, event, event_id=event_id, meta=meta)
        stored = appended.recorded.event
        assert isinstance(stored, LedgerEvent)
        return LedgerResult(stored, appended.created)

    return await with_retry(attempt)
