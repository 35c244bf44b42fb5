"""What pushes to connected clients: the Socket.IO server in a web process, or a write-only emitter."""

from __future__ import annotations

from typing import Any, Protocol


class Notifier(Protocol):
    """Pushes to connected clients (Socket.IO); sessions' sockets can be dropped."""

    async def emit_to_user(self, user_id: str, event: str, data: Any, skip_sid: str | None = None) -> None:
        """Send `event` to every socket of a user (room `user:<id>`), but the socket `skip_sid`."""
        ...

    async def emit_to_session(self, session_id: str, event: str, data: Any) -> None:
        """Send `event` to the sockets opened with one session's tokens."""
        ...

    async def disconnect_session(self, session_id: str) -> None:
        """Drop every socket of a session (it was revoked)."""
        ...

    async def close(self) -> None:
        """Stop background work and release connections."""
        ...


class NullNotifier:
    """No sockets reachable from this process: nothing to send or drop."""

    async def emit_to_user(self, user_id: str, event: str, data: Any, skip_sid: str | None = None) -> None:
        """Nothing is connected."""

    async def emit_to_session(self, session_id: str, event: str, data: Any) -> None:
        """Nothing is connected."""

    async def disconnect_session(self, session_id: str) -> None:
        """Nothing is connected."""

    async def close(self) -> None:
        """Nothing to release."""
