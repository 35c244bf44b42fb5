"""The socket route table: every client event is validated, limited and answered with an ack."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import sockets as socket_support
from tests.support.accounts import signup
from tests.support.sockets import Listener, base_url
from truebond.api import socket_routing
from truebond.bootstrap import Runtime

listeners = socket_support.listeners


async def _connected(client: Any, listeners: Callable[[], Listener]) -> tuple[dict[str, Any], Listener]:
    user = await signup(client)
    socket = listeners()
    await socket.connect(base_url(client), user["access_token"])
    return user, socket


async def test_join_with_the_callers_own_id_changes_nothing_and_answers_nothing(client: Any, listeners: Callable[[], Listener]) -> None:
    user, socket = await _connected(client, listeners)
    assert await socket.sio.call("join", {"user_id": user["user"]["id"]}, timeout=5) is None
    assert socket.sio.connected


async def test_join_for_another_user_is_refused_and_logged_as_a_probe(
    client: Any, listeners: Callable[[], Listener], log_output: Any
) -> None:
    victim = await signup(client)
    _, socket = await _connected(client, listeners)
    ack = await socket.sio.call("join", {"user_id": victim["user"]["id"]}, timeout=5)
    assert ack == {"success": False, "error": "You cannot join another user's room", "code": "forbidden"}
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    assert any(line.get("event") == "socket.probe" for line in lines)
    assert socket.sio.connected


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        ("no:such-event", {"x": 1}, "unknown_event"),
        ("join", {"user_id": "u", "extra": 1}, "validation_error"),
        ("join", {}, "validation_error"),
        ("join", "not-an-object", "validation_error"),
        ("join", {"user_id": 7}, "validation_error"),
        ("leave_chat", {"room_id": "r" * 300}, "validation_error"),
    ],
)
async def test_unknown_and_malformed_events_get_an_error_ack_and_the_connection_survives(
    client: Any, listeners: Callable[[], Listener], event: str, payload: Any, code: str
) -> None:
    user, socket = await _connected(client, listeners)
    ack = await socket.sio.call(event, payload, timeout=5)
    assert ack["success"] is False and ack["code"] == code, ack
    assert isinstance(ack["error"], str) and "Traceback" not in ack["error"]
    # Still connected and served.
    assert await socket.sio.call("join", {"user_id": user["user"]["id"]}, timeout=5) is None


async def test_an_oversized_payload_gets_an_error_ack(
    client: Any, listeners: Callable[[], Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Engine.IO refuses a frame over 64 KiB outright; the route table checks the decoded payload
    # against the same limit, shown here with a smaller one.
    monkeypatch.setattr(socket_routing, "MAX_PAYLOAD_BYTES", 1000)
    user, socket = await _connected(client, listeners)
    ack = await socket.sio.call("leave_chat", {"room_id": "r" * 150, "pad": "x" * 2000}, timeout=5)
    assert (ack["success"], ack["code"]) == (False, "payload_too_large")
    assert await socket.sio.call("join", {"user_id": user["user"]["id"]}, timeout=5) is None


async def test_socket_events_count_against_the_per_user_limit(
    client: Any, runtime: Runtime, listeners: Callable[[], Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    from truebond.adapters import ratelimit

    monkeypatch.setattr(socket_routing, "DEFAULT_USER", ratelimit.Policy("socket_test", "3/minute"))
    user, socket = await _connected(client, listeners)
    acks = [await socket.sio.call("join", {"user_id": user["user"]["id"]}, timeout=5) for _ in range(4)]
    assert acks[:3] == [None, None, None]
    assert acks[3]["code"] == "rate_limited" and acks[3]["retry_after"] >= 1
