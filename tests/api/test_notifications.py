"""Notifications over real HTTP and Socket.IO: raised by reactions, listed, counted, marked read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import attrs

from tests.fakes.stripe_api import FakeStripe, event
from tests.support import payments_support
from tests.support import sockets as socket_support
from tests.support.accounts import auth, signup
from tests.support.payments_support import buyer, deliver
from tests.support.sockets import Listener, base_url
from truebond import bootstrap
from truebond.clock import OffsetClock
from truebond.commands import notifications
from truebond.commands.bus import Context
from truebond.events.base import Event, Meta, Recorded

stripe_fake = payments_support.stripe_fake
settings = payments_support.settings
listeners = socket_support.listeners


async def listed(client: Any, token: str, **params: str) -> list[dict[str, Any]]:
    """GET /api/notifications as the client calls it."""
    resp = await client.get("/api/notifications", params=params, headers=auth(token))
    body = await resp.json()
    assert resp.status == 200, body
    return list(body["notifications"])


async def unread(client: Any, token: str) -> int:
    """GET /api/notifications/unread-count."""
    return int((await (await client.get("/api/notifications/unread-count", headers=auth(token))).json())["count"])


async def test_a_credited_purchase_notifies_the_buyer_once_and_only_on_their_socket(
    client: Any, stripe_fake: FakeStripe, listeners: Callable[[], Listener]
) -> None:
    user, order = await buyer(client, "popular")
    other = await signup(client)
    mine, theirs = listeners(), listeners()
    await mine.connect(base_url(client), user["access_token"])
    await theirs.connect(base_url(client), other["access_token"])
    paid = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, paid) == 200
    assert await deliver(client, paid) == 200  # redelivered: nothing more
    pushed = await mine.wait_for("new_notification")
    assert (pushed["type"], pushed["title"], pushed["is_read"]) == ("purchase", "Coins added", False)
    assert "500 coins" in pushed["body"]
    [shown] = await listed(client, user["access_token"])
    assert set(shown) == {"id", "title", "body", "type", "is_read", "created_at"}
    assert shown["id"] == pushed["id"] and shown["is_read"] is False
    assert await unread(client, user["access_token"]) == 1
    await asyncio.sleep(0.2)
    assert "new_notification" not in theirs.received
    assert len(mine.received["new_notification"]) == 1
    assert await listed(client, other["access_token"]) == []


async def test_mark_all_read_then_new_ones_are_unread(client: Any, runtime: bootstrap.Runtime, clock: OffsetClock) -> None:
    user = await signup(client)
    uid, token = user["user"]["id"], user["access_token"]
    ctx = Context.system("test")
    for n in range(3):
        assert await notifications.notify_user(runtime.bus, ctx, uid, "missed_call", "Missed call", f"call {n}", f"call-{n}")
        clock.advance(1)
    assert not await notifications.notify_user(runtime.bus, ctx, uid, "missed_call", "Missed call", "again", "call-0")
    assert await unread(client, token) == 3
    assert [n["body"] for n in await listed(client, token)] == ["call 2", "call 1", "call 0"]
    assert [n["body"] for n in await listed(client, token, limit="2")] == ["call 2", "call 1"]
    resp = await client.post("/api/notifications/mark-all-read", headers=auth(token))
    assert resp.status == 200
    assert await unread(client, token) == 0
    assert all(n["is_read"] for n in await listed(client, token))
    assert await listed(client, token, unread_only="true") == []
    clock.advance(1)
    await notifications.notify_user(runtime.bus, ctx, uid, "report", "Report reviewed", "done", "report-1")
    assert [n["body"] for n in await listed(client, token, unread_only="true")] == ["done"]
    assert await unread(client, token) == 1
    assert await runtime.unit.projections.diff(["notifications"]) == []


@attrs.frozen
class _Sent(Event):
    """The shape the chat branch's MessageSent has (receiver_id, sender_id), for the generic reaction."""

    sender_id: str
    receiver_id: str


def _recorded(evt: Event, event_id: str) -> Recorded:
    return Recorded(event_id, "account-x", 1, evt, Meta("user:x"), OffsetClock().now(), "", "")


async def test_message_reaction_notifies_only_an_offline_receiver_who_wants_it(client: Any, runtime: bootstrap.Runtime) -> None:
    asha, ravi = await signup(client, name="Asha Rao"), await signup(client, name="Ravi Kumar")
    sent = _recorded(_Sent(sender_id=asha["user"]["id"], receiver_id=ravi["user"]["id"]), "msg:1")
    online: set[str] = set()

    async def is_online(user_id: str) -> bool:
        return user_id in online

    react = notifications.message_reaction(is_online)
    online.add(ravi["user"]["id"])
    await react(sent, Context.system("test"), runtime.bus)
    assert await listed(client, ravi["access_token"]) == []
    online.clear()
    await react(sent, Context.system("test"), runtime.bus)
    await react(sent, Context.system("test"), runtime.bus)  # re-driven: once
    [shown] = await listed(client, ravi["access_token"])
    assert (shown["type"], shown["body"]) == ("message", "Asha Rao sent you a message.")
    # Switched off in the settings: no more message notifications.
    await client.post("/api/settings", json={"notifications": {"messages": False}}, headers=auth(ravi["access_token"]))
    await react(_recorded(sent.event, "msg:2"), Context.system("test"), runtime.bus)
    assert len(await listed(client, ravi["access_token"])) == 1


async def test_missed_call_and_report_reactions(client: Any, runtime: bootstrap.Runtime) -> None:
    caller, callee = await signup(client, name="Asha Rao"), await signup(client)

    @attrs.frozen
    class Missed(Event):
        caller_id: str
        receiver_id: str

    @attrs.frozen
    class Decided(Event):
        reporter_id: str

    ctx = Context.system("test")
    await notifications.missed_call_reaction()(_recorded(Missed(caller["user"]["id"], callee["user"]["id"]), "call:1"), ctx, runtime.bus)
    await notifications.report_outcome_reaction()(_recorded(Decided(callee["user"]["id"]), "report:1"), ctx, runtime.bus)
    shown = await listed(client, callee["access_token"])
    assert [(n["type"], n["title"]) for n in shown] == [("report", "Report reviewed"), ("missed_call", "Missed call")]
    assert "Asha Rao" in shown[1]["body"]


async def test_notifications_need_a_login_and_take_no_unknown_query(client: Any) -> None:
    user = await signup(client)
    assert (await client.get("/api/notifications")).status == 401
    assert (await client.get("/api/notifications/unread-count")).status == 401
    assert (await client.post("/api/notifications/mark-all-read")).status == 401
    bad = await client.get("/api/notifications", params={"limit": "1000"}, headers=auth(user["access_token"]))
    assert bad.status == 422
