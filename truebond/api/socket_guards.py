"""python-socketio's server with the guards an Internet-facing endpoint needs and it lacks.

Connect deadlines for sockets that never authenticate, JSON-only packets, a malformed packet
closes the connection, the per-IP handshake limit, and library loggers that go through the
masked root handler with their errors throttled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from truebond.api.routing import ip_key
from truebond.lifecycle import bounded

PING_INTERVAL_SECONDS = 25
PING_TIMEOUT_SECONDS = 20
# An Engine.IO connection must have an authenticated Socket.IO connection within this time.
CONNECT_TIMEOUT_SECONDS = 10.0
DROP_TIMEOUT_SECONDS = 5.0
# Socket.IO packet types (the first character of a packet).
CONNECT, DISCONNECT, BINARY_EVENT, BINARY_ACK = "0", "1", "5", "6"


def remote_key_of(environ: dict[str, Any]) -> str:
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


def library_logger(name: str) -> logging.Logger:
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


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
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
        """Close the Engine.IO connection and its websocket now, whatever the client does.

        Engine.IO's own `disconnect` waits for the socket's send queue to drain, which never
        happens when the client closed the websocket first (its writer stops at the failed send):
        run from the Redis listener, that wait held back every message behind it. The close
        is queued without waiting instead.
        """
        socket = self.eio.sockets.get(eio_sid)
        if socket is None:
            return
        await bounded(
            socket.close(wait=False, reason=self.eio.reason.SERVER_DISCONNECT), name="engineio.disconnect", seconds=DROP_TIMEOUT_SECONDS
        )
        self.eio.sockets.pop(eio_sid, None)
        # Engine.IO's writer would hold the websocket until its next poll timed out (45 s);
        # an empty poll makes it send the close and close the websocket at once.
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
