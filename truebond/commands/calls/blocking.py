"""A block ends the pair's live call at once (ringing or connected), not at the next minute's charge.

The reaction to `UserBlocked` finds the blocker's live call; when the other side is the user just
blocked, `EndBlockedCall` ends it as `blocked` (nothing more is charged). Re-driven: ending a call
that is already over changes nothing.
"""

from __future__ import annotations

import attrs

from truebond.commands.bus import Bus, Command, Context, Reaction, ReactionTable
from truebond.commands.calls.state import end_live, now_of
from truebond.commands.unit import Unit
from truebond.events.base import Recorded
from truebond.events.safety import UserBlocked
from truebond.projections import calls as calls_view


@attrs.frozen
class EndBlockedCall(Command[None]):
    """End a live call because one participant blocked the other."""

    call_id: str


async def end_blocked_call(cmd: EndBlockedCall, ctx: Context, deps: Unit) -> None:
    """End the call now with the reason `blocked`, if it is still live."""
    await end_live(deps, ctx, cmd.call_id, reason="blocked", by="system", at=lambda _: now_of(deps))


async def stop_call_of_blocked_pair(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """The blocker's live call with the user they blocked ends."""
    e = rec.event
    assert isinstance(e, UserBlocked)
    live = await calls_view.live_call_of(bus.deps.db, e.blocker_id)
    if live is not None and e.blocked_id in live.get("participants", []):
        await bus.handle(EndBlockedCall(str(live["_id"])), ctx)


REACTIONS: ReactionTable = {UserBlocked: [Reaction(stop_call_of_blocked_pair, redrive=True)]}
