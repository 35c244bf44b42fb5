"""Ledger commands: coins change only through events decided against the account stream.

Every change of coins (signup bonus, referral reward, purchase, message or call charge, admin
adjustment, refund or dispute withdrawal) goes through `record_change`: look the idempotency id
up, load the account's balance caught up to the stream head, decide one `LedgerEvent`, append it
with optimistic concurrency, and start again from fresh state on a version conflict. `credit`,
`deduct` and `grant_signup_bonus` are that step with the decision filled in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from truebond.commands.decide import Decision, decide_and_append, read_model
from truebond.commands.unit import Unit
from truebond.errors import PaymentRequired, TrueBondError
from truebond.events.base import Head, Meta, Recorded
from truebond.events.ledger import CoinsDeducted, LedgerEvent, SignupBonusGranted
from truebond.projections.ledger import BALANCES

SIGNUP_BONUS = 10


class LedgerConflict(TrueBondError):
    """An idempotency id already names an event that is not this account's ledger entry."""


def account_stream(user_id: str) -> str:
    """The ledger stream of a user."""
    return f"account-{user_id}"


@attrs.frozen
class LedgerResult:
    """The ledger entry that holds the change, and whether this call made it."""

    entry: LedgerEvent
    created: bool


# Given the balance the decision is made against, the one ledger event to append.
Decide = Callable[[int], LedgerEvent]


def _existing(done: Recorded, user_id: str, event_id: str) -> LedgerEvent:
    event = done.event
    if not isinstance(event, LedgerEvent) or event.user_id != user_id:
        raise LedgerConflict(f"idempotency id {event_id!r} is already used by another event")
    return event


async def record_change(unit: Unit, user_id: str, *, event_id: str, meta: Meta, decide: Decide, subject: str | None = None) -> LedgerResult:
    """The one path of every coin change: once per `event_id`, never below zero.

    `decide(coins)` builds the event from the current balance; it may raise (PaymentRequired)
    to refuse. A repeated `event_id` returns the first result and changes nothing. An event whose
    `balance_after` is not `coins + amount`, or is below zero, is a bug and is never appended.
    `subject` names the person whose key encrypts the event's personal fields (a message's text).
    """

    stream = account_stream(user_id)
    balance = read_model(BALANCES, stream, user_id)
    found: list[Recorded] = []

    async def load(deps: Unit) -> tuple[int | None, Head]:
        # The idempotency id first: a retried charge that took the last coins is answered with its
        # first result, never refused for want of the coins it already took.
        done = await deps.store.get(event_id)
        if done is not None:
            found[:] = [done]
            return None, Head()
        doc, head = await balance(deps)
        return (0 if doc is None else int(doc.get("coins", 0))), head

    def decide_change(coins: int | None) -> Decision | None:
        if coins is None:
            return None
        event = decide(coins)
        if event.user_id != user_id or event.balance_after != coins + event.amount:
            raise ValueError("a ledger event must chain on the balance it was decided against")
        if event.balance_after < 0:
            raise PaymentRequired()
        return Decision(event, event_id, subject=subject)

    appended = await decide_and_append(unit, stream, load, decide_change, meta)
    if not appended:
        entry = _existing(found[0], user_id, event_id)
        # The first attempt may have stored the event and lost MongoDB's answer before its inline
        # apply: applying again (idempotent) makes the balance show it now, not at the projector's pass.
        await unit.projections.apply(found[0])
        return LedgerResult(entry, created=False)
    return LedgerResult(_existing(appended[0].recorded, user_id, event_id), appended[0].created)


async def credit(
    unit: Unit,
    user_id: str,
    amount: int,
    *,
    event_class: type[LedgerEvent],
    reason: str,
    reference: str,
    event_id: str,
    meta: Meta,
    description: str = "",
    fields: Mapping[str, Any] | None = None,
) -> LedgerResult:
    """Add `amount` coins as one `event_class` event, once per `event_id`.

    `fields` fills the event class's own fields (e.g. a purchase's payment and intent ids).
    """
    if amount <= 0:
        raise ValueError("credit amount must be positive")
    extra = dict(fields or {})

    def decide(coins: int) -> LedgerEvent:
        return event_class(
            user_id=user_id,
            amount=amount,
            reason=reason,
            reference=reference,
            balance_after=coins + amount,
            description=description,
            **extra,
        )

    return await record_change(unit, user_id, event_id=event_id, meta=meta, decide=decide)


async def grant_signup_bonus(unit: Unit, user_id: str, meta: Meta) -> LedgerResult:
    """The 10 coins of a new account, once (idempotency id `signup-bonus:<user>`)."""
    return await credit(
        unit,
        user_id,
        SIGNUP_BONUS,
        event_class=SignupBonusGranted,
        reason="signup_bonus",
        reference=f"user:{user_id}",
        event_id=f"signup-bonus:{user_id}",
        meta=meta,
        description="Welcome bonus",
    )


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

    def decide(coins: int) -> LedgerEvent:
        if coins < amount:
            raise PaymentRequired()
        return event_class(
            user_id=user_id,
            amount=-amount,
            reason=reason,
            reference=reference,
            balance_after=coins - amount,
            description=description,
        )

    return await record_change(unit, user_id, event_id=event_id, meta=meta, decide=decide)
