"""Racing sends over REST and sockets at once: every message has its coin, and no coin goes twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.support import chat as chat_support
from tests.support import sockets as socket_support
from tests.support.chat import SEND, coins, hdr, history, set_coins, two_users, uid
from tests.support.sockets import Listener, base_url
from truebond.bootstrap import Runtime
from truebond.events.chat import MessageSent

listeners = socket_support.listeners
no_message_limit = chat_support.no_message_limit


async def test_100_concurrent_sends_with_50_coins_make_exactly_50_messages(
    client: Any, runtime: Runtime, listeners: Callable[[], Listener], no_message_limit: None
) -> None:
    alice, bob = await two_users(client)
    await set_coins(runtime, uid(alice), 50)
    sockets = [listeners() for _ in range(2)]
    for sock in sockets:
        await sock.connect(base_url(client), alice["access_token"])

    async def over_rest(n: int) -> str:
        resp = await client.post(SEND, json={"receiver_id": uid(bob), "content": f"rest {n}"}, headers=hdr(alice))
        body = await resp.json()
        return "ok" if resp.status == 200 else body["code"]

    async def over_socket(n: int) -> str:
        ack = await sockets[n % 2].sio.call("message:send", {"receiver_id": uid(bob), "content": f"socket {n}"}, timeout=30)
        return "ok" if ack["success"] else str(ack["code"])

    outcomes = await asyncio.gather(*(over_rest(n) if n % 2 else over_socket(n) for n in range(100)))

    assert outcomes.count("ok") == 50
    assert set(outcomes) == {"ok", "insufficient_coins"}
    assert await coins(client, alice) == 0
    listed = await history(client, bob, alice, limit=100)
    assert len(listed["messages"]) == 50 and len({m["id"] for m in listed["messages"]}) == 50
    # In the store: every message is one event that is its own charge, chained on the balance.
    events = [rec for rec in await runtime.unit.store.load(f"account-{uid(alice)}") if isinstance(rec.event, MessageSent)]
    assert len(events) == 50
    assert sum(-rec.event.amount for rec in events) == 50
    assert sorted(rec.event.balance_after for rec in events) == list(range(50))
    assert {rec.event.message_id for rec in events} == {m["id"] for m in listed["messages"]}
    # And the read models equal what the events derive.
    assert await runtime.unit.projections.diff() == []


async def test_concurrent_repeats_of_one_temp_id_charge_once(client: Any, listeners: Callable[[], Listener]) -> None:
    alice, bob = await two_users(client)
    sock = listeners()
    await sock.connect(base_url(client), alice["access_token"])
    payload = {"receiver_id": uid(bob), "content": "once", "temp_id": "same-key"}

    async def rest() -> str:
        resp = await client.post(SEND, json=payload, headers=hdr(alice))
        return str((await resp.json())["message_id"])

    async def socket() -> str:
        return str((await sock.sio.call("message:send", payload, timeout=30))["message_id"])

    ids = await asyncio.gather(*(rest() if n % 2 else socket() for n in range(10)))
    assert len(set(ids)) == 1
    assert await coins(client, alice) == 9
    assert [m["id"] for m in (await history(client, bob, alice))["messages"]] == ids[:1]
