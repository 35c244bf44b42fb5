"""Every socket route gets hypothesis-generated payloads from its own schema over a real Socket.IO
client: valid-ish, invalid, oversized (under the Engine.IO frame cap), unknown keys and
non-objects. Each one gets an ack (the call never times out), an error ack has the documented
shape and is never `internal`, the connection is never dropped and no traceback reaches the log.
Bounded by TRUEBOND_SOCKET_FUZZ_EXAMPLES payloads per route.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from typing import Any

import socketio
from hypothesis import strategies as st

from tests.support import sockets as socket_support
from tests.support.accounts import signup
from tests.support.limits import lift_limits
from tests.support.socket_payloads import draw_examples, payloads
from tests.support.sockets import Listener, base_url
from truebond import bootstrap
from truebond.api import openapi

listeners = socket_support.listeners
EXAMPLES = int(os.environ.get("TRUEBOND_SOCKET_FUZZ_EXAMPLES", "30"))
ROUTES = [route for table in bootstrap.SOCKET_TABLES for route in table]


def _tracebacks(log: io.StringIO) -> list[str]:
    lines = [json.loads(line) for line in log.getvalue().splitlines() if line.strip().startswith("{")]
    return [str(line.get("event")) for line in lines if "exception" in line or str(line.get("event", "")).endswith("unhandled_error")]


def _check_ack(event: str, payload: Any, ack: Any) -> None:
    if ack is None or ack.get("success") is not False:
        return
    assert isinstance(ack.get("error"), str) and isinstance(ack.get("code"), str), (event, payload, ack)
    assert ack["code"] != "internal", (event, payload, ack)
    assert "Traceback" not in ack["error"], (event, ack)


async def test_every_socket_route_acks_every_generated_payload_and_keeps_the_connection(
    runtime: bootstrap.Runtime, client: Any, listeners: Callable[[], Listener], log_output: io.StringIO
) -> None:
    lift_limits(runtime)
    caller, other = await signup(client), await signup(client)
    socket, peer = listeners(), listeners()
    await socket.connect(base_url(client), caller["access_token"])
    await peer.connect(base_url(client), other["access_token"])
    # A ringing call gives the call routes a real call id to work on.
    ring = await socket.sio.call("call_user", {"user_id": other["user"]["id"], "call_type": "audio"}, timeout=5)
    real = [caller["user"]["id"], other["user"]["id"], *(v for v in (ring or {}).values() if isinstance(v, str) and 8 <= len(v) <= 64)]
    ids = st.sampled_from(real) | st.text(min_size=1, max_size=64)
    sent = 0
    outcomes: dict[str, int] = {}
    for route in ROUTES:
        for payload in draw_examples(payloads(openapi.socket_schema(route.schema), ids), EXAMPLES):
            try:
                ack = await socket.sio.call(route.event, payload, timeout=10)
            except socketio.exceptions.TimeoutError:
                raise AssertionError(f"no ack for {route.event} {str(payload)[:300]}") from None
            _check_ack(route.event, payload, ack)
            outcome = str(ack.get("code", "ok")) if isinstance(ack, dict) else "no ack body"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            sent += 1
        assert socket.sio.connected and not socket.gone.is_set(), f"dropped after {route.event}"
    assert sent >= len(ROUTES) * EXAMPLES // 2
    assert not _tracebacks(log_output)
    # The payloads reached past validation too, not only into it.
    assert outcomes.get("validation_error", 0) > 0 and len(outcomes) > 3, outcomes
    # Still served after all of it.
    assert await socket.sio.call("join", {"user_id": caller["user"]["id"]}, timeout=5) is None
