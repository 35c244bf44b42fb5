"""Reconciliation: credit succeeded PaymentIntents whose webhook never arrived (`truebond payments reconcile`)."""

from __future__ import annotations

import attrs

from truebond.adapters.stripe_gateway import GatewayError
from truebond.commands.bus import Command, Context
from truebond.commands.payments.packages import credit_event_id, gateway
from truebond.commands.payments.settlement import settle_succeeded
from truebond.commands.unit import Unit
from truebond.errors import DependencyDown
from truebond.logging import get_logger

log = get_logger(__name__)


@attrs.define
class ReconcileReport:
    """What a reconciliation run found and did."""

    checked: int = 0
    credited: int = 0
    already_credited: int = 0
    foreign: int = 0
    rejected: list[tuple[str, str]] = attrs.field(factory=list)


@attrs.frozen
class Reconcile(Command[ReconcileReport]):
    """Ask Stripe for the succeeded PaymentIntents of the last `since_days` days and credit the missing ones."""

    since_days: int


async def reconcile(cmd: Reconcile, ctx: Context, deps: Unit) -> ReconcileReport:
    """Credit, through the same idempotent path, succeeded PaymentIntents Stripe lists since
    `since_days` ago that have no `CreditsPurchased` event (e.g. webhooks that never arrived).

    Intents without the server's metadata belong to something else on the Stripe account and are
    skipped; an intent with it that disagrees with an order is refused and reported.
    """
    stripe = gateway(deps)
    meta = ctx.meta()
    created_gte = int(deps.clock.time() - cmd.since_days * 86400)
    report = ReconcileReport()
    try:
        async for facts in stripe.succeeded_intents(created_gte):
            report.checked += 1
            if not facts.metadata.get("payment_id"):
                report.foreign += 1
                continue
            if await deps.store.get(credit_event_id(facts.intent_id)) is not None:
                report.already_credited += 1
                continue
            outcome = await settle_succeeded(deps, facts, "reconcile", meta)
            if outcome.status == "credited":
                report.credited += 1
            elif outcome.status == "already_credited":
                report.already_credited += 1
            else:
                report.rejected.append((facts.intent_id, outcome.reason))
                log.warning("payment.reconcile_rejected", amount=facts.amount, status="rejected", reason=outcome.reason)
    except GatewayError:
        raise DependencyDown("Payment provider unavailable") from None
    log.info("payment.reconciled", checked=report.checked, credited=report.credited, rejected=len(report.rejected))
    return report
