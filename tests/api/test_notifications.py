"""Notifications over real HTTP and Socket.IO: raised by reactions, listed, counted, marked read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.fakes.stripe_api import FakeStripe, event
from tests.support import payments_support
from tests.support import sockets as socket_support
from tests.support.accounts import auth, signup
from tests.support.admins import make_admin
from tests.support.chat import send
from tests.support.payments_support import buyer, deliver
from tests.support.sockets import Listener, base_url
from truebond import bootstrap
from truebond.clock import OffsetClock
from truebond.commands import notifications
from truebond.commands.bus import Context

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


async def test_a_message_notifies_its_receiver_only_while_offline_and_only_if_wanted(
    client: Any, runtime: bootstrap.Runtime, listeners: Callable[[], Listener]
) -> None:
    asha, ravi = await signup(client, name="Asha Rao"), await signup(client, name="Ravi Kumar")
    assert (await send(client, asha, ravi, "are you there?"))[0] == 200
    [shown] = await listed(client, ravi["access_token"])
    assert (shown["type"], shown["body"]) == ("message", "Asha Rao sent you a message.")

    # Online (a live socket): the message itself is the news, no notification.
    sock = listeners()
    await sock.connect(base_url(client), ravi["access_token"])
    assert (await send(client, asha, ravi, "hello again"))[0] == 200
    await sock.wait_for("message:new")
    await sock.sio.disconnect()
    assert len(await listed(client, ravi["access_token"])) == 1

    # Switched off in the settings: no more message notifications.
    await client.post("/api/settings", json={"notifications": {"messages": False}}, headers=auth(ravi["access_token"]))
    assert (await send(client, asha, ravi, "still there?"))[0] == 200
    assert len(await listed(client, ravi["access_token"])) == 1


async def test_a_decided_report_tells_its_reporter_and_nobody_else(client: Any, runtime: bootstrap.Runtime) -> None:
    admin = await make_admin(client, runtime)
    reporter, reported = await signup(client), await signup(client)
    resp = await client.post(
        f"/api/users/report/{reported['user']['id']}",
        json={"report_type": "profile", "reason": "fake profile pictures"},
        headers=auth(reporter["access_token"]),
    )
    assert resp.status == 201, await resp.json()
    queue = await (await client.get("/api/admin/moderation/reports", headers=admin["headers"])).json()
    [report] = queue["reports"]
    assert (await client.post(f"/api/admin/moderation/reports/{report['id']}/approve", headers=admin["headers"])).status == 200
    assert [(n["type"], n["title"]) for n in await listed(client, reporter["access_token"])] == [("report", "Report reviewed")]
    assert await listed(client, reported["access_token"]) == []


async def test_notifications_need_a_login_and_take_no_unknown_query(client: Any) -> None:
    user = await signup(client)
    assert (await client.get("/api/notifications")).status == 401
    assert (await client.get("/api/notifications/unread-count")).status == 401
    assert (await client.post("/api/notifications/mark-all-read")).status == 401
    bad = await client.get("/api/notifications", params={"limit": "1000"}, headers=auth(user["access_token"]))
    assert bad.status == 422
