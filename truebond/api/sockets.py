"""Socket.IO at /socket.io: authenticated connects, a room per user and per session.

Clients connect with `auth: {token}` (an access token of a live session of an active
account); anything else is refused. The server puts the socket in `user:<id>` and
`session:<id>`; clients have no way to join rooms. Across processes the rooms are shared
through AsyncRedisManager; the sockets of each session are also listed in Redis so revoking a
session drops them wherever they are connected.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import socketio
from aiohttp import web
from redis.exceptions import RedisError

from truebond.adapters.ratelimit import DEFAULT_IP
from truebond.api.routing import authenticate
from truebond.commands.unit import Unit
from truebond.errors import AppError
from truebond.logging import get_logger
from truebond.projections import sessions as sessions_view

log = get_logger(__name__)

PATH = "socket.io"
CHANNEL = "truebond-socketio"
PING_INTERVAL_SECONDS = 25
PING_TIMEOUT_SECONDS = 20
MAX_PAYLOAD_BYTES = 64 * 1024
SOCKETS_KEY = "tb:sock:session:"
SOCKETS_TTL_SECONDS = 24 * 3600


def user_room(user_id: str) -> str:
    """The room every socket of a user is in."""
    return f"user:{user_id}"


def session_room(session_id: str) -> str:
    """The room of the sockets opened with one session's tokens."""
    return f"session:{session_id}"


class Refused(socketio.exceptions.ConnectionRefusedError):  # type: ignore[misc]
    """A refused connect; the client sees only `{"message": "unauthorized"}` (or "unavailable")."""


class SocketServer:
    """The python-socketio server and the Notifier the commands use."""

    def __init__(self, redis: Any, *, manager_url: str | None, cors_origin: str) -> None:
        self._redis = redis
        self._manager = socketio.AsyncRedisManager(manager_url, channel=CHANNEL) if manager_url else None
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=self._manager,
            cors_allowed_origins=[cors_origin],
            transports=["websocket"],
            ping_interval=PING_INTERVAL_SECONDS,
            ping_timeout=PING_TIMEOUT_SECONDS,
            max_http_buffer_size=MAX_PAYLOAD_BYTES,
            logger=False,
            engineio_logger=False,
        )
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self._unit: Unit | None = None

    def attach(self, app: web.Application, unit: Unit) -> None:
        """Serve Socket.IO on `app` at /socket.io, authenticating against `unit`."""
        self._unit = unit
        self.sio.attach(app, socketio_path=PATH)
        app.on_shutdown.append(self._on_shutdown)

    # -- connection lifecycle --------------------------------------------------------------
    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        unit = self._unit
        if unit is None:
            raise Refused("unavailable")
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise Refused("unauthorized")
        request = environ.get("aiohttp.request")
        remote = getattr(request, "remote", None) or "unknown"
        try:
            await unit.limiter.hit(DEFAULT_IP, remote)
            caller = await authenticate(unit, token)
            await self._redis.sadd(SOCKETS_KEY + caller.session_id, sid)
            await self._redis.expire(SOCKETS_KEY + caller.session_id, SOCKETS_TTL_SECONDS)
        except AppError:
            raise Refused("unauthorized") from None
        except (RedisError, OSError):
            # Without the Redis entry a revocation could not find this socket: fail closed.
            raise Refused("unavailable") from None
        # A revocation between the check and the registration above would have missed us.
        doc = await sessions_view.get(unit.db, caller.session_id)
        if doc is None or doc.get("revoked_at") is not None:
            await self._forget(caller.session_id, sid)
            raise Refused("unauthorized")
        await self.sio.save_session(sid, {"user_id": caller.user_id, "session_id": caller.session_id})
        await self.sio.enter_room(sid, user_room(caller.user_id))
        await self.sio.enter_room(sid, session_room(caller.session_id))
        log.info("socket.connected", user_id=caller.user_id)

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        with contextlib.suppress(KeyError):
            session = await self.sio.get_session(sid)
            await self._forget(str(session.get("session_id", "")), sid)

    async def _forget(self, session_id: str, sid: str) -> None:
        if not session_id:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._redis.srem(SOCKETS_KEY + session_id, sid)

    async def _on_shutdown(self, app: web.Application) -> None:
        for sid, _ in list(self.sio.manager.get_participants("/", None)):
            with contextlib.suppress(Exception):
                await self.sio.disconnect(sid, ignore_queue=True)

    # -- Notifier --------------------------------------------------------------------------
    async def emit_to_user(self, user_id: str, event: str, data: Any) -> None:
        """Send `event` to every socket of a user, on any server."""
        await self.sio.emit(event, data, room=user_room(user_id))

    async def emit_to_session(self, session_id: str, event: str, data: Any) -> None:
        """Send `event` to the sockets of one session, on any server."""
        await self.sio.emit(event, data, room=session_room(session_id))

    async def disconnect_session(self, session_id: str) -> None:
        """Drop the sockets of a (revoked) session, here and on other servers."""
        sids = {sid for sid, _ in self.sio.manager.get_participants("/", session_room(session_id))}
        try:
            sids |= {str(s) for s in await self._redis.smembers(SOCKETS_KEY + session_id)}
            await self._redis.delete(SOCKETS_KEY + session_id)
        except (RedisError, OSError):
            log.warning("socket.revoke_lookup_failed")
        for sid in sids:
            # Local sockets go at once; others are asked to go through the Redis channel.
            await self.sio.disconnect(sid)

    async def close(self) -> None:
        """Stop the Redis listener task and close its connection."""
        await self.sio.shutdown()
        manager = self._manager
        if manager is None:
            return
        task = getattr(manager, "thread", None)
        if isinstance(task, asyncio.Task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for name in ("pubsub", "redis"):
            connection = getattr(manager, name, None)
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.aclose()
