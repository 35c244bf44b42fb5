"""A shadow-banned user vanishes for everybody else, and nothing they are answered tells them so.

The ban is made by an admin through the real two-step route. Every row of the HTTP table and every
socket push is first seen to work between the two, then asked again: from the other user's side
nothing of the banned user shows or arrives; from the banned user's side every answer is the same
as before the ban (same statuses, same ack shapes, their own messages in their own view).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support import sockets as socket_support
from tests.support.accounts import auth
from tests.support.admins import make_admin
from tests.support.calls_support import run_worker
from tests.support.chat import coins, hdr, history, send, uid
from tests.support.invisibility import HTTP_PROBES, PEER_EVENTS, seen, shadow_ban, socket_probe, two
from tests.support.sockets import Listener, base_url
from truebond.bootstrap import Runtime
from truebond.clock import OffsetClock
from truebond.commands.calls import RING_SECONDS

listeners = socket_support.listeners
EXPECTED_BEFORE = PEER_EVENTS - {"new_notification"}


async def _connected(client: Any, listeners: Callable[[], Listener], user: dict[str, Any]) -> Listener:
    sock = listeners()
    await sock.connect(base_url(client), user["access_token"])
    return sock


def _shape(acks: dict[str, Any]) -> dict[str, Any]:
    """What a client can tell from the acks: each one's keys, success and status."""
    return {event: (sorted(ack), ack.get("success"), ack.get("status")) for event, ack in acks.items()}


async def _unread_notifications(client: Any, user: dict[str, Any]) -> int:
    return int((await (await client.get("/api/notifications/unread-count", headers=hdr(user))).json())["count"])


async def test_a_shadow_banned_user_reaches_nobody_and_is_told_nothing(
    client: Any, runtime: Runtime, listeners: Callable[[], Listener]
) -> None:
    banned, other = await two(client, runtime)
    admin = await make_admin(client, runtime)
    url = base_url(client)
    _, first = await send(client, other, banned, "hi, first")
    await send(client, banned, other, "hello back")
    banned_sock, other_sock = await _connected(client, listeners, banned), await _connected(client, listeners, other)

    received, before, banned_sock = await socket_probe(runtime, url, banned, banned_sock, other, other_sock, first["message_id"], listeners)
    assert received == EXPECTED_BEFORE, before
    assert await seen(client, other, banned) == dict.fromkeys(HTTP_PROBES, True)
    assert await seen(client, banned, other) == dict.fromkeys(HTTP_PROBES, True)

    _, pending = await send(client, other, banned, "sent just before the ban")
    await shadow_ban(client, admin, banned)
    coins_before = await coins(client, banned)

    received, after, banned_sock = await socket_probe(
        runtime, url, banned, banned_sock, other, other_sock, pending["message_id"], listeners
    )
    # The other user got nothing: no message, typing, receipt, presence or call.
    assert received == set(), received
    # The banned user's sockets were answered exactly as before the ban.
    assert _shape(after) == _shape(before), after
    assert await coins(client, banned) == coins_before - 1  # the message's coin, as for anyone

    # Every list and answer: the banned user is gone for the other; the banned user still sees everyone.
    assert await seen(client, other, banned) == dict.fromkeys(HTTP_PROBES, False)
    assert await seen(client, banned, other) == dict.fromkeys(HTTP_PROBES, True)
    mine = await history(client, banned, other)
    assert mine["messages"][-1]["content"] == "are you there?" and mine["messages"][-1]["status"] == "sent"
    listing = await (await client.get("/api/messages/conversations", headers=hdr(banned))).json()
    assert [c["lastMessage"] for c in listing["conversations"]] == ["are you there?"]
    # Nothing in the banned user's own answers says so.
    for path in ("/api/auth/me", "/api/settings", "/api/users/dashboard-stats", "/api/calls/history"):
        resp = await client.get(path, headers=hdr(banned))
        assert resp.status == 200 and "shadow" not in (await resp.text()).lower(), path


async def test_a_shadow_banned_users_message_to_an_offline_user_notifies_nobody(client: Any, runtime: Runtime) -> None:
    banned, other = await two(client, runtime)
    admin = await make_admin(client, runtime)
    assert (await send(client, banned, other, "before the ban"))[0] == 200
    assert await _unread_notifications(client, other) == 1  # the check works: an offline receiver is told
    await shadow_ban(client, admin, banned)
    status, body = await send(client, banned, other, "after the ban")
    assert (status, body["status"]) == (200, "sent")
    assert await _unread_notifications(client, other) == 1


async def test_a_shadow_banned_callers_call_rings_nobody_and_ends_missed_for_them_only(
    client: Any, runtime: Runtime, clock: OffsetClock, listeners: Callable[[], Listener]
) -> None:
    banned, other = await two(client, runtime)
    third = (await two(client, runtime))[0]
    admin = await make_admin(client, runtime)
    await shadow_ban(client, admin, banned)
    banned_sock = await _connected(client, listeners, banned)
    ack = await banned_sock.sio.call("call_user", {"user_id": uid(other), "call_type": "audio"}, timeout=5)
    assert ack["success"] is True and ack["call_id"]
    # The receiver is not held by it: someone else's call rings them at once.
    other_sock = await _connected(client, listeners, other)
    third_sock = await _connected(client, listeners, third)
    rung = await third_sock.sio.call("call_user", {"user_id": uid(other), "call_type": "audio"}, timeout=5)
    assert rung["success"] is True, rung
    assert (await other_sock.wait_for("incoming_call"))["caller_id"] == uid(third)
    assert [c["caller_id"] for c in other_sock.received["incoming_call"]] == [uid(third)]
    # Nor can the receiver act on it.
    refused = await other_sock.sio.call("call:accept", {"call_id": ack["call_id"]}, timeout=5)
    assert (refused["success"], refused["code"]) == (False, "call_not_found")

    clock.advance(RING_SECONDS + 1)
    await run_worker(runtime)
    ended = await banned_sock.wait_for("call_ended")
    assert (ended["call_id"], ended["reason"]) == (ack["call_id"], "missed")
    theirs = await (await client.get("/api/calls/history", headers=hdr(banned))).json()
    assert [(c["id"], c["status"]) for c in theirs["calls"]] == [(ack["call_id"], "missed")]
    # The receiver's history and notifications hold the third user's missed call only.
    mine = await (await client.get("/api/calls/history", headers=hdr(other))).json()
    assert [c["id"] for c in mine["calls"]] == [rung["call_id"]]
    notes = await (await client.get("/api/notifications", headers=hdr(other))).json()
    assert [n["type"] for n in notes["notifications"]].count("missed_call") == 1


async def test_a_shadow_banned_users_profile_visits_count_for_nobody(client: Any, runtime: Runtime) -> None:
    banned, target = await two(client, runtime)
    visitor = (await two(client, runtime))[0]
    admin = await make_admin(client, runtime)
    await shadow_ban(client, admin, banned)
    assert (await client.get(f"/api/users/profile/{uid(target)}", headers=auth(banned["access_token"]))).status == 200
    stats = await (await client.get("/api/users/dashboard-stats", headers=hdr(target))).json()
    assert stats["profile_views"] == 0
    assert (await client.get(f"/api/users/profile/{uid(target)}", headers=hdr(visitor))).status == 200
    stats = await (await client.get("/api/users/dashboard-stats", headers=hdr(target))).json()
    assert stats["profile_views"] == 1
