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
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

import socketio
from aiohttp import web
from redis.exceptions import RedisError

from truebond.adapters.ratelimit import DEFAULT_IP
from truebond.adapters.socket_emitter import CHANNEL, SOCKETS_KEY, SOCKETS_TTL_SECONDS, session_room, user_room
from truebond.api.routing import authenticate, mask_ip, summarise_user_agent
from truebond.api.socket_guards import PING_INTERVAL_SECONDS, PING_TIMEOUT_SECONDS, GuardedServer, Refused, library_logger, remote_key_of
from truebond.api.socket_routing import MAX_PAYLOAD_BYTES, SocketCaller, SocketRoute, SocketRouter
from truebond.commands.bus import Bus, Context
from truebond.commands.unit import Unit
from truebond.errors import TrueBondError
from truebond.lifecycle import bounded, stop_task
from truebond.logging import get_logger
from truebond.projections import sessions as sessions_view

log = get_logger(__name__)

PATH = "socket.io"


class SocketLifecycle(Protocol):
    """Something that follows sockets coming and going (presence leases, call grace periods)."""

    async def connected(self, caller: SocketCaller, bus: Bus) -> None:
        """An authenticated socket joined its rooms."""
        ...

    async def disconnected(self, caller: SocketCaller, bus: Bus) -> None:
        """An authenticated socket is gone (closed, dropped, revoked or timed out)."""
        ...

    async def close(self) -> None:
        """The server is shutting down: stop background work."""
        ...


