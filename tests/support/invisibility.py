"""What one user can see of another, asked the client's way: every HTTP list and every socket push.

`HTTP_PROBES` is the table of routes that list or show other users or their content; each probe
answers whether `viewer` sees `other` there. `socket_probe` has `actor` do everything that pushes
an event to another user (message, typing, receipts, presence, a call) and answers which events
reached `viewer`. Blocks and shadow-bans are set through the real routes (an admin's two steps).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.support.admins import confirmed_post
from tests.support.chat import hdr, set_coins, uid
from tests.support.discovery import HOME, listed_ids, person
from tests.support.sockets import Listener
from truebond.bootstrap import Runtime
from truebond.projections.presence import presence_of

Probe = Callable[[Any, dict[str, Any], dict[str, Any]], Awaitable[bool]]

# Every socket event the server pushes to a user because of another user's action.
PEER_EVENTS = frozenset(
    {
        "message:new",
        "new_message",
        "message:typing",
        "message:stop-typing",
        "message:delivered",
        "message:read",
        "user:online",
        "user:offline",
        "incoming_call",
        "call:end",
        "call_ended",
        "new_notification",
    }
)


async def two(client: Any, runtime: Runtime) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ravi and Meera: each in the other's discovery lists, on the map, with 100 coins."""
    ravi = await person(client, name="Ravi Kumar")
    meera = await person(client, name="Meera Iyer", gender="female", interested_in="male")
    for user in (ravi, meera):
        await set_coins(runtime, uid(user), 100)
    return ravi, meera


def first_name(user: dict[str, Any]) -> str:
    """What the name search is asked for."""
    return str(user["user"]["name"]).split()[0]


async def _status(resp: Any) -> int:
    await resp.read()
    return int(resp.status)


async def _profile(client: Any, viewer: dict[str, Any], other: dict[str, Any]) -> bool:
    return await _status(await client.get(f"/api/users/profile/{uid(other)}", headers=hdr(viewer))) == 200


async def _history(client: Any, viewer: dict[str, Any], other: dict[str, Any]) -> bool:
    resp = await client.get(f"/api/messages/{uid(other)}", headers=hdr(viewer))
    return resp.status == 200 and bool((await resp.json())["messages"])


async def _conversations(client: Any, viewer: dict[str, Any], other: dict[str, Any]) -> bool:
    body = await (await client.get("/api/messages/conversations", headers=hdr(viewer))).json()
    return uid(other) in [c["user_id"] for c in body["conversations"]]


async def _start(client: Any, viewer: dict[str, Any], other: dict[str, Any]) -> bool:
    resp = await client.post("/api/messages/start-conversation", json={"receiver_id": uid(other)}, headers=hdr(viewer))
    return await _status(resp) == 200


async def _create_or_get(client: Any, viewer: dict[str, Any], other: dict[str, Any]) -> bool:
    resp = await client.post("/api/users/create-or-get-conversation", json={"user_id": uid(other)}, headers=hdr(viewer))
    return await _status(resp) == 200


def _listed(path: str, **params: Any) -> Probe:
    async def probe(client: Any, viewer: dict[str, Any], other: dict[str, Any]) -> bool:
        query = {k: (first_name(other) if v is first_name else v) for k, v in params.items()}
        return uid(other) in await listed_ids(client, viewer["access_token"], path, **query)

    return probe


async def _calls(client: Any, viewer: dict[str, Any], other: dict[str, Any]) -> bool:
    body = await (await client.get("/api/calls/history", headers=hdr(viewer))).json()
    return uid(other) in [c["other_user"]["id"] for c in body["calls"]]


async def _matches(client: Any, viewer: dict[str, Any], other: dict[str, Any]) -> bool:
    # The pair's conversation is the viewer's only one: a count above 0 is the other user.
    body = await (await client.get("/api/users/dashboard-stats", headers=hdr(viewer))).json()
    return int(body["matches"]) > 0


async def _blocked_list(client: Any, viewer: dict[str, Any], other: dict[str, Any]) -> bool:
    body = await (await client.get("/api/users/blocked", headers=hdr(viewer))).json()
    return uid(other) in [u["id"] for u in body["blocked_users"]]


