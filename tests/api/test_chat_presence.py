"""Presence wired to chat: partners are the users who share a conversation (bootstrap's wiring).

Two instances share one Redis and one database with bootstrap's own socket followers; the
conversation comes from a real message, so the partner lookup is chat's read model.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.support import instances as instance_support
from tests.support import sockets as socket_support
from tests.support.accounts import signup
from tests.support.chat import hdr, send, uid
from tests.support.instances import Instances
from tests.support.sockets import Listener
from truebond.api.socket_presence import OFFLINE_EVENT, ONLINE_EVENT

instances = instance_support.instances
listeners = socket_support.listeners


async def test_presence_reaches_conversation_partners_only_and_shows_in_the_chat_list(
    instances: Instances, listeners: Callable[[], Listener]
) -> None:
    a, b = await instances.start(2)
    alice, bob, carol = await signup(a.client), await signup(a.client), await signup(a.client)
    status, body = await send(a.client, alice, bob, "hi bob")
    assert status == 200, body

    alice_sock, carol_sock = listeners(), listeners()
    await alice_sock.connect(a.url, alice["access_token"])
    await carol_sock.connect(a.url, carol["access_token"])
    bob_sock = listeners()
    await bob_sock.connect(b.url, bob["access_token"])
    assert await alice_sock.wait_for(ONLINE_EVENT) == {"user_id": uid(bob)}

    resp = await a.client.get("/api/messages/conversations", headers=hdr(alice))
    listed = {c["user_id"]: c["online"] for c in (await resp.json())["conversations"]}
    assert listed == {uid(bob): True}

    await bob_sock.sio.disconnect()
    assert await alice_sock.wait_for(OFFLINE_EVENT) == {"user_id": uid(bob)}
    resp = await a.client.get("/api/messages/conversations", headers=hdr(alice))
    assert [c["online"] for c in (await resp.json())["conversations"]] == [False]
    # Carol shares no conversation with Bob: she heard nothing of him.
    await a.sockets.emit_to_user(uid(carol), "marker", {})
    await carol_sock.wait_for("marker")
    assert set(carol_sock.received) == {"marker"}
