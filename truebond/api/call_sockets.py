"""The socket lifecycle follower of calls: a participant's last socket going starts the grace.

Each user's sockets are listed in Redis (any web process adds and removes its own), so the
last one closing is seen wherever the others were. Then a connected call of that user gets
`ParticipantLeft` (30 s of grace); a socket of theirs connecting again within the grace gets
`ParticipantRejoined` and the same call goes on.

A web process killed outright leaves its sockets listed: their users' graces then start only
when the other side hangs up or the billing runs out (the presence leases could tell instead).
"""

from __future__ import annotations

from typing import Any

from truebond.api.socket_routing import SocketCaller
from truebond.commands.bus import Bus, Context
from truebond.commands.calls import ParticipantLeft, ParticipantRejoined
from truebond.logging import get_logger
from truebond.projections import calls as calls_view

log = get_logger(__name__)

PREFIX = "tb:call:socks:"
TTL_SECONDS = 24 * 3600


class CallSockets:
    """Follows a user's sockets for the grace of their live call."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def connected(self, caller: SocketCaller, bus: Bus) -> None:
        """List the socket; a participant who was away comes back into their call."""
        key = PREFIX + caller.user_id
        await self._redis.sadd(key, caller.sid)
        await self._redis.expire(key, TTL_SECONDS)
        doc = await calls_view.live_call_of(bus.deps.db, caller.user_id)
        if doc is not None and caller.user_id in (doc.get("away") or {}):
            await bus.handle(ParticipantRejoined(caller.user_id, str(doc["_id"])), _ctx(caller))

    async def disconnected(self, caller: SocketCaller, bus: Bus) -> None:
        """Unlist the socket; the user's last one going starts the grace of their connected call."""
        key = PREFIX + caller.user_id
        await self._redis.srem(key, caller.sid)
        if int(await self._redis.scard(key)) > 0:
            return
        doc = await calls_view.live_call_of(bus.deps.db, caller.user_id)
        if doc is not None and doc.get("state") == "connected":
            await bus.handle(ParticipantLeft(caller.user_id, str(doc["_id"])), _ctx(caller))

    async def close(self) -> None:
        """Nothing runs in the background."""


def _ctx(caller: SocketCaller) -> Context:
    return Context(actor=f"user:{caller.user_id}")
