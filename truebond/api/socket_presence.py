"""Presence follows sockets: a lease per connection, renewed while the socket lives.

`PresenceFollower` is a SocketLifecycle follower of the web process. A connect takes a lease; a
disconnect (closed, dropped, revoked or timed out) ends it. Every RENEW_SECONDS the process
renews the leases of its sockets that are still connected, which are those still answering
Engine.IO's pings (Engine.IO drops a socket that misses them within ping interval + timeout, and
the drop is a disconnect here); python-socketio offers no hook on the pong itself. Every
SWEEP_SECONDS it also removes expired leases, those of a process that died without a word.

When a user comes online or goes offline, `user:online` / `user:offline` {user_id} go to the users
who share a conversation with them (the injected `partners(db, user_id)`), except those blocked
either way, and never for a user whose `privacy.show_online` is off or who is shadow-banned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from truebond.adapters.presence import Presence
from truebond.api.socket_routing import SocketCaller
from truebond.commands.bus import Bus
from truebond.lifecycle import stop_task
from truebond.logging import get_logger
from truebond.projections import blocks
from truebond.projections import users as users_view
from truebond.projections.presence import shows_online

log = get_logger(__name__)

ONLINE_EVENT = "user:online"
OFFLINE_EVENT = "user:offline"
RENEW_SECONDS = 20.0
SWEEP_SECONDS = 5.0

Partners = Callable[[Any, str], Awaitable[list[str]]]


async def no_partners(db: Any, user_id: str) -> list[str]:
    """The placeholder partner lookup: nobody shares a conversation (until chat's read model is wired)."""
    return []


class PresenceFollower:
    """Takes, renews and ends the presence leases of this process's sockets, and announces changes."""

    def __init__(
        self,
        presence: Presence,
        partners: Partners = no_partners,
        *,
        renew_seconds: float = RENEW_SECONDS,
        sweep_seconds: float = SWEEP_SECONDS,
    ) -> None:
        self.presence = presence
        self._partners = partners
        self._renew_seconds = renew_seconds
        self._sweep_seconds = sweep_seconds
        self._live: dict[str, str] = {}  # sid -> user id: the sockets connected to this process
        self._bus: Bus | None = None
        self._task: asyncio.Task[None] | None = None

    async def connected(self, caller: SocketCaller, bus: Bus) -> None:
        """A socket joined: take its lease; announce the user when this made them online."""
        self._bus = bus
        self._live[caller.sid] = caller.user_id
        self._start()
        if await self.presence.open(caller.user_id, caller.sid):
            await self.announce(bus, caller.user_id, online=True)

    async def disconnected(self, caller: SocketCaller, bus: Bus) -> None:
        """A socket is gone: end its lease; announce the user when it was their last one."""
        self._live.pop(caller.sid, None)
        if await self.presence.close(caller.user_id, caller.sid):
            await self.announce(bus, caller.user_id, online=False)

    async def renew(self) -> None:
        """Renew the leases of this process's live sockets (one Redis call)."""
        bus = self._bus
        snapshot = list(self._live.items())
        came = await self.presence.renew((uid, sid) for sid, uid in snapshot)
        # A socket that left while the renewal was on its way must not keep a lease.
        for sid, uid in snapshot:
            if sid not in self._live:
                await self.presence.close(uid, sid)
        live_users = set(self._live.values())
        if bus is not None:
            for uid in came:
                if uid in live_users:
                    await self.announce(bus, uid, online=True)

    async def sweep(self) -> list[str]:
        """Remove expired leases (any process's); announce and return the users they left offline."""
        gone = await self.presence.expire()
        bus = self._bus
        if bus is not None:
            for uid in gone:
                await self.announce(bus, uid, online=False)
        return gone

    async def announce(self, bus: Bus, user_id: str, *, online: bool) -> None:
        """Tell the users who share a conversation with `user_id` that they came or went."""
        db = bus.deps.db
        user = await users_view.by_id(db, user_id)
        if user is None or user.get("status") != "active" or not shows_online(user):
            return
        if await blocks.shadow_banned(db, user_id):
            return
        event = ONLINE_EVENT if online else OFFLINE_EVENT
        for partner in dict.fromkeys(await self._partners(db, user_id)):
            if partner == user_id or await blocks.blocked_either_way(db, user_id, partner):
                continue
            await bus.deps.notifier.emit_to_user(partner, event, {"user_id": user_id})

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        step = min(self._renew_seconds, self._sweep_seconds)
        since_renew = 0.0
        while True:
            await asyncio.sleep(step)
            since_renew += step
            try:
                if since_renew >= self._renew_seconds:
                    since_renew = 0.0
                    await self.renew()
                await self.sweep()
            except (RedisError, OSError) as exc:
                log.warning("presence.tick_failed", error=type(exc).__name__)
            except Exception as exc:
                log.warning("presence.tick_failed", error=type(exc).__name__, exc_info=True)

    async def close(self) -> None:
        """Stop renewing; this process's leases are ended by its sockets' disconnects."""
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task, name="presence.loop")
