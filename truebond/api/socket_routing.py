"""The socket route table: every client event declares its schema and limits, like an HTTP route.

`SocketRoute(event, schema, handler, limits)` is the twin of `Route`. A client event is checked
before its handler runs: known event, payload at most 64 KiB, the voluptuous schema (unknown
keys refused), the per-user default limit and the route's own. The handler turns the payload
into a command for the bus and returns the ack. Every refusal or failure becomes the ack
`{success: false, error, code}` (truebond.api.error_map): the connection survives and no
exception reaches python-socketio.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import attrs
import voluptuous as vol

from truebond.adapters.ratelimit import DEFAULT_USER, Policy
from truebond.api.error_map import ack_of, as_dependency_down, status_of
from truebond.api.validation import check
from truebond.commands.bus import Bus, Context
from truebond.commands.unit import Unit
from truebond.errors import PayloadTooLarge, TrueBondError, UnknownEvent
from truebond.logging import get_logger

log = get_logger(__name__)

MAX_PAYLOAD_BYTES = 64 * 1024
INTERNAL_ACK = {"success": False, "error": "Something went wrong", "code": "internal"}
Ack = dict[str, Any] | None


@attrs.frozen
class SocketCaller:
    """The authenticated owner of a socket (saved in its Socket.IO session at connect)."""

    sid: str
    user_id: str
    session_id: str


@attrs.define
class SocketReq:
    """What a socket handler receives: the caller, the validated payload, the bus and its context."""

    caller: SocketCaller
    payload: Any
    bus: Bus
    unit: Unit
    ctx: Context


SocketHandler = Callable[[SocketReq], Awaitable[Ack]]


@attrs.frozen
class SocketRoute:
    """One client event and what the server enforces before its handler runs."""

    event: str
    schema: vol.Schema
    handler: SocketHandler
    limits: Sequence[Policy] = ()
    summary: str = ""


class SocketRouter:
    """Finds the route of a client event, guards it and turns every failure into an error ack."""

    def __init__(self, routes: Iterable[SocketRoute]) -> None:
        self.routes: dict[str, SocketRoute] = {}
        for route in routes:
            if route.event in self.routes:
                raise ValueError(f"socket event {route.event} routed twice")
            self.routes[route.event] = route

    async def dispatch(self, event: str, caller: SocketCaller, data: Any, *, bus: Bus, ctx: Context) -> Ack:
        """Run the route of `event` for `caller`; returns the ack (None: the route answers nothing)."""
        route = self.routes.get(event) if isinstance(event, str) else None
        try:
            if route is None:
                log.info("socket.unknown_event", user_id=caller.user_id)
                raise UnknownEvent()
            if _size(data) > MAX_PAYLOAD_BYTES:
                raise PayloadTooLarge("Event payload too large")
            unit = bus.deps
            await unit.limiter.hit(DEFAULT_USER, caller.user_id)
            for policy in route.limits:
                await unit.limiter.hit(policy, caller.user_id)
            payload = check(route.schema, data)
            return await route.handler(SocketReq(caller=caller, payload=payload, bus=bus, unit=unit, ctx=ctx))
        except TrueBondError as exc:
            if status_of(exc) is None:
                log.exception("socket.unhandled_error", socket_event=route.event if route else "unknown")
                return dict(INTERNAL_ACK)
            return ack_of(exc)
        except Exception as exc:
            down = as_dependency_down(exc)
            if down is not None:
                log.warning("socket.dependency_down", socket_event=route.event if route else "unknown", cause=type(exc).__name__)
                return ack_of(down)
            log.exception("socket.unhandled_error", socket_event=route.event if route else "unknown")
            return dict(INTERNAL_ACK)


def _size(data: Any) -> int:
    """The payload's size as JSON (python-socketio has decoded it already)."""
    try:
        return len(json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError):
        return MAX_PAYLOAD_BYTES + 1
