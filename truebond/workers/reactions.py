"""The reactions follower: re-runs, from the event store, the reactions whose loss matters.

A command's reactions run right after its events are appended, in the same process. If that
process dies in between (or a reaction fails), nothing is lost: this follower, beside the
projector in `truebond project`, tails the store from its own checkpoint and runs every
`redrive` reaction (revocations reaching sockets, erasure steps, referral credit) at least once.
They are idempotent, so running one again after it already ran changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

from truebond.commands.bus import Bus, Context
from truebond.events.base import Recorded
from truebond.projections.follower import Follower

CONSUMER = "reactions"


def reactions_follower(bus: Bus, overlap: timedelta = timedelta(seconds=10), batch: int = 500) -> Follower:
    """A follower named `reactions` that runs each event's redrive reactions."""

    async def process(rec: Recorded) -> None:
        await bus.react(rec, Context.system(CONSUMER, causation_id=rec.id), redrive_only=True)

    unit = bus.deps
    return Follower(CONSUMER, unit.store, unit.db["projection_checkpoints"], process, overlap=overlap, batch=batch)
