"""Socket.IO over a real websocket: authenticated connects, private rooms, force_logout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import socketio

from tests.fakes.sendgrid import FakeSendGrid
from tests.support import otp_support
from tests.support import sockets as socket_support
from tests.support.accounts import auth, signup
from tests.support.sockets import Listener, base_url
from truebond import bootstrap
from truebond.clock import OffsetClock
from truebond.config import Settings

mail = otp_support.mail
listeners = socket_support.listeners
settings = otp_support.settings


async def test_connect_needs_a_valid_token(client: Any, listeners: Callable[[], Listener]) -> None:
    user = await signup(client)
    for token in (None, "", "not-a-jwt", user["access_token"] + "x"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await listeners().connect(base_url(client), token)
    good = listeners()
    await good.connect(base_url(client), user["access_token"])
    assert good.sio.connected


async def test_events_reach_only_the_users_own_room(client: Any, runtime: bootstrap.Runtime, listeners: Callable[[], Listener]) -> None:
    alice, bob = await signup(client), await signup(client)
    a, b = listeners(), listeners()
    await a.connect(base_url(client), alice["access_token"])
    await b.connect(base_url(client), bob["access_token"])
    # A client cannot put itself in someone else's room.
    await b.sio.emit("join", f"user:{alice['user']['id']}")
    await b.sio.emit("join_room", {"room": f"user:{alice['user']['id']}"})
    await asyncio.sleep(0.1)

    await runtime.unit.notifier.emit_to_user(alice["user"]["id"], "new_notification", {"title": "hi"})
    assert await a.wait_for("new_notification") == {"title": "hi"}
    await runtime.unit.notifier.emit_to_user(bob["user"]["id"], "balance_updated", {"coins": 10})
    assert await b.wait_for("balance_updated") == {"coins": 10}
    await asyncio.sleep(0.2)
    assert "new_notification" not in b.received
    assert "balance_updated" not in a.received


async def test_logout_drops_that_sessions_sockets(client: Any, listeners: Callable[[], Listener]) -> None:
    user = await signup(client)
    other = await client.post("/api/auth/login", json={"email": user["user"]["email"], "password": "correct-horse-1"})
    second = await other.json()
    first_socket, second_socket = listeners(), listeners()
    await first_socket.connect(base_url(client), user["access_token"])
    await second_socket.connect(base_url(client), second["access_token"])

    assert (await client.post("/api/auth/logout", headers=auth(user["access_token"]))).status == 200
    await asyncio.wait_for(first_socket.gone.wait(), 5)
    await asyncio.sleep(0.2)
    assert second_socket.sio.connected
    # And the revoked token cannot come back.
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listeners().connect(base_url(client), user["access_token"])


async def test_otp_login_on_a_new_device_logs_the_previous_device_out(
    client: Any, mail: FakeSendGrid, listeners: Callable[[], Listener], clock: OffsetClock
) -> None:
    user = await signup(client, device_id="phone-A")
    email = user["user"]["email"]
    old_device = listeners()
    await old_device.connect(base_url(client), user["access_token"])

    await client.post("/api/auth/otp/send-for-login", json={"email": email})
    resp = await client.post("/api/auth/login-with-otp", json={"email": email, "otp_code": mail.last_code(email), "device_id": "phone-B"})
    new_login = await resp.json()
    assert resp.status == 200, new_login

    payload = await old_device.wait_for("force_logout")
    assert payload["reason"] == "new_device_login"
    await asyncio.wait_for(old_device.gone.wait(), 5)
    assert (await client.get("/api/auth/me", headers=auth(user["access_token"]))).status == 401
    assert (await client.get("/api/auth/me", headers=auth(new_login["access_token"]))).status == 200

    # Logging in again on the same device logs nobody out.
    new_device = listeners()
    await new_device.connect(base_url(client), new_login["access_token"])
    clock.advance(61)
    await client.post("/api/auth/otp/send-for-login", json={"email": email})
    resp = await client.post("/api/auth/login-with-otp", json={"email": email, "otp_code": mail.last_code(email), "device_id": "phone-B"})
    assert resp.status == 200
    await asyncio.sleep(0.2)
    assert new_device.sio.connected
    assert "force_logout" not in new_device.received
    sessions = await (await client.get("/api/auth/sessions", headers=auth(new_login["access_token"]))).json()
    assert sorted(s["device_id"] for s in sessions["sessions"]) == ["phone-B", "phone-B"]


async def test_two_servers_share_rooms_and_revocations_through_redis(
    client: Any,
    runtime: bootstrap.Runtime,
    settings: Settings,
    db: Any,
    clock: OffsetClock,
    aiohttp_client: Any,
    listeners: Callable[[], Listener],
) -> None:
    """A socket on server 1 gets events emitted on server 2, and a logout there drops it."""
    other = await bootstrap.build(settings, db=db, clock=clock, fast_hashing=True)
    try:
        client2 = await aiohttp_client(bootstrap.web_app(other))
        user = await signup(client)
        sock = listeners()
        await sock.connect(base_url(client), user["access_token"])
        # The first server subscribes to the Redis channel when its first socket connects.
        for _ in range(50):
            await other.unit.notifier.emit_to_user(user["user"]["id"], "new_notification", {"from": "server 2"})
            if "new_notification" in sock.received:
                break
            await asyncio.sleep(0.05)
        assert sock.received["new_notification"][0] == {"from": "server 2"}

        assert (await client2.post("/api/auth/logout", headers=auth(user["access_token"]))).status == 200
        await asyncio.wait_for(sock.gone.wait(), 5)
    finally:
        await other.close()
