"""The cached standing (status and role) of a user follows the events that change it.

The auth path reads a user's status and role from Redis (`adapters/auth_gate.py`), not from the
users read model. Each event below changes one of them; its reaction drops the cached copy, so
the next request on any process reads the read model again. The reactions run before the
command's caller gets its answer, and are re-driven by the reactions follower.
"""

from __future__ import annotations

from truebond.commands.bus import Bus, Context, HandlerTable, Reaction, ReactionTable
from truebond.events.account import AccountDeleted, AccountErased
from truebond.events.admin import UserBanned, UserReactivated, UserSuspended
from truebond.events.base import Recorded
from truebond.events.identity import RoleGranted

__all__ = ["HANDLERS", "REACTIONS"]


async def drop_standing(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Forget the cached standing of the account whose `user-<id>` stream took the event."""
    await bus.deps.gate.drop_standing(rec.stream.removeprefix("user-"))


HANDLERS: HandlerTable = {}

_DROP = [Reaction(drop_standing, redrive=True)]
REACTIONS: ReactionTable = {
    event: _DROP for event in (RoleGranted, UserSuspended, UserReactivated, UserBanned, AccountDeleted, AccountErased)
}
