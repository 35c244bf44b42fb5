"""Calls over Socket.IO as the client makes them: ring, answer, billing pushes, signalling, hang-up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import sockets as socket_support
from tests.support.accounts import auth, signup
from tests.support.calls_support import run_worker
from tests.support.sockets import Listener, base_url
from truebond.bootstrap import Runtime
from truebond.clock import OffsetClock
from truebond.projections import calls as calls_view

listeners = socket_support.listeners

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}


async def _person(client: Any, listeners: Callable[[], Listener]) -> tuple[dict[str, Any], Listener]:
    user = await signup(client)
    socket = listeners()
    await socket.connect(base_url(client), user["access_token"])
    return user, socket


async def _ring(caller: Listener, receiver_id: str) -> str:
    ack = await caller.sio.call("call_user", {"user_id": receiver_id, "call_type": "audio", "offer": OFFER}, timeout=5)
    assert ack["success"] is True, ack
    return str(ack["call_id"])


async def _eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_a_call_rings_connects_bills_and_ends_with_the_pushes_the_client_reads(
    client: Any, runtime: Runtime, clock: OffsetClock, listeners: Callable[[], Listener]
) -> None:
    a, a_sock = await _person(client, listeners)
    b, b_sock = await _person(client, listeners)
    call_id = await _ring(a_sock, b["user"]["id"])
    incoming = await b_sock.wait_for("incoming_call")
    assert incoming["call_id"] == call_id and incoming["caller_id"] == a["user"]["id"]
    assert (incoming["call_type"], incoming["offer"], incoming["caller_name"]) == ("audio", OFFER, "Asha Rao")

    ack = await b_sock.sio.call("call:accept", {"call_id": call_id, "answer": ANSWER}, timeout=5)
    assert ack["success"] is True
    accepted = await a_sock.wait_for("call:accept")
    assert accepted["call_id"] == call_id and accepted["answer"] == ANSWER
    billing = await a_sock.wait_for("call:billing")
    assert billing["call_id"] == call_id and billing["coins_left"] == 5 and billing["paid_until"].endswith("Z")
    assert (await a_sock.wait_for("balance_updated"))["coins"] == 5

    # Signalling goes to the other participant only, untouched.
    candidate = {"candidate": "candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
    assert (await a_sock.sio.call("webrtc:ice-candidate", {"call_id": call_id, "candidate": candidate}, timeout=5))["success"]
    relayed = await b_sock.wait_for("webrtc:ice-candidate")
    assert relayed["candidate"] == candidate and relayed["from_user_id"] == a["user"]["id"]
    assert (await b_sock.sio.call("call:media-state", {"call_id": call_id, "type": "video", "enabled": False}, timeout=5))["success"]
    assert (await a_sock.wait_for("call:media-state"))["enabled"] is False

    clock.advance(70)
    await run_worker(runtime)
    second = await _eventually(lambda: _nth(a_sock, "call:billing", 2))
    assert second["coins_left"] == 0

    ack = await a_sock.sio.call("call:end", {"call_id": call_id}, timeout=5)
    assert ack["success"] is True
    for sock in (a_sock, b_sock):
        ended = await sock.wait_for("call_ended")
        assert ended["call_id"] == call_id and ended["reason"] == "ended" and ended["ended_by"] == a["user"]["id"]
        assert ended["credits_spent"] == 10 and 69 <= ended["duration_seconds"] <= 71
        assert (await sock.wait_for("call:end"))["call_id"] == call_id

    resp = await client.get("/api/credits/history", headers=auth(a["access_token"]))
    charges = [t for t in (await resp.json())["transactions"] if t["reason"] == "CALL"]
    assert [t["amount"] for t in charges] == [-5, -5]


async def _nth(sock: Listener, event: str, n: int) -> Any:
    got = sock.received.get(event, [])
    return got[n - 1] if len(got) >= n else None


async def test_a_refused_call_gets_an_error_ack_and_call_failed(client: Any, listeners: Callable[[], Listener]) -> None:
    _a, a_sock = await _person(client, listeners)
    b, _ = await _person(client, listeners)
    c, _ = await _person(client, listeners)
    await _ring(a_sock, b["user"]["id"])
    ack = await a_sock.sio.call("call:initiate", {"targetUserId": c["user"]["id"], "type": "video"}, timeout=5)
    assert (ack["success"], ack["code"]) == (False, "busy") and isinstance(ack["error"], str)
    failed = await a_sock.wait_for("call_failed")
    assert failed["reason"] == "busy"


async def test_the_receiver_gets_call_reject_pushes_when_refusing(client: Any, listeners: Callable[[], Listener]) -> None:
    _a, a_sock = await _person(client, listeners)
    b, b_sock = await _person(client, listeners)
    call_id = await _ring(a_sock, b["user"]["id"])
    assert (await b_sock.sio.call("reject_call", {"call_id": call_id, "reason": "busy"}, timeout=5))["success"]
    assert (await a_sock.wait_for("call:reject"))["call_id"] == call_id
    assert (await a_sock.wait_for("call_ended"))["reason"] == "rejected"
    ack = await b_sock.sio.call("call:accept", {"call_id": call_id}, timeout=5)
    assert (ack["success"], ack["code"]) == (False, "call_over")


async def test_a_stranger_cannot_accept_end_or_signal_a_call(client: Any, runtime: Runtime, listeners: Callable[[], Listener]) -> None:
    _a, a_sock = await _person(client, listeners)
    b, b_sock = await _person(client, listeners)
    _, s_sock = await _person(client, listeners)
    call_id = await _ring(a_sock, b["user"]["id"])
    attempts = [
        ("call:accept", {"call_id": call_id, "answer": ANSWER}),
        ("call:end", {"call_id": call_id}),
        ("call:reject", {"call_id": call_id}),
        ("offer", {"call_id": call_id, "offer": OFFER}),
        ("answer", {"call_id": call_id, "answer": ANSWER}),
        ("webrtc:ice-candidate", {"call_id": call_id, "candidate": None}),
        ("call:media-state", {"call_id": call_id, "type": "audio", "enabled": True}),
    ]
    for event, payload in attempts:
        ack = await s_sock.sio.call(event, payload, timeout=5)
        assert (ack["success"], ack["code"]) == (False, "call_not_found"), (event, ack)
    # The caller may not answer their own call either.
    ack = await a_sock.sio.call("call:accept", {"call_id": call_id}, timeout=5)
    assert (ack["success"], ack["code"]) == (False, "not_receiver")
    doc = await calls_view.by_id(runtime.unit.db, call_id)
    assert doc is not None and doc["state"] == "ringing"
    assert not {"offer", "answer", "webrtc:ice-candidate", "call:media-state"} & set(b_sock.received)
    assert s_sock.sio.connected


BIG_SDP = {"type": "offer", "sdp": "a" * (16 * 1024 + 1)}


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("call_user", {"user_id": "x", "call_type": "fax"}),
        ("call_user", {"user_id": "x", "call_type": "audio", "offer": BIG_SDP}),
        ("call_user", {"user_id": "x", "extra": 1}),
        ("call_user", "not-an-object"),
        ("call:initiate", {"targetUserId": 5, "type": "audio"}),
        ("call:initiate", {"user_id": "x"}),
        ("call:accept", {"call_id": "c", "answer": {"type": "answer"}}),
        ("call:accept", {"call_id": "c" * 65}),
        ("call:reject", {"call_id": "c", "reason": "r" * 101}),
        ("reject_call", {}),
        ("call:end", {"call_id": "c", "why": "x"}),
        ("call:end", None),
        ("offer", {"call_id": "c", "offer": BIG_SDP}),
        ("answer", {"call_id": "c", "answer": {"type": "answer", "sdp": 1}}),
        ("webrtc:ice-candidate", {"call_id": "c", "candidate": {"candidate": "x" * 3000}}),
        ("webrtc:ice-candidate", {"call_id": "c", "candidate": {"candidate": "x", "foo": 1}}),
        ("call:media-state", {"call_id": "c", "type": "audio", "enabled": "yes"}),
        ("call:media-state", {"call_id": "c", "type": "audio"}),
    ],
)
async def test_malformed_oversized_and_unknown_key_payloads_get_an_error_ack(
    client: Any, listeners: Callable[[], Listener], event: str, payload: Any
) -> None:
    user, sock = await _person(client, listeners)
    ack = await sock.sio.call(event, payload, timeout=5)
    assert ack["success"] is False and ack["code"] in ("validation_error", "payload_too_large"), ack
    assert "Traceback" not in ack["error"]
    assert await sock.sio.call("join", {"user_id": user["user"]["id"]}, timeout=5) is None  # still served


async def test_a_dropped_connection_starts_the_grace_and_a_reconnect_resumes_the_call(
    client: Any, runtime: Runtime, clock: OffsetClock, listeners: Callable[[], Listener]
) -> None:
    _a, a_sock = await _person(client, listeners)
    b, b_sock = await _person(client, listeners)
    call_id = await _ring(a_sock, b["user"]["id"])
    assert (await b_sock.sio.call("call:accept", {"call_id": call_id}, timeout=5))["success"]
    await b_sock.sio.disconnect()

    async def away() -> bool:
        doc = await calls_view.by_id(runtime.unit.db, call_id)
        return bool(doc and b["user"]["id"] in (doc.get("away") or {}))

    await _eventually(away)
    clock.advance(20)
    back = listeners()
    await back.connect(base_url(client), b["access_token"])
    await _eventually(lambda: _not(away))
    clock.advance(15)
    await run_worker(runtime)
    doc = await calls_view.by_id(runtime.unit.db, call_id)
    assert doc is not None and doc["state"] == "connected" and doc["credits_spent"] == 5

    # Gone for good this time: the grace runs out and both hear why.
    await back.sio.disconnect()
    await _eventually(away)
    clock.advance(31)
    await run_worker(runtime)
    ended = await a_sock.wait_for("call_ended")
    assert (ended["reason"], ended["ended_by"]) == ("disconnected", b["user"]["id"])


async def _not(check: Callable[[], Any]) -> bool:
    return not await check()
