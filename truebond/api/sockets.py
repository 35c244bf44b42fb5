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
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import socketio
from aiohttp import web
from redis.exceptions import RedisError

from truebond.adapters.ratelimit import DEFAULT_IP
from truebond.adapters.socket_emitter import CHANNEL, SOCKETS_KEY, SOCKETS_TTL_SECONDS, session_room, user_room
from truebond.api.routing import authenticate, ip_key, mask_ip, summarise_user_agent
from truebond.api.socket_routing import MAX_PAYLOAD_BYTES, SocketCaller, SocketRoute, SocketRouter
from truebond.commands.bus import Bus, Context
from truebond.commands.unit import Unit
from truebond.errors import TrueBondError
from truebond.lifecycle import bounded, stop_task
from truebond.logging import get_logger
from truebond.projections import sessions as sessions_view

log = get_logger(__name__)

PATH = "socket.io"
PING_INTERVAL_SECONDS = 25
PING_TIMEOUT_SECONDS = 20
# An Engine.IO connection must have an authenticated Socket.IO connection within this time.
CONNECT_TIMEOUT_SECONDS = 10.0
DROP_TIMEOUT_SECONDS = 5.0
# Socket.IO packet types (the first character of a packet).
CONNECT, DISCONNECT, BINARY_EVENT, BINARY_ACK = "0", "1", "5", "6"


def _remote_key(environ: dict[str, Any]) -> str:
    """`ip_key` of the peer of the aiohttp request behind an Engine.IO environ."""
    return ip_key(getattr(environ.get("aiohttp.request"), "remote", None))


class Refused(socketio.exceptions.ConnectionRefusedError):  # type: ignore[misc]
    """A refused connect; the client sees only `{"message": "unauthorized"}` (or "unavailable")."""


class _Throttle(logging.Filter):
    """Let through at most `burst` records of one message template per `window` seconds.

    Engine.IO logs a traceback for every malformed packet it reads (before Socket.IO, and so
    before any token is checked): without a cap, a websocket could write the log at line rate.
    """

    def __init__(self, burst: int = 5, window: float = 60.0) -> None:
        super().__init__()
        self._burst = burst
        self._window = window
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:200])
        now = time.monotonic()
        started, count = self._seen.get(key, (now, 0))
        if now - started >= self._window:
            started, count = now, 0
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[key] = (started, count + 1)
        return count < self._burst


