"""Pushing to Socket.IO clients from a process that serves none (the projector, the billing worker).

A write-only python-socketio Redis manager publishes on the channel every web process listens
to, so an emit or a disconnect here reaches the sockets wherever they are connected. The names
of the rooms and of the per-session socket registry live here, shared with the web server.
"""

from __future__ import annotations

from typing import Any

import socketio
from redis.exceptions import RedisError

from truebond.lifecycle import bounded
from truebond.logging import get_logger

log = get_logger(__name__)

CHANNEL = "truebond-socketio"
SOCKETS_KEY = "tb:sock:session:"
SOCKETS_TTL_SECONDS = 24 * 3600


def user_room(user_id: str) -> str:
    """The room every socket of a user is in."""
    return f"user:{user_id}"


def session_room(session_id: str) -> str:
    """The room of the sockets opened with one session's tokens."""
    return f"session:{session_id}"


class _WriteOnlyRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """A manager with no server behind it: nothing is connected here, so nothing is handled locally."""

    async def _handle_disconnect(self, message: Any) -> None:
        return None


class SocketEmitter:
    """The Notifier of a process without sockets: every push goes through the Redis channel."""

    def __init__(self, redis: Any, url: str) -> None:
        self._redis = redis
        self._manager = _WriteOnlyRedisManager(url, channel=CHANNEL, write_only=True)

    async def emit_to_user(self, user_id: str, event: str, data: Any, skip_sid: str | None = None) -> None:
        """Send `event` to every socket of a user (but `skip_sid`), on any web process."""
        await self._manager.emit(event, data, room=user_room(user_id), skip_sid=skip_sid)

    async def emit_to_session(self, session_id: str, event: str, data: Any) -> None:
        """Send `event` to the sockets of one session, on any web process."""
        await self._manager.emit(event, data, room=session_room(session_id))

    async def disconnect_session(self, session_id: str) -> None:
        """Ask the web process holding each socket of a (revoked) session to drop it."""
        try:
            sids = {str(s) for s in await self._redis.smembers(SOCKETS_KEY + session_id)}
            await self._redis.delete(SOCKETS_KEY + session_id)
        except (RedisError, OSError):
            log.warning("socket.revoke_lookup_failed")
            raise
        for sid in sids:
            await self._manager.disconnect(sid, namespace="/")

    async def close(self) -> None:
        """Close the manager's Redis connection."""
        connection = getattr(self._manager, "redis", None)
        if connection is not None:
            await bounded(connection.aclose(), name="socket_emitter.redis")
