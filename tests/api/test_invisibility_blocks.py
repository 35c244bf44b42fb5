"""A block hides the pair from each other everywhere: every list and every socket push, both ways.

Each check is first seen to work (before the block the other user is visible in every row and
every push arrives), then the block is made through the real route and every row is asked again
from both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support import sockets as socket_support
from tests.support.chat import coins, hdr, send, uid
from tests.support.invisibility import BLOCKED_LIST, HTTP_PROBES, PEER_EVENTS, block, seen, socket_probe, two
from tests.support.sockets import Listener, base_url
from truebond.bootstrap import Runtime

listeners = socket_support.listeners

# What the actor's socket is answered after the block (the ack's code), event by event.
REFUSED_ACKS = {
    "message:send": "forbidden",
    "message:typing": "forbidden",
    "message:stop-typing": "forbidden",
    "message:delivered": "not_found",
    "message:read": "not_found",
    "join_chat": "forbidden",
    "call_user": "blocked",
    "call:initiate": "blocked",
}
EXPECTED_BEFORE = PEER_EVENTS - {"new_notification"}


async def _connected(client: Any, listeners: Callable[[], Listener], user: dict[str, Any]) -> Listener:
    sock = listeners()
    await sock.connect(base_url(client), user["access_token"])
    return sock


@pytest.mark.parametrize("blocker_side", ["actor", "viewer"])
async def test_a_blocked_pair_sees_nothing_of_each_other(
    client: Any, runtime: Runtime, listeners: Callable[[], Listener], blocker_side: str
) -> None:
    """`actor` acts on `viewer`; the block is made by one or the other."""
    actor, viewer = await two(client, runtime)
    url = base_url(client)
    _, first = await send(client, viewer, actor, "hi, first")
    _, second = await send(client, actor, viewer, "hello back")
    actor_sock, viewer_sock = await _connected(client, listeners, actor), await _connected(client, listeners, viewer)

    received, acks, actor_sock = await socket_probe(runtime, url, actor, actor_sock, viewer, viewer_sock, first["message_id"], listeners)
    assert received == EXPECTED_BEFORE, acks
    assert all(ack["success"] for ack in acks.values()), acks
    assert await seen(client, viewer, actor) == dict.fromkeys(HTTP_PROBES, True)
    assert await seen(client, actor, viewer) == dict.fromkeys(HTTP_PROBES, True)

    _, pending = await send(client, viewer, actor, "sent just before the block")
    blocker, blocked = (actor, viewer) if blocker_side == "actor" else (viewer, actor)
    await block(client, blocker, blocked)
    coins_before = await coins(client, actor)

    received, acks, actor_sock = await socket_probe(runtime, url, actor, actor_sock, viewer, viewer_sock, pending["message_id"], listeners)
    assert received == set(), received
    assert {event: ack.get("code") for event, ack in acks.items()} == REFUSED_ACKS, acks
    assert actor_sock.received.get("call_failed") is None  # the new socket made no call
    # No coin moved for any refused message or call.
    assert await coins(client, actor) == coins_before

    # Every list and answer, from both sides; the blocker alone still lists the blocked user.
    assert await seen(client, viewer, actor) == dict.fromkeys(HTTP_PROBES, False)
    assert await seen(client, actor, viewer) == dict.fromkeys(HTTP_PROBES, False)
    assert await seen(client, blocker, blocked, BLOCKED_LIST) == dict.fromkeys(BLOCKED_LIST, True)
    assert await seen(client, blocked, blocker, BLOCKED_LIST) == dict.fromkeys(BLOCKED_LIST, False)

    # HTTP sends are refused too, and messages from before the block stay out of every answer.
    status, body = await send(client, actor, viewer, "over http")
    assert (status, body["code"]) == (403, "forbidden")
    read = await client.post(f"/api/messages/read/{uid(viewer)}", headers=hdr(actor))
    assert await read.json() == {"marked_read": 0}
    assert second["message_id"] not in str(await (await client.get("/api/messages/conversations", headers=hdr(viewer))).json())


async def test_a_call_refused_by_a_block_says_so_to_the_caller_and_charges_nothing(
    client: Any, runtime: Runtime, listeners: Callable[[], Listener]
) -> None:
    caller, receiver = await two(client, runtime)
    caller_sock, receiver_sock = await _connected(client, listeners, caller), await _connected(client, listeners, receiver)
    await block(client, receiver, caller)
    for event, payload in (("call_user", {"user_id": uid(receiver)}), ("call:initiate", {"targetUserId": uid(receiver)})):
        caller_sock.received.pop("call_failed", None)
        ack = await caller_sock.sio.call(event, payload, timeout=5)
        assert (ack["success"], ack["code"]) == (False, "blocked"), ack
        assert (await caller_sock.wait_for("call_failed"))["reason"] == "blocked"
    assert await coins(client, caller) == 100
    history = await (await client.get("/api/calls/history", headers=hdr(caller))).json()
    assert history == {"calls": [], "total": 0}
    assert "incoming_call" not in receiver_sock.received


@pytest.mark.parametrize("blocker_side", ["caller", "receiver"])
async def test_a_block_ends_the_pairs_live_call_at_once_and_stops_its_signalling(
    client: Any, runtime: Runtime, listeners: Callable[[], Listener], blocker_side: str
) -> None:
    caller, receiver = await two(client, runtime)
    caller_sock, receiver_sock = await _connected(client, listeners, caller), await _connected(client, listeners, receiver)
    ack = await caller_sock.sio.call("call_user", {"user_id": uid(receiver), "call_type": "audio"}, timeout=5)
    call_id = ack["call_id"]
    assert (await receiver_sock.sio.call("call:accept", {"call_id": call_id}, timeout=5))["success"] is True
    assert await coins(client, caller) == 95  # the first minute, paid at answer
    media = {"call_id": call_id, "type": "audio", "enabled": False}
    assert (await caller_sock.sio.call("call:media-state", media, timeout=5))["success"] is True

    blocker, blocked = (caller, receiver) if blocker_side == "caller" else (receiver, caller)
    await block(client, blocker, blocked)
    for sock in (caller_sock, receiver_sock):
        ended = await sock.wait_for("call_ended")
        assert (ended["call_id"], ended["reason"]) == (call_id, "blocked")
    relayed = await receiver_sock.sio.call("call:media-state", media, timeout=5)
    assert relayed["success"] is False
    assert await coins(client, caller) == 95
