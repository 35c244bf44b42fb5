"""No ghost sockets: each web process re-checks the sessions of its own sockets.

A revocation reaches sockets through its reaction (`end_revoked_session`), which drops them here
and publishes the drop on the Redis channel for the other processes; the reactions follower
re-runs it after a crash. What neither can cover is a process whose channel subscription was
down when the drop was published (a Redis reconnect), or a session that simply ran out (the
30-day limit). `SessionWatch` covers both: every CHECK_SECONDS it asks the sessions read model,
the truth, which of its sockets' sessions are over, and drops those sockets through the same
`disconnect_session` path.
"""

from __future__ import annotations

import asyncio

from truebond.api.socket_routing import SocketCaller
from truebond.commands.bus import Bus
from truebond.lifecycle import stop_task
from truebond.logging import get_logger
from truebond.projections import sessions as sessions_view

log = get_logger(__name__)

CHECK_SECONDS = 30.0
BATCH = 500


class SessionWatch:
    """Drops this process's sockets whose session has ended, whatever became of the revocation's message."""

    def __init__(self, *, check_seconds: float = CHECK_SECONDS) -> None:
        self._check_seconds = check_seconds
        self._sessions: dict[str, str] = {}  # sid -> session id, the sockets connected here
        self._bus: Bus | None = None
        self._task: asyncio.Task[None] | None = None

    async def connected(self, caller: SocketCaller, bus: Bus) -> None:
        """Follow the new socket's session."""
        self._bus = bus
        self._sessions[caller.sid] = caller.session_id
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def disconnected(self, caller: SocketCaller, bus: Bus) -> None:
        """Stop following the socket."""
        self._sessions.pop(caller.sid, None)

    async def check(self) -> set[str]:
        """Drop the sockets of ended sessions; returns those sessions."""
        bus = self._bus
        if bus is None:
            return set()
        ids = sorted(set(self._sessions.values()))
        ended: set[str] = set()
        for start in range(0, len(ids), BATCH):
            ended |= await sessions_view.ended_among(bus.deps.db, ids[start : start + BATCH], bus.deps.clock.now())
        for session_id in sorted(ended):
            log.info("socket.ended_session_dropped")
            await bus.deps.notifier.disconnect_session(session_id)
        return ended

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._check_seconds)
            try:
                await self.check()
            except Exception as exc:  # noqa: BLE001 - the watch must outlive one failed check
                log.warning("socket.session_watch_failed", error=type(exc).__name__)

    async def close(self) -> None:
        """Stop checking."""
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task, name="socket.session_watch")
