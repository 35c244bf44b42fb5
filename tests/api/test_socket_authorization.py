"""The socket half of the authorization matrix: who may connect, and every event on another's things.

Connecting needs the access token of a live session of an active account: anonymous, a suspended
account, a deleted one and a logged-out session are refused; the live callers get in. Then every
socket event (a row each; an event without a row fails) is sent by "other" at the owner's things
(the owner's conversation, message and call with the partner, or a user who blocked "other"): it
gets an error ack and the event store does not change. Where the same payload is the owner's to
send and changes nothing lasting, the owner sends it too and is let through, so the refusal is
about who asks and not about the payload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest
import pytest_asyncio
import socketio

from tests.support import authz_world
from tests.support.authz_world import DEAD, IDENTITIES, LIVE, MODULE_LOOP, World
from tests.support.sockets import Listener, base_url
from truebond.bootstrap import SOCKET_TABLES

world = authz_world.world
Payload = Callable[[World], dict[str, Any]]
SDP = {"type": "offer", "sdp": "v=0"}


@attrs.frozen
class SocketRow:
    """What "other" sends, the error code it gets back (None: a no-op answered with no ack data),
    and whether the owner sending the same payload is let through."""

    payload: Payload
    code: str | None
    owner_ok: bool = False


def in_conversation(w: World, **extra: Any) -> dict[str, Any]:
    """A payload naming the partner inside the owner's conversation with them."""
    return {"receiver_id": w.partner.user_id, "conversation_id": w.conversation_id, **extra}


def on_call(**extra: Any) -> Payload:
    """A payload naming the owner's ringing call with the partner."""
    return lambda w: {"call_id": w.call_id, **extra}


SOCKET_MATRIX: dict[str, SocketRow] = {
    "join": SocketRow(lambda w: {"user_id": w.owner.user_id}, "forbidden"),
    # Rooms are the server's: leaving one is a no-op for everybody, whatever it names.
    "leave_chat": SocketRow(lambda w: {"room_id": w.conversation_id}, None),
    "message:send": SocketRow(lambda w: in_conversation(w, content="hi"), "forbidden", owner_ok=True),
    "join_chat": SocketRow(lambda w: {"user_id": w.blocker.user_id}, "forbidden"),
    "message:typing": SocketRow(in_conversation, "forbidden", owner_ok=True),
    "message:stop-typing": SocketRow(in_conversation, "forbidden", owner_ok=True),
    "message:read": SocketRow(lambda w: {"sender_id": w.partner.user_id, "conversation_id": w.conversation_id}, "forbidden"),
    "message:delivered": SocketRow(lambda w: {"message_id": w.message_id, "sender_id": w.partner.user_id}, "not_found"),
    "call_user": SocketRow(lambda w: {"user_id": w.blocker.user_id, "call_type": "audio"}, "blocked"),
    "call:initiate": SocketRow(lambda w: {"targetUserId": w.blocker.user_id, "type": "video"}, "blocked"),
    "call:accept": SocketRow(on_call(), "call_not_found"),
    "call:reject": SocketRow(on_call(reason="busy"), "call_not_found"),
    "reject_call": SocketRow(on_call(reason="busy"), "call_not_found"),
    "call:end": SocketRow(on_call(), "call_not_found"),
    "offer": SocketRow(on_call(offer=SDP), "call_not_found", owner_ok=True),
    "answer": SocketRow(on_call(answer={**SDP, "type": "answer"}), "call_not_found", owner_ok=True),
    "webrtc:ice-candidate": SocketRow(on_call(candidate={"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host"}), "call_not_found"),
    "call:media-state": SocketRow(on_call(type="audio", enabled=False), "call_not_found", owner_ok=True),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sockets(world: World) -> AsyncIterator[dict[str, Listener]]:
    """A connected socket for the owner and for "other"."""
    made = {}
    for name in ("user", "other"):
        listener = Listener()
        await listener.connect(base_url(world.client), world.who[name].token)
        made[name] = listener
    yield made
    for listener in made.values():
        await listener.sio.disconnect()


def test_every_socket_event_has_a_row() -> None:
    events = {route.event for table in SOCKET_TABLES for route in table}
    assert sorted(events - set(SOCKET_MATRIX)) == [], "socket events without a row in SOCKET_MATRIX"
    assert sorted(set(SOCKET_MATRIX) - events) == [], "rows for socket events that do not exist"


@MODULE_LOOP
@pytest.mark.parametrize("name", IDENTITIES)
async def test_connect_by_caller(world: World, name: str) -> None:
    world.clear_limits()
    listener = Listener()
    if name in LIVE:
        await listener.connect(base_url(world.client), world.who[name].token)
        assert listener.sio.connected
        await listener.sio.disconnect()
        return
    assert name == "anonymous" or name in DEAD
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listener.connect(base_url(world.client), world.who[name].token)
    assert not listener.sio.connected


@MODULE_LOOP
@pytest.mark.parametrize("event", list(SOCKET_MATRIX))
async def test_other_users_event_is_refused_and_changes_nothing(world: World, sockets: dict[str, Listener], event: str) -> None:
    world.clear_limits()
    row = SOCKET_MATRIX[event]
    before = await world.events()
    ack = await sockets["other"].sio.call(event, row.payload(world), timeout=5)
    if row.code is None:
        assert ack is None
    else:
        assert isinstance(ack, dict) and ack.get("success") is False, ack
        assert ack["code"] == row.code, ack
    assert await world.events() == before, f"other's {event} changed the store"
    assert sockets["other"].sio.connected
    if row.owner_ok:
        mine = await sockets["user"].sio.call(event, row.payload(world), timeout=5)
        assert isinstance(mine, dict) and mine.get("success") is True, mine