HTTP_PROBES: dict[str, Probe] = {
    "GET /api/users/profile/{id}": _profile,
    "GET /api/messages/{id}": _history,
    "GET /api/messages/conversations": _conversations,
    "POST /api/messages/start-conversation": _start,
    "POST /api/users/create-or-get-conversation": _create_or_get,
    "GET /api/users/suggestions": _listed("/api/users/suggestions"),
    "GET /api/users/feed": _listed("/api/users/feed"),
    "GET /api/users/nearby": _listed("/api/users/nearby"),
    "GET /api/users/search": _listed("/api/users/search", q=first_name),
    "GET /api/location/nearby-with-location": _listed("/api/location/nearby-with-location", lat=HOME[0], lng=HOME[1], radius_km=20),
    "GET /api/calls/history": _calls,
    "GET /api/users/dashboard-stats matches": _matches,
}
# The one list that shows the blocked user: the blocker's own (to unblock them).
BLOCKED_LIST: dict[str, Probe] = {"GET /api/users/blocked": _blocked_list}


async def seen(client: Any, viewer: dict[str, Any], other: dict[str, Any], probes: dict[str, Probe] = HTTP_PROBES) -> dict[str, bool]:
    """Route → whether `viewer` sees `other` there."""
    return {name: await probe(client, viewer, other) for name, probe in probes.items()}


async def block(client: Any, blocker: dict[str, Any], blocked: dict[str, Any]) -> None:
    """POST /api/users/block/{id}."""
    assert await _status(await client.post(f"/api/users/block/{uid(blocked)}", headers=hdr(blocker))) == 200


async def shadow_ban(client: Any, admin: dict[str, Any], user: dict[str, Any]) -> None:
    """The admin screens' two steps: the 409 with a token, then the ban."""
    resp = await confirmed_post(client, f"/api/admin/users/{uid(user)}/shadow-ban", admin["headers"], json={"reason": "spam bot"})
    assert resp.status == 200, await resp.text()


async def barrier(runtime: Runtime, listener: Listener, user: dict[str, Any]) -> None:
    """Wait until every push sent to `user` so far has arrived (a marker sent after them has)."""
    listener.received.pop("marker", None)
    await runtime.unit.notifier.emit_to_user(uid(user), "marker", {})
    await listener.wait_for("marker")
    listener.received.pop("marker", None)


async def _until_offline(runtime: Runtime, user_id: str) -> None:
    presence = presence_of(runtime.unit)
    for _ in range(250):
        if not await presence.is_online(user_id):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the socket never went away")


async def socket_probe(
    runtime: Runtime,
    url: str,
    actor: dict[str, Any],
    actor_sock: Listener,
    viewer: dict[str, Any],
    viewer_sock: Listener,
    pending_message_id: str,
    fresh: Callable[[], Listener],
) -> tuple[set[str], dict[str, Any], Listener]:
    """`actor` does everything that pushes to another user; the events that reached `viewer`, the acks, and actor's new socket.

    `pending_message_id` is a message from `viewer` to `actor` that `actor` has not read yet.
    """
    await barrier(runtime, viewer_sock, viewer)
    viewer_sock.received.clear()
    to = uid(viewer)
    acks: dict[str, Any] = {}
    call = actor_sock.sio.call
    acks["message:send"] = await call("message:send", {"receiver_id": to, "content": "are you there?"}, timeout=5)
    acks["message:typing"] = await call("message:typing", {"receiver_id": to}, timeout=5)
    acks["message:stop-typing"] = await call("message:stop-typing", {"receiver_id": to}, timeout=5)
    acks["message:delivered"] = await call("message:delivered", {"message_id": pending_message_id}, timeout=5)
    acks["message:read"] = await call("message:read", {"sender_id": to}, timeout=5)
    acks["join_chat"] = await call("join_chat", {"user_id": to}, timeout=5)
    acks["call_user"] = ringing = await call("call_user", {"user_id": to, "call_type": "audio"}, timeout=5)
    if ringing.get("success"):
        acks["call:end"] = await call("call:end", {"call_id": ringing["call_id"]}, timeout=5)
    acks["call:initiate"] = ringing = await call("call:initiate", {"targetUserId": to, "type": "video"}, timeout=5)
    if ringing.get("success"):
        await call("call:end", {"call_id": ringing["call_id"]}, timeout=5)
    # Presence: the actor goes offline, then comes back.
    await actor_sock.sio.disconnect()
    await _until_offline(runtime, uid(actor))
    again = fresh()
    await again.connect(url, actor["access_token"])
    await barrier(runtime, viewer_sock, viewer)
    return set(viewer_sock.received), acks, again
