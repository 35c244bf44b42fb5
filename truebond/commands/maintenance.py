"""Upkeep that runs beside the projector (`truebond project`, and inside `truebond dev`).

Each pass records the expiry of OTP codes that ran out unused (so the audit trail of every
email is complete even when nobody presents the code again) and finishes account erasures
that an earlier attempt left pending. Both are idempotent: several processes may sweep at once.
"""

from __future__ import annotations

import asyncio

import attrs

from truebond.commands import account, otp
from truebond.commands.bus import HandlerTable, ReactionTable
from truebond.commands.unit import Unit
from truebond.logging import get_logger

log = get_logger(__name__)

SWEEP_SECONDS = 30.0


@attrs.frozen
class SweepReport:
    """What one pass did (a part that failed is counted as 0 and logged)."""

    otp_expired: int
    erasures_finished: int


async def sweep_once(unit: Unit) -> SweepReport:
    """One pass: each part runs even when the other fails (Redis down must not stop an erasure)."""
    try:
        expired = await otp.record_expired_codes(unit)
    except Exception as exc:  # retried on the next pass
        log.warning("maintenance.otp_expiry_failed", error=type(exc).__name__, exc_info=True)
        expired = 0
    try:
        finished = await account.complete_pending_deletions(unit)
    except Exception as exc:  # retried on the next pass
        log.warning("maintenance.erasure_failed", error=type(exc).__name__, exc_info=True)
        finished = 0
    return SweepReport(otp_expired=expired, erasures_finished=finished)


async def run(unit: Unit, stop: asyncio.Event, every_seconds: float = SWEEP_SECONDS) -> None:
    """Sweep every `every_seconds` until `stop` is set."""
    log.info("maintenance.started")
    while not stop.is_set():
        report = await sweep_once(unit)
        if report.otp_expired or report.erasures_finished:
            log.info("maintenance.swept", otp_expired=report.otp_expired, erasures_finished=report.erasures_finished)
        try:
            await asyncio.wait_for(stop.wait(), every_seconds)
        except TimeoutError:
            pass
    log.info("maintenance.stopped")


HANDLERS: HandlerTable = {}
REACTIONS: ReactionTable = {}
