"""A python-socketio client for tests, and a fixture that makes and cleans up clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio


class Listener:
    """A python-socketio client that records what it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = {}
        self.gone = asyncio.Event()
        self.arrived = asyncio.Event()
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", self._on_any)

    async def _on_disconnect(self, *args: Any) -> None:
        self.gone.set()

    async def _on_any(self, event: str, data: Any = None) -> None:
        self.received.setdefault(event, []).append(data)
        self.arrived.set()

    async def connect(self, url: str, token: str | None) -> None:
        """Connect over websocket with `auth: {token}` (or no auth at all)."""
        await self.sio.connect(url, transports=["websocket"], auth=None if token is None else {"token": token}, wait_timeout=5)

    async def wait_for(self, event: str, timeout: float = 5.0) -> Any:
        """The first `event` payload, waiting for it to arrive."""
        deadline = asyncio.get_running_loop().time() + timeout
        while event not in self.received:
            self.arrived.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no {event} received")
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                pass
        return self.received[event][0]


@pytest.fixture
async def listeners() -> AsyncIterator[Callable[[], Listener]]:
    """Make clients; every one is disconnected at the end."""
    made: list[Listener] = []

    def make() -> Listener:
        listener = Listener()
        made.append(listener)
        return listener

    yield make
    for listener in made:
        if listener.sio.connected:
            await listener.sio.disconnect()


def base_url(client: Any) -> str:
    """The test server's http://host:port."""
    return str(client.make_url("")).rstrip("/")
