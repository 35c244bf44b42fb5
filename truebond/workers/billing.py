"""The call-billing worker (`truebond bill`; `truebond dev` runs it in-process).

Each pass claims the calls that are due from the Redis schedule (atomically, with a lease) and
issues through the bus whatever each needs now: the next minute's charge before it starts, the
end of an unanswered ring (25 s) or of a grace (30 s). All of it follows the service clock, so
tests move time instead of sleeping. The schedule is re-derived from the `calls` read model at
start and every `REBUILD_SECONDS`, and every charge is idempotent by its event id: a worker
killed mid-call and restarted, or two workers racing, neither skip nor repeat a minute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from truebond.adapters.billing_schedule import LEASE_SECONDS, BillingSchedule, Claim
from truebond.clock import to_ms
from truebond.commands.bus import Bus, Command, Context
from truebond.commands.calls import due_command
from truebond.logging import get_logger
from truebond.projections import calls as calls_view

log = get_logger(__name__)

POLL_SECONDS = 0.25
REBUILD_SECONDS = 60.0
# A call that fell far behind (the worker was down) catches up at most this many steps per claim.
MAX_STEPS = 50


class BillingWorker:
    """Claims due calls and issues their commands; `run_once` is one pass (tests drive it)."""

    def __init__(
        self,
        bus: Bus,
        *,
        batch: int = 500,
        concurrency: int = 32,
        lease: float = LEASE_SECONDS,
        on_claim: Callable[[float], None] | None = None,
    ) -> None:
        self.bus = bus
        self.schedule = BillingSchedule(bus.deps.redis)
        self.batch = batch
        self.lease = lease
        self._slots = asyncio.Semaphore(concurrency)
        self._on_claim = on_claim
        self.ctx = Context.system("billing")

    async def rebuild(self) -> int:
        """Put every live call of the read model in the schedule (never later than it already is)."""
        count = 0
        for doc in await calls_view.live_calls(self.bus.deps.db):
            when = calls_view.next_action_at(doc)
            if when is not None:
                await self.schedule.schedule_no_later(str(doc["_id"]), when.timestamp())
                count += 1
        return count

    async def run_once(self) -> int:
        """Claim what is due now and handle it; returns how many calls were claimed."""
        now = self.bus.deps.clock.time()
        claims = await self.schedule.claim(now, limit=self.batch, lease=self.lease)
        if self._on_claim is not None:
            for claim in claims:
                self._on_claim(now - claim.due)
        await asyncio.gather(*(self._guarded(claim) for claim in claims))
        return len(claims)

    async def _guarded(self, claim: Claim) -> None:
        async with self._slots:
            try:
                await self.handle(claim)
            except Exception as exc:  # the lease runs out and the call is claimed again
                log.warning("billing.claim_failed", error=type(exc).__name__, exc_info=True)

    async def handle(self, claim: Claim) -> None:
        """Do everything due for one claimed call, then release the claim with its next time."""
        unit = self.bus.deps
        doc = await calls_view.by_id(unit.db, claim.call_id)
        for _ in range(MAX_STEPS):
            if doc is None:
                break
            cmd: Command[Any] | None = due_command(doc, to_ms(unit.clock.now()))
            if cmd is None:
                break
            await self.bus.handle(cmd, self.ctx)
            doc = await calls_view.by_id(unit.db, claim.call_id)
        when = None if doc is None else calls_view.next_action_at(doc)
        await self.schedule.finish(claim, None if when is None else when.timestamp())

    async def run(self, stop: asyncio.Event, *, poll: float = POLL_SECONDS, rebuild_every: float = REBUILD_SECONDS) -> None:
        """Pass after pass until `stop` is set; the schedule is rebuilt at start and periodically."""
        log.info("billing.started")
        loop = asyncio.get_running_loop()
        next_rebuild = 0.0
        while not stop.is_set():
            try:
                if loop.time() >= next_rebuild:
                    await self.rebuild()
                    next_rebuild = loop.time() + rebuild_every
                claimed = await self.run_once()
            except Exception as exc:  # Redis or MongoDB away: try again on the next pass
                log.warning("billing.pass_failed", error=type(exc).__name__, exc_info=True)
                claimed = 0
            if claimed >= self.batch:
                continue
            try:
                await asyncio.wait_for(stop.wait(), poll)
            except TimeoutError:
                pass
        log.info("billing.stopped")
