"""Chat over Socket.IO: message:send acks and deliveries, join_chat, typing relays, receipts, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import chat as chat_support
from tests.support import sockets as socket_support
from tests.support.accounts import signup
from tests.support.chat import coins, history, send, two_users, uid
from tests.support.sockets import Listener, base_url
from truebond.api import socket_routing
from truebond.projections import blocks

listeners = socket_support.listeners


async def _socket(client: Any, listeners: Callable[[], Listener], user: dict[str, Any]) -> Listener:
    sock = listeners()
    await sock.connect(base_url(client), user["access_token"])
    return sock


async def test_message_send_acks_delivers_to_the_receiver_and_the_senders_other_sockets(
    client: Any, listeners: Callable[[], Listener]
) -> None:
    alice, bob = await two_users(client)
    sending, other_tab, receiving = (
        await _socket(client, listeners, alice),
        await _socket(client, listeners, alice),
        await _socket(client, listeners, bob),
    )
    ack = await sending.sio.call("message:send", {"receiver_id": uid(bob), "content": "hi", "type": "text", "temp_id": "t1"}, timeout=5)
    assert ack["success"] is True and ack["status"] == "sent", ack
    assert set(ack) >= {"message_id", "conversation_id", "created_at", "status"}

    for event in ("message:new", "new_message"):
        pushed = await receiving.wait_for(event)
        assert (pushed["id"], pushed["content"], pushed["is_mine"], pushed["sender_id"]) == (ack["message_id"], "hi", False, uid(alice))
    echoed = await other_tab.wait_for("message:sent")
    assert echoed["id"] == ack["message_id"] and echoed["is_mine"] is True
    assert (await other_tab.wait_for("balance_updated")) == {"coins": 9}
    await asyncio.sleep(0.2)
    assert "message:sent" not in sending.received  # the sending socket has its ack
    assert "message:new" not in sending.received and "message:new" not in other_tab.received
    assert "message:sent" not in receiving.received

    again = await sending.sio.call("message:send", {"receiver_id": uid(bob), "content": "hi", "temp_id": "t1"}, timeout=5)
    assert again["message_id"] == ack["message_id"]
    assert await coins(client, alice) == 9
    assert [m["id"] for m in (await history(client, bob, alice))["messages"]] == [ack["message_id"]]


async def test_a_message_sent_over_rest_reaches_the_receivers_socket(client: Any, listeners: Callable[[], Listener]) -> None:
    alice, bob = await two_users(client)
    receiving = await _socket(client, listeners, bob)
    _, body = await send(client, alice, bob, "over http")
    assert (await receiving.wait_for("message:new"))["id"] == body["message_id"]


async def test_socket_send_refusals_are_error_acks(client: Any, listeners: Callable[[], Listener], runtime: Any) -> None:
    alice, bob = await two_users(client)
    await chat_support.set_coins(runtime, uid(alice), 0)
    sock = await _socket(client, listeners, alice)
    ack = await sock.sio.call("message:send", {"receiver_id": uid(bob), "content": "hi"}, timeout=5)
    assert ack == {"success": False, "error": "Not enough coins", "code": "insufficient_coins"}
    ack = await sock.sio.call("message:send", {"receiver_id": uid(bob), "content": "x" * 2001}, timeout=5)
    assert (ack["success"], ack["code"]) == (False, "validation_error")
    assert sock.sio.connected


async def test_join_chat_answers_the_pairs_conversation_or_an_error(
    client: Any, listeners: Callable[[], Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await two_users(client)
    sock = await _socket(client, listeners, alice)
    ack = await sock.sio.call("join_chat", {"user_id": uid(bob)}, timeout=5)
    _, sent = await send(client, alice, bob, "hi")
    assert ack == {"success": True, "conversation_id": sent["conversation_id"]}
    unknown = await sock.sio.call("join_chat", {"user_id": "f" * 32}, timeout=5)
    assert unknown["success"] is False and unknown["error"]

    async def blocked(db: Any, a: str, b: str) -> bool:
        return True

    monkeypatch.setattr(blocks, "blocked_either_way", blocked)
    refused = await sock.sio.call("join_chat", {"user_id": uid(bob)}, timeout=5)
    assert (refused["success"], refused["code"]) == (False, "forbidden")


async def test_typing_is_relayed_only_to_that_user_and_only_within_a_conversation(
    client: Any, listeners: Callable[[], Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await two_users(client)
    carol = await signup(client)
    a, b, c = [await _socket(client, listeners, u) for u in (alice, bob, carol)]
    # No conversation yet: nothing is relayed.
    ack = await a.sio.call("message:typing", {"receiver_id": uid(bob)}, timeout=5)
    assert ack["success"] is False
    await send(client, bob, alice, "hey")
    await send(client, alice, bob, "hey you")
    assert (await a.sio.call("message:typing", {"receiver_id": uid(bob)}, timeout=5)) == {"success": True}
    typing = await b.wait_for("message:typing")
    assert typing["sender_id"] == uid(alice)
    assert (await a.sio.call("message:stop-typing", {"receiver_id": uid(bob)}, timeout=5)) == {"success": True}
    assert (await b.wait_for("message:stop-typing"))["sender_id"] == uid(alice)
    # Carol shares no conversation with Alice.
    assert (await a.sio.call("message:typing", {"receiver_id": uid(carol)}, timeout=5))["success"] is False

    async def blocked(db: Any, x: str, y: str) -> bool:
        return True

    monkeypatch.setattr(blocks, "blocked_either_way", blocked)
    assert (await a.sio.call("message:typing", {"receiver_id": uid(bob)}, timeout=5))["code"] == "forbidden"
    await asyncio.sleep(0.2)
    assert len(b.received["message:typing"]) == 1
    assert "message:typing" not in c.received and "message:typing" not in a.received


async def test_read_and_delivered_receipts_reach_the_sender_and_only_the_receiver_may_send_them(
    client: Any, listeners: Callable[[], Listener]
) -> None:
    alice, bob = await two_users(client)
    carol = await signup(client)
    a, b, c = [await _socket(client, listeners, u) for u in (alice, bob, carol)]
    _, sent = await send(client, alice, bob, "did you get this?")
    message_id = sent["message_id"]

    # Neither the sender nor a stranger may confirm delivery; nothing changes.
    for sock, sender in ((a, alice), (c, alice), (b, carol)):
        ack = await sock.sio.call("message:delivered", {"message_id": message_id, "sender_id": uid(sender)}, timeout=5)
        assert (ack["success"], ack["code"]) == (False, "not_found"), ack
    assert (await history(client, alice, bob))["messages"][0]["status"] == "sent"

    ack = await b.sio.call("message:delivered", {"message_id": message_id, "sender_id": uid(alice)}, timeout=5)
    assert ack == {"success": True}
    assert (await a.wait_for("message:delivered"))["message_id"] == message_id
    assert (await history(client, alice, bob))["messages"][0]["status"] == "delivered"

    # Carol reading "Alice's conversation" reads only her own (none): an error, nothing read.
    ack = await c.sio.call("message:read", {"sender_id": uid(alice)}, timeout=5)
    assert (ack["success"], ack["code"]) == (False, "not_found")
    ack = await b.sio.call("message:read", {"sender_id": uid(alice), "conversation_id": "c" + "0" * 31}, timeout=5)
    assert (ack["success"], ack["code"]) == (False, "forbidden")
    assert (await history(client, alice, bob))["messages"][0]["is_read"] is False

    ack = await b.sio.call("message:read", {"sender_id": uid(alice)}, timeout=5)
    assert ack == {"success": True, "marked_read": 1}
    receipt = await a.wait_for("message:read")
    assert (receipt["reader_id"], receipt["count"], receipt["conversation_id"]) == (uid(bob), 1, sent["conversation_id"])
    assert (await history(client, alice, bob))["messages"][0]["status"] == "read"
    await asyncio.sleep(0.2)
    assert "message:read" not in c.received and "message:delivered" not in c.received


async def test_a_socket_cannot_send_for_another_user(client: Any, listeners: Callable[[], Listener]) -> None:
    alice, bob = await two_users(client)
    sock = await _socket(client, listeners, alice)
    ack = await sock.sio.call("message:send", {"receiver_id": uid(bob), "content": "hi", "sender_id": uid(bob)}, timeout=5)
    assert (ack["success"], ack["code"]) == (False, "validation_error")
    assert await coins(client, bob) == 10 and await coins(client, alice) == 10
    assert (await history(client, bob, alice))["messages"] == []


CHAT_EVENTS = {
    "message:send": {"receiver_id": "u1", "content": "hi"},
    "join_chat": {"user_id": "u1"},
    "message:typing": {"receiver_id": "u1"},
    "message:stop-typing": {"receiver_id": "u1"},
    "message:read": {"sender_id": "u1"},
    "message:delivered": {"message_id": "m1", "sender_id": "u1"},
}


def _malformed() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    for event, good in CHAT_EVENTS.items():
        first = next(iter(good))
        cases += [
            (event, None),
            (event, "not-an-object"),
            (event, [good]),
            (event, {**good, "unknown_key": 1}),
            (event, {k: v for k, v in good.items() if k != first}),
            (event, {**good, first: 12345}),
            (event, {**good, first: "x" * 500}),
        ]
    return cases


@pytest.mark.parametrize(("event", "payload"), _malformed())
async def test_malformed_chat_payloads_get_an_error_ack_and_the_connection_survives(
    client: Any, listeners: Callable[[], Listener], event: str, payload: Any
) -> None:
    user = await signup(client)
    sock = await _socket(client, listeners, user)
    ack = await sock.sio.call(event, payload, timeout=5)
    assert ack["success"] is False and ack["code"] == "validation_error", ack
    assert await sock.sio.call("join", {"user_id": uid(user)}, timeout=5) is None
    assert await coins(client, user) == 10


@pytest.mark.parametrize("event", sorted(CHAT_EVENTS))
async def test_oversized_chat_payloads_get_an_error_ack(
    client: Any, listeners: Callable[[], Listener], monkeypatch: pytest.MonkeyPatch, event: str
) -> None:
    monkeypatch.setattr(socket_routing, "MAX_PAYLOAD_BYTES", 1000)
    user = await signup(client)
    sock = await _socket(client, listeners, user)
    ack = await sock.sio.call(event, {**CHAT_EVENTS[event], "pad": "x" * 2000}, timeout=5)
    assert (ack["success"], ack["code"]) == (False, "payload_too_large")
    assert sock.sio.connected


async def test_a_message_sent_through_one_server_reaches_the_receiver_on_another(
    client: Any, runtime: Any, settings: Any, db: Any, clock: Any, aiohttp_client: Any, listeners: Callable[[], Listener]
) -> None:
    from truebond import bootstrap

    other = await bootstrap.build(settings, db=db, clock=clock, fast_hashing=True)
    try:
        client_b = await aiohttp_client(bootstrap.web_app(other))
        alice, bob = await two_users(client)
        receiving = await _socket(client, listeners, bob)
        # Server A subscribes to the Redis channel when its first socket connects: wait for it.
        for _ in range(50):
            await other.unit.notifier.emit_to_user(uid(bob), "probe", {})
            if "probe" in receiving.received:
                break
            await asyncio.sleep(0.05)
        status, body = await send(client_b, alice, bob, "across servers")
        assert status == 200
        pushed = await receiving.wait_for("message:new")
        assert (pushed["id"], pushed["content"]) == (body["message_id"], "across servers")
    finally:
        await other.close()


async def test_a_receiver_who_takes_messages_from_verified_users_only_refuses_others(client: Any) -> None:
    alice, bob = await two_users(client)
    resp = await client.post("/api/settings", json={"safety": {"require_verified_matches": True}}, headers=chat_support.hdr(bob))
    assert resp.status == 200
    status, body = await send(client, alice, bob, "hi")
    assert (status, body["code"]) == (403, "forbidden")
    assert await coins(client, alice) == 10
