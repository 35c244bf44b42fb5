"""The maintenance sweep: runs beside the projector (`truebond project`, and inside `truebond dev`).

Each pass issues the sweep's commands (truebond/commands/maintenance.py) through the bus:
OTP codes that ran out unused are recorded as expired, and pending account erasures finish.
"""

from __future__ import annotations

import asyncio

import attrs

from truebond.commands.bus import Bus, Context
from truebond.commands.maintenance import FinishPendingErasures, RecordExpiredOtps
from truebond.logging import get_logger

log = get_logger(__name__)

SWEEP_SECONDS = 30.0
# The actor the sweep's audit events have always carried.
SWEEP = Context(actor="system")


@attrs.frozen
class SweepReport:
    """What one pass did (a part that failed is counted as 0 and logged)."""

    otp_expired: int
    erasures_finished: int


async def sweep_once(bus: Bus) -> SweepReport:
    """One pass: each part runs even when the other fails (Redis down must not stop an erasure)."""
    try:
        expired = await bus.handle(RecordExpiredOtps(), SWEEP)
    except Exception as exc:  # retried on the next pass
        log.warning("maintenance.otp_expiry_failed", error=type(exc).__name__, exc_info=True)
        expired = 0
    try:
        finished = await bus.handle(FinishPendingErasures(), SWEEP)
    except Exception as exc:  # retried on the next pass
        log.warning("maintenance.erasure_failed", error=type(exc).__name__, exc_info=True)
        finished = 0
    return SweepReport(otp_expired=expired, erasures_finished=finished)


async def run(bus: Bus, stop: asyncio.Event, every_seconds: float = SWEEP_SECONDS) -> None:
    """Sweep every `every_seconds` until `stop` is set."""
    log.info("maintenance.started")
    while not stop.is_set():
        report = await sweep_once(bus)
        if report.otp_expired or report.erasures_finished:
            log.info("maintenance.swept", otp_expired=report.otp_expired, erasures_finished=report.erasures_finished)
        try:
            await asyncio.wait_for(stop.wait(), every_seconds)
        except TimeoutError:
            pass
    log.info("maintenance.stopped")