def _library_logger(name: str) -> logging.Logger:
    """The logger handed to python-socketio or python-engineio.

    Given `False`, both libraries log through their own module loggers with a plain
    StreamHandler of their own: lines that bypass the masking processor. A logger of ours
    propagates to the masked root handler instead; below WARNING they would log packet payloads
    (a CONNECT packet carries the access token), and their errors are throttled.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _Throttle) for f in logger.filters):
        logger.addFilter(_Throttle())
    return logger


class _GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server with the guards an Internet-facing endpoint needs and it lacks.

    - An Engine.IO handshake counts against the per-IP limit (`admit`) before any token is seen.
    - Engine.IO accepts a websocket before the Socket.IO CONNECT that carries the token: a
      connection without an authenticated Socket.IO connection CONNECT_TIMEOUT_SECONDS after its
      handshake, or after a refused or ended CONNECT, or after the server disconnected it (a
      revoked session), is closed. python-socketio only asks the client to go, and anyone could
      otherwise hold websockets open without a token for as long as they answer pings.
    - Packets are JSON only: no event of the API carries binary data, and for a binary packet the
      server buffers as many attachments as the packet announces (up to ten billion, each frame up
      to 64 KiB) until the last one arrives: memory without bound.
    - A malformed packet closes the connection (python-socketio would log a traceback for every
      one and carry on: a log flood for the price of a websocket).
    """

    def __init__(self, *args: Any, admit: Callable[[dict[str, Any]], Awaitable[bool]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admit = admit
        self._deadlines: dict[str, asyncio.Task[None]] = {}

    def _connected(self, eio_sid: str) -> bool:
        sid = self.manager.sid_from_eio_sid(eio_sid, "/")
        return sid is not None and bool(self.manager.is_connected(sid, "/"))

    async def _drop(self, eio_sid: str) -> None:
        """Close the Engine.IO connection and its websocket now, whatever the client does."""
        socket = self.eio.sockets.get(eio_sid)
        await bounded(self.eio.disconnect(eio_sid), name="engineio.disconnect", seconds=DROP_TIMEOUT_SECONDS)
        if socket is not None:
            # Engine.IO's writer would hold the websocket until its next poll timed out (45 s);
            # an empty poll makes it close the websocket at once.
            socket.queue.put_nowait(None)

    async def _connect_deadline(self, eio_sid: str) -> None:
        await asyncio.sleep(CONNECT_TIMEOUT_SECONDS)
        self._deadlines.pop(eio_sid, None)
        if not self._connected(eio_sid):
            await self._drop(eio_sid)

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> bool | None:
        if not await self._admit(environ):
            return False  # Engine.IO answers 401 and opens nothing
        await super()._handle_eio_connect(eio_sid, environ)
        self._deadlines[eio_sid] = asyncio.create_task(self._connect_deadline(eio_sid))
        return None

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if not isinstance(data, str) or data[:1] in (BINARY_EVENT, BINARY_ACK):
            await self._drop(eio_sid)
            return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError):
            await self._drop(eio_sid)
            return
        if data[:1] in (CONNECT, DISCONNECT) and not self._connected(eio_sid):
            await self._drop(eio_sid)

    async def disconnect(self, sid: str, namespace: str | None = None, ignore_queue: bool = False) -> None:
        """Disconnect a Socket.IO client and, on the server that holds it, its connection too."""
        eio_sid = self.manager.eio_sid_from_sid(sid, namespace or "/")
        await super().disconnect(sid, namespace=namespace, ignore_queue=ignore_queue)
        if eio_sid is not None and not self._connected(eio_sid):
            await self._drop(eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        deadline = self._deadlines.pop(eio_sid, None)
        if deadline is not None:
            deadline.cancel()
        await super()._handle_eio_disconnect(eio_sid, reason)

    def cancel_deadlines(self) -> None:
        """Stop the pending connect deadlines (the server is shutting down)."""
        for deadline in self._deadlines.values():
            deadline.cancel()
        self._deadlines.clear()


class SocketServer:
    """The python-socketio server and the Notifier the commands use."""

    def __init__(self, redis: Any, *, manager_url: str | None, cors_origin: str, routes: Iterable[SocketRoute] = ()) -> None:
        self._redis = redis
        self._router = SocketRouter(routes)
        self._manager = socketio.AsyncRedisManager(manager_url, channel=CHANNEL) if manager_url else None
        self.sio = _GuardedServer(
            admit=self._admit,
            async_mode="aiohttp",
            client_manager=self._manager,
            cors_allowed_origins=[cors_origin],
            transports=["websocket"],
            ping_interval=PING_INTERVAL_SECONDS,
            ping_timeout=PING_TIMEOUT_SECONDS,
            max_http_buffer_size=MAX_PAYLOAD_BYTES,
            logger=_library_logger("truebond.socketio"),
            engineio_logger=_library_logger("truebond.engineio"),
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
        app.on_shutdown.append(self._on_shutdown)

    # -- connection lifecycle --------------------------------------------------------------
    async def _admit(self, environ: dict[str, Any]) -> bool:
        """Count an Engine.IO handshake against the per-IP limit; False refuses it."""
        unit = self._unit
        if unit is None:
            return False
        try:
            await unit.limiter.hit(DEFAULT_IP, _remote_key(environ))
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
            await unit.limiter.hit(DEFAULT_IP, _remote_key(environ))
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
                "remote": _remote_key(environ),
            },
        )
        await self.sio.enter_room(sid, user_room(caller.user_id))
        await self.sio.enter_room(sid, session_room(caller.session_id))
        log.info("socket.connected", user_id=caller.user_id)

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
        )
        # Several arguments arrive as a list, which no route's schema takes.
        data: Any = args[0] if len(args) == 1 else (list(args) or None)
        return await self._router.dispatch(event, caller, data, bus=bus, ctx=ctx)

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
            await bounded(self.sio.disconnect(sid, ignore_queue=True), name="socket.disconnect")

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
        """Stop Engine.IO's client monitor and the Redis listener, and close its connections.

        Every step is bounded (`truebond.lifecycle`): the listener's cancellation can be lost
        inside redis-py on Python 3.11, after which it would wait for a pubsub message for ever.
        """
        self.sio.cancel_deadlines()
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