class SocketServer:
    """The python-socketio server and the Notifier the commands use."""

    def __init__(
        self,
        redis: Any,
        *,
        manager_url: str | None,
        cors_origin: str,
        routes: Iterable[SocketRoute] = (),
        lifecycle: Iterable[SocketLifecycle] = (),
    ) -> None:
        self._redis = redis
        self._lifecycle = list(lifecycle)
        self._router = SocketRouter(routes)
        self._manager = socketio.AsyncRedisManager(manager_url, channel=CHANNEL) if manager_url else None
        self.sio = GuardedServer(
            admit=self._admit,
            async_mode="aiohttp",
            client_manager=self._manager,
            cors_allowed_origins=[cors_origin],
            transports=["websocket"],
            ping_interval=PING_INTERVAL_SECONDS,
            ping_timeout=PING_TIMEOUT_SECONDS,
            max_http_buffer_size=MAX_PAYLOAD_BYTES,
            logger=library_logger("truebond.socketio"),
            engineio_logger=library_logger("truebond.engineio"),
        )
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("*", self._event)
        self._unit: Unit | None = None
        self._bus: Bus | None = None

    def attach(self, app: web.Application, unit: Unit, bus: Bus) -> None:
        """Serve Socket.IO on `app` at /socket.io, authenticating against `unit`, commands through `bus`."""
        self._unit = unit
        self._bus = bus
        self.sio.attach(app, socketio_path=PATH)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)

    @property
    def lifecycle(self) -> tuple[SocketLifecycle, ...]:
        """The followers of sockets coming and going (presence, session watch, call grace)."""
        return tuple(self._lifecycle)

    # -- connection lifecycle --------------------------------------------------------------
    async def _admit(self, environ: dict[str, Any]) -> bool:
        """Count an Engine.IO handshake against the per-IP limit; False refuses it."""
        unit = self._unit
        if unit is None:
            return False
        try:
            await unit.limiter.hit(DEFAULT_IP, remote_key_of(environ))
        except TrueBondError:
            return False
        return True

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        unit = self._unit
        if unit is None:
            raise Refused("unavailable")
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise Refused("unauthorized")
        try:
            await unit.limiter.hit(DEFAULT_IP, remote_key_of(environ))
            caller = await authenticate(unit, token)
            await self._redis.sadd(SOCKETS_KEY + caller.session_id, sid)
            await self._redis.expire(SOCKETS_KEY + caller.session_id, SOCKETS_TTL_SECONDS)
        except TrueBondError:
            raise Refused("unauthorized") from None
        except (RedisError, OSError):
            # Without the Redis entry a revocation could not find this socket: fail closed.
            raise Refused("unavailable") from None
        # A revocation between the check and the registration above would have missed us.
        doc = await sessions_view.get(unit.db, caller.session_id)
        if doc is None or doc.get("revoked_at") is not None:
            await self._forget(caller.session_id, sid)
            raise Refused("unauthorized")
        request = environ.get("aiohttp.request")
        await self.sio.save_session(
            sid,
            {
                "user_id": caller.user_id,
                "session_id": caller.session_id,
                "ip": mask_ip(getattr(request, "remote", None)),
                "device": summarise_user_agent(request.headers.get("User-Agent") if request is not None else None),
                "remote": remote_key_of(environ),
            },
        )
        await self.sio.enter_room(sid, user_room(caller.user_id))
        await self.sio.enter_room(sid, session_room(caller.session_id))
        log.info("socket.connected", user_id=caller.user_id)
        await self._tell("connected", SocketCaller(sid=sid, user_id=caller.user_id, session_id=caller.session_id))

    async def _tell(self, what: str, caller: SocketCaller) -> None:
        """Let each lifecycle follower know; one that fails is logged and does not stop the rest."""
        bus = self._bus
        if bus is None:
            return
        for follower in self._lifecycle:
            try:
                await getattr(follower, what)(caller, bus)
            except Exception as exc:  # noqa: BLE001 - a follower's failure must not break the connection handling
                log.warning("socket.lifecycle_failed", step=what, follower=type(follower).__name__, error=type(exc).__name__)

    async def _event(self, event: str, sid: str, *args: Any) -> dict[str, Any] | None:
        """Every client event: through the socket route table; the return value is the ack."""
        bus = self._bus
        try:
            session = await self.sio.get_session(sid)
        except KeyError:
            return None
        if bus is None or "user_id" not in session:
            return None
        caller = SocketCaller(sid=sid, user_id=str(session["user_id"]), session_id=str(session["session_id"]))
        ctx = Context(
            actor=f"user:{caller.user_id}",
            request_id=uuid.uuid4().hex,
            ip=str(session.get("ip", "unknown")),
            device=str(session.get("device", "unknown")),
            remote=str(session.get("remote", "")),
            socket_id=sid,
        )
        # Several arguments arrive as a list, which no route's schema takes.
        data: Any = args[0] if len(args) == 1 else (list(args) or None)
        return await self._router.dispatch(event, caller, data, bus=bus, ctx=ctx)

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        try:
            session = await self.sio.get_session(sid)
        except KeyError:
            return
        await self._forget(str(session.get("session_id", "")), sid)
        if "user_id" in session:
            await self._tell("disconnected", SocketCaller(sid=sid, user_id=str(session["user_id"]), session_id=str(session["session_id"])))

    async def _forget(self, session_id: str, sid: str) -> None:
        if not session_id:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._redis.srem(SOCKETS_KEY + session_id, sid)

    async def _on_startup(self, app: web.Application) -> None:
        """Listen on the Redis channel from the start, not from the first connection.

        python-socketio subscribes when its first client connects, in the background: until
        then, a revocation or an emit published by another process would not reach that client.
        """
        if not self.sio.manager_initialized:
            self.sio.manager_initialized = True
            self.sio.manager.initialize()

    async def _on_shutdown(self, app: web.Application) -> None:
        for sid, _ in list(self.sio.manager.get_participants("/", None)):
            await bounded(self.sio.disconnect(sid, ignore_queue=True), name="socket.disconnect")

    # -- Notifier --------------------------------------------------------------------------
    async def emit_to_user(self, user_id: str, event: str, data: Any, skip_sid: str | None = None) -> None:
        """Send `event` to every socket of a user (but `skip_sid`), on any server."""
        await self.sio.emit(event, data, room=user_room(user_id), skip_sid=skip_sid)

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
        """Stop Engine.IO's client monitor and the Redis listener, and close its connections.

        Every step is bounded (`truebond.lifecycle`): the listener's cancellation can be lost
        inside redis-py on Python 3.11, after which it would wait for a pubsub message for ever.
        """
        self.sio.cancel_deadlines()
        for follower in self._lifecycle:
            await bounded(follower.close(), name=f"socket.{type(follower).__name__}.close")
        await bounded(self.sio.shutdown(), name="engineio.shutdown")
        # Engine.IO creates the monitor's stop event inside the monitor task itself: a shutdown
        # that comes before the task's first step finds no event to set and leaves it running.
        monitor = getattr(self.sio.eio, "service_task_handle", None)
        if isinstance(monitor, asyncio.Future):
            await stop_task(monitor, name="engineio.monitor")
        manager = self._manager
        if manager is None:
            return
        task = getattr(manager, "thread", None)
        if isinstance(task, asyncio.Future):
            await stop_task(task, name="socketio.redis_listener")
        for name in ("pubsub", "redis"):
            connection = getattr(manager, name, None)
            if connection is not None:
                await bounded(connection.aclose(), name=f"socketio.redis_{name}")
