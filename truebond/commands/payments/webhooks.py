"""Verified Stripe webhooks: record each event once, act on it, and record why when refused."""

from __future__ import annotations

import attrs

from truebond.adapters.stripe_events import read_stripe_event
from truebond.adapters.stripe_gateway import IntentFacts
from truebond.commands.bus import Command, Context
from truebond.commands.decide import Decision, decide_and_append, head_only
from truebond.commands.payments.packages import FAILED, REVERSAL_CAUSES, SUCCEEDED, receipt_event_id, stripe_stream
from truebond.commands.payments.settlement import Outcome, mark_failed, settle_reversal, settle_succeeded
from truebond.commands.unit import Unit
from truebond.events.base import Head, Meta
from truebond.events.payments import StripeEventReceived, StripeEventRejected
from truebond.logging import get_logger

log = get_logger(__name__)


@attrs.frozen
class ReceiveStripeEvent(Command[tuple[Outcome, bool]]):
    """A webhook body whose Stripe signature the route has already verified."""

    payload: bytes


async def receive_stripe_event(cmd: ReceiveStripeEvent, ctx: Context, deps: Unit) -> tuple[Outcome, bool]:
    """Record a verified webhook once (`stripe-evt:<id>`) and act on it; (outcome, first delivery).

    Acting is idempotent, so a redelivery (or Stripe's retry after a failure here) completes
    whatever an earlier attempt left undone and changes nothing that was done.
    """
    received = read_stripe_event(cmd.payload)
    receipt = receipt_event_id(received.stripe_event_id)
    meta = ctx.meta(causation_id=receipt)
    appended = await deps.append(stripe_stream(received.stripe_event_id), Head(), received, event_id=receipt, meta=meta)
    stored = appended.recorded.event
    assert isinstance(stored, StripeEventReceived)
    outcome = await _act(deps, stored, meta)
    if outcome.status == "rejected":
        await _record_rejection(deps, stored, outcome, meta)
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
    """Record, once, why a verified event was refused (for the admins' payment reviews)."""
    stream = stripe_stream(received.stripe_event_id)
    rejection = StripeEventRejected(
        stripe_event_id=received.stripe_event_id,
        event_type=received.event_type,
        reason=outcome.reason,
        intent_id=received.intent_id,
        user_id=outcome.user_id,
        payment_id=outcome.payment_id,
        amount=received.amount,
    )
    decision = Decision(rejection, f"stripe-rejected:{received.stripe_event_id}")
    await decide_and_append(unit, stream, head_only(stream), lambda _: decision, meta)
