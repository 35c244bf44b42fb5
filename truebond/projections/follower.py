"""Checkpointed followers of the event store, and the projector that keeps the read models.

A follower tails the store from its own checkpoint (one document per consumer name) and hands
every event to its `process` callable at least once, like the followers with tracking of the
`eventsourcing` library.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from truebond.events.base import Recorded
from truebond.events.store import EventStore
from truebond.logging import get_logger
from truebond.projections.inline import Projections

log = get_logger(__name__)

DEFAULT_OVERLAP = timedelta(seconds=10)
DEFAULT_BATCH = 500


class Follower:
    """Tails the store from the checkpoint stored under `name` and processes every event at least once."""

    def __init__(
        self,
        name: str,
        store: EventStore,
        checkpoints: Any,
        process: Callable[[Recorded], Awaitable[None]],
        overlap: timedelta = DEFAULT_OVERLAP,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.name = name
        self.store = store
        self.checkpoints = checkpoints
        self.process = process
        self.overlap = overlap
        self.batch = batch
        self._recent: dict[str, datetime] = {}

    async def checkpoint(self) -> datetime | None:
        """The stored position: events before it minus the overlap are done."""
        doc = await self.checkpoints.find_one({"_id": self.name})
        return None if doc is None else doc["at"]

    async def run_once(self) -> int:
        """Process every event from the checkpoint (less the overlap) to now; returns how many.

        Events this follower already processed inside the overlap window are left out of the
        query, so a quiet poll reads, decodes and writes nothing.
        """
        mark = await self.checkpoint()
        since = None if mark is None else mark - self.overlap
        processed = 0
        page = await self.store.read_since(since, self.batch, exclude=self._recent)
        while page:
            for rec in page:
                await self.process(rec)
                self._recent[rec.id] = rec.at
                processed += 1
            last = page[-1]
            # A late event can sort before the checkpoint; the checkpoint never moves back.
            if mark is None or last.at > mark:
                mark = last.at
                await self.checkpoints.update_one({"_id": self.name}, {"$set": {"at": last.at, "event_id": last.id}}, upsert=True)
            floor = mark - self.overlap
            self._recent = {k: v for k, v in self._recent.items() if v >= floor}
            if len(page) < self.batch:
                break
            page = await self.store.read_after(last.at, last.id, self.batch, exclude=self._recent)
        return processed

    async def run(self, stop: asyncio.Event, poll_seconds: float = 0.5) -> None:
        """Poll until `stop` is set; errors are logged and the batch retried on the next poll."""
        # Log events are named after the consumer, so the projector's stay "projector.*".
        log.info(f"{self.name}.started")
        while not stop.is_set():
            try:
                n = await self.run_once()
                if n:
                    log.info(f"{self.name}.applied", events=n)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(f"{self.name}.failed")
            try:
                await asyncio.wait_for(stop.wait(), poll_seconds)
            except TimeoutError:
                pass
        log.info(f"{self.name}.stopped")


class Projector(Follower):
    """The follower named "projector": applies every event to the read models at least once."""

    CHECKPOINT_ID = "projector"

    def __init__(self, projections: Projections, overlap: timedelta = DEFAULT_OVERLAP, batch: int = DEFAULT_BATCH) -> None:
        super().__init__(
            self.CHECKPOINT_ID,
            projections.store,
            projections.db["projection_checkpoints"],
            self._apply,
            overlap=overlap,
            batch=batch,
        )
        self.projections = projections

    async def _apply(self, rec: Recorded) -> None:
        # Looked up per event, as before the split, so a replaced `projections.apply` is honoured.
        await self.projections.apply(rec)
