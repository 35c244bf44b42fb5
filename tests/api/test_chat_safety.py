"""Shadow-banned senders, image messages and the per-minute message limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import sockets as socket_support
from tests.support.chat import coins, hdr, history, send, set_coins, two_users, uid
from tests.support.photos import gps_jpeg, png_bytes
from tests.support.sockets import Listener, base_url
from truebond import bootstrap
from truebond.adapters.storage import LocalStorage
from truebond.projections import blocks
from truebond.projections import conversations as conversations_view

listeners = socket_support.listeners
UPLOAD = "/api/messages/upload"


@pytest.fixture
def local(runtime: bootstrap.Runtime, tmp_path: Path) -> LocalStorage:
    """Local storage in a temporary directory."""
    storage = LocalStorage(tmp_path / "media", runtime.unit.settings.backend_url)
    runtime.unit.storage = storage
    return storage


async def test_a_shadow_banned_sender_sees_success_and_the_receiver_sees_nothing(
    client: Any, runtime: bootstrap.Runtime, listeners: Callable[[], Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await two_users(client)
    banned = uid(alice)

    async def shadow_banned(db: Any, user_id: str) -> bool:
        return user_id == banned

    monkeypatch.setattr(blocks, "shadow_banned", shadow_banned)
    receiving = listeners()
    await receiving.connect(base_url(client), bob["access_token"])
    sender_socket = listeners()
    await sender_socket.connect(base_url(client), alice["access_token"])

    status, body = await send(client, alice, bob, "you will never see this")
    assert status == 200 and body["success"] is True and body["status"] == "sent"
    ack = await sender_socket.sio.call("message:send", {"receiver_id": uid(bob), "content": "nor this"}, timeout=5)
    assert ack["success"] is True
    assert await sender_socket.sio.call("message:typing", {"receiver_id": uid(bob)}, timeout=5) == {"success": True}

    # The sender: charged as usual, and sees both messages and the conversation.
    assert await coins(client, alice) == 8
    assert [m["content"] for m in (await history(client, alice, bob))["messages"]] == ["you will never see this", "nor this"]
    mine = await (await client.get("/api/messages/conversations", headers=hdr(alice))).json()
    assert mine["count"] == 1 and mine["conversations"][0]["lastMessage"] == "nor this"

    # The receiver: nothing listed, nothing unread, nothing pushed; the banned account is gone for them.
    assert (await client.get(f"/api/messages/{banned}", headers=hdr(bob))).status == 404
    theirs = await (await client.get("/api/messages/conversations", headers=hdr(bob))).json()
    assert theirs == {"success": True, "conversations": [], "count": 0}
    assert (await (await client.post(f"/api/messages/read/{uid(alice)}", headers=hdr(bob))).json()) == {"marked_read": 0}
    await asyncio.sleep(0.3)
    assert not {"message:new", "new_message", "message:typing"} & set(receiving.received)
    assert await conversations_view.partner_ids(runtime.unit.db, banned) == []

    # Decided at send time: after the ban is lifted, the old messages stay undelivered, new ones arrive.
    monkeypatch.setattr(blocks, "shadow_banned", lambda db, user_id: _false())
    _, visible = await send(client, alice, bob, "now you can")
    assert (await receiving.wait_for("message:new"))["id"] == visible["message_id"]
    assert [m["content"] for m in (await history(client, bob, alice))["messages"]] == ["now you can"]
    theirs = await (await client.get("/api/messages/conversations", headers=hdr(bob))).json()
    assert (theirs["count"], theirs["conversations"][0]["unread"]) == (1, 1)


def _files(local: LocalStorage) -> list[Path]:
    return [p for p in local.root.rglob("*") if p.is_file()]


async def _false() -> bool:
    return False


def _form(data: bytes, receiver_id: str, field: str = "image", **fields: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field(field, data, filename="pic.jpg", content_type="image/jpeg")
    body.add_field("receiver_id", receiver_id)
    for name, value in fields.items():
        body.add_field(name, value)
    return body


@pytest.mark.parametrize("field", ["image", "file"])
async def test_an_image_message_costs_a_coin_and_is_stored_clean(
    client: Any, local: LocalStorage, listeners: Callable[[], Listener], field: str
) -> None:
    alice, bob = await two_users(client)
    receiving = listeners()
    await receiving.connect(base_url(client), bob["access_token"])
    resp = await client.post(UPLOAD, data=_form(gps_jpeg(), uid(bob), field, temp_id="img-1"), headers=hdr(alice))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["success"] is True and body["message"]["message_type"] == "image"
    url = body["message"]["image_url"]
    assert local.owns(url)
    stored = await local.get(url)
    assert stored is not None and b"SpyCam" not in stored and b"home address" not in stored
    assert (await receiving.wait_for("message:new"))["image_url"] == url
    assert await coins(client, alice) == 9
    # A repeat answers the first message and stores no second copy.
    again = await client.post(UPLOAD, data=_form(gps_jpeg(), uid(bob), field, temp_id="img-1"), headers=hdr(alice))
    assert (await again.json())["message_id"] == body["message_id"]
    assert len(_files(local)) == 1
    assert await coins(client, alice) == 9
    listing = await (await client.get("/api/messages/conversations", headers=hdr(bob))).json()
    assert listing["conversations"][0]["lastMessage"] == "Photo"


async def test_image_refusals_store_nothing(client: Any, runtime: bootstrap.Runtime, local: LocalStorage) -> None:
    alice, bob = await two_users(client)
    resp = await client.post(UPLOAD, data=_form(b"not an image at all", uid(bob)), headers=hdr(alice))
    assert resp.status == 415
    resp = await client.post(UPLOAD, data=_form(png_bytes(), uid(bob), sneaky="1"), headers=hdr(alice))
    assert resp.status == 422
    resp = await client.post(UPLOAD, json={"receiver_id": uid(bob)}, headers=hdr(alice))
    assert resp.status == 415
    await set_coins(runtime, uid(alice), 0)
    resp = await client.post(UPLOAD, data=_form(png_bytes(), uid(bob)), headers=hdr(alice))
    assert resp.status == 402
    assert (await history(client, bob, alice))["messages"] == []
    assert _files(local) == []


async def test_thirty_messages_a_minute_then_429(client: Any, listeners: Callable[[], Listener], runtime: bootstrap.Runtime) -> None:
    alice, bob = await two_users(client)
    await set_coins(runtime, uid(alice), 100)
    for n in range(30):
        status, _ = await send(client, alice, bob, f"m{n}")
        assert status == 200
    status, body = await send(client, alice, bob, "one too many")
    assert (status, body["code"]) == (429, "rate_limited")
    sock = listeners()
    await sock.connect(base_url(client), alice["access_token"])
    ack = await sock.sio.call("message:send", {"receiver_id": uid(bob), "content": "socket too"}, timeout=5)
    assert (ack["success"], ack["code"]) == (False, "rate_limited")
    assert await coins(client, alice) == 70
