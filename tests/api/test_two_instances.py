"""Two server instances, one Redis, one database: every way a session ends on A drops its sockets on B.

Logout, logout-all, revoking a session from the list, a password reset and an account deletion
are each done over HTTP on instance A while the user's sockets are connected to instance B. The
sockets go, B holds no connection for them any more (no ghost), the user is not online, and the
ended session's token cannot connect again anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest
import socketio

from tests.fakes.sendgrid import FakeSendGrid
from tests.support import instances as instance_support
from tests.support import otp_support
from tests.support import sockets as socket_support
from tests.support.accounts import auth, signup
from tests.support.instances import Instance, Instances
from tests.support.sockets import Listener
from truebond.api.socket_session_watch import SessionWatch
from truebond.commands.bus import Command, Context
from truebond.commands.identity import revoke_all, revoke_session
from truebond.commands.unit import Unit
from truebond.projections.presence import presence_of

instances = instance_support.instances
listeners = socket_support.listeners
mail = otp_support.mail
settings = otp_support.settings

PASSWORD = "correct-horse-1"


async def login(instance: Instance, email: str) -> dict[str, Any]:
    """A second session of the same account, through `instance`."""
    resp = await instance.client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def connected(listeners: Callable[[], Listener], instance: Instance, token: str) -> Listener:
    """A socket of `token` connected to `instance`."""
    sock = listeners()
    await sock.connect(instance.url, token)
    return sock


async def assert_gone(sock: Listener, on: Instance) -> None:
    """The socket was disconnected and its server keeps nothing of it."""
    await asyncio.wait_for(sock.gone.wait(), 5)
    sid = sock.sio.get_sid("/")
    assert sid is None or sid not in on.local_sids()


async def assert_cannot_connect(listeners: Callable[[], Listener], instance: Instance, token: str) -> None:
    """The ended session's token is refused by the socket server."""
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listeners().connect(instance.url, token)


async def test_logout_on_a_disconnects_the_socket_on_b(instances: Instances, listeners: Callable[[], Listener]) -> None:
    a, b = await instances.start(2)
    user = await signup(a.client)
    other = await login(a, user["user"]["email"])
    sock = await connected(listeners, b, user["access_token"])
    kept = await connected(listeners, b, other["access_token"])
    assert await presence_of(b.runtime.unit).is_online(user["user"]["id"])

    assert (await a.client.post("/api/auth/logout", headers=auth(user["access_token"]))).status == 200

    await assert_gone(sock, b)
    await assert_cannot_connect(listeners, b, user["access_token"])
    # The other session's socket stays, and with it the user is still online.
    assert kept.sio.connected
    assert await presence_of(a.runtime.unit).is_online(user["user"]["id"])


async def test_logout_all_on_a_disconnects_every_socket_on_b(instances: Instances, listeners: Callable[[], Listener]) -> None:
    a, b = await instances.start(2)
    user = await signup(a.client)
    other = await login(b, user["user"]["email"])
    socks = [
        await connected(listeners, b, user["access_token"]),
        await connected(listeners, b, other["access_token"]),
        await connected(listeners, a, other["access_token"]),
    ]

    assert (await a.client.post("/api/auth/logout-all", headers=auth(user["access_token"]))).status == 200

    for sock in socks:
        await assert_gone(sock, b)
    for token in (user["access_token"], other["access_token"]):
        await assert_cannot_connect(listeners, b, token)
    assert not await presence_of(a.runtime.unit).is_online(user["user"]["id"])
    assert a.local_sids() == set() and b.local_sids() == set()


async def test_revoking_a_session_on_a_disconnects_its_socket_on_b(instances: Instances, listeners: Callable[[], Listener]) -> None:
    a, b = await instances.start(2)
    user = await signup(a.client)
    other = await login(a, user["user"]["email"])
    revoked = await connected(listeners, b, other["access_token"])
    kept = await connected(listeners, b, user["access_token"])
    sessions = await (await a.client.get("/api/auth/sessions", headers=auth(user["access_token"]))).json()
    target = next(s for s in sessions["sessions"] if not s.get("current"))

    resp = await a.client.delete(f"/api/auth/sessions/{target['id']}", headers=auth(user["access_token"]))
    assert resp.status == 200, await resp.json()

    await assert_gone(revoked, b)
    await assert_cannot_connect(listeners, b, other["access_token"])
    assert kept.sio.connected


async def test_password_reset_on_a_disconnects_the_sockets_on_b(
    instances: Instances, listeners: Callable[[], Listener], mail: FakeSendGrid
) -> None:
    a, b = await instances.start(2)
    user = await signup(a.client)
    email = user["user"]["email"]
    sock = await connected(listeners, b, user["access_token"])

    assert (await a.client.post("/api/auth/forgot-password", json={"email": email})).status == 200
    token = parse_qs(urlsplit(mail.last_link(email)).query)["token"][0]
    resp = await a.client.post("/api/auth/reset-password", json={"token": token, "new_password": "Brand-new-Pass9"})
    assert resp.status == 200, await resp.json()

    await assert_gone(sock, b)
    await assert_cannot_connect(listeners, b, user["access_token"])
    assert not await presence_of(b.runtime.unit).is_online(user["user"]["id"])


async def test_deleting_the_account_on_a_disconnects_the_sockets_on_b(instances: Instances, listeners: Callable[[], Listener]) -> None:
    a, b = await instances.start(2)
    user = await signup(a.client)
    other = await login(b, user["user"]["email"])
    socks = [await connected(listeners, b, user["access_token"]), await connected(listeners, b, other["access_token"])]

    assert (await a.client.delete("/api/users/account", headers=auth(user["access_token"]))).status == 200

    for sock in socks:
        await assert_gone(sock, b)
    await assert_cannot_connect(listeners, b, other["access_token"])
    assert not await presence_of(a.runtime.unit).is_online(user["user"]["id"])


@pytest.mark.parametrize("where", ["a", "b"])
async def test_an_event_emitted_on_one_instance_reaches_a_socket_on_the_other(
    instances: Instances, listeners: Callable[[], Listener], where: str
) -> None:
    a, b = await instances.start(2)
    user = await signup(a.client)
    sock = await connected(listeners, b if where == "a" else a, user["access_token"])
    emitter = a if where == "a" else b
    emit: Callable[[], Awaitable[None]] = lambda: emitter.sockets.emit_to_user(user["user"]["id"], "new_notification", {"n": 1})  # noqa: E731
    await emit()
    assert await sock.wait_for("new_notification") == {"n": 1}


@attrs.frozen
class Suspend(Command[int]):
    """What the admin suspension will do (it comes with the safety work): end every session."""

    user_id: str


async def suspend(cmd: Suspend, ctx: Context, deps: Unit) -> int:
    """Revoke every session with the reason `suspended`, as any command may."""
    return await revoke_all(deps, ctx.meta(), cmd.user_id, "suspended")


async def test_any_command_that_revokes_sessions_drops_the_sockets_on_every_instance(
    instances: Instances, listeners: Callable[[], Listener]
) -> None:
    """Suspension will revoke sessions the same way: the SessionRevoked reaction covers it."""
    a, b = await instances.start(2)
    user = await signup(a.client)
    sock = await connected(listeners, b, user["access_token"])
    a.runtime.bus.handlers[Suspend] = suspend

    assert await a.runtime.bus.handle(Suspend(user["user"]["id"]), Context.system("admin-test")) == 1

    await assert_gone(sock, b)
    await assert_cannot_connect(listeners, b, user["access_token"])


async def test_a_socket_whose_revocation_message_was_lost_is_dropped_by_its_own_server(
    instances: Instances, listeners: Callable[[], Listener]
) -> None:
    """No ghost even when the drop never reached B (its channel was down): B re-checks its sockets' sessions."""
    a, b = await instances.start(2)
    user = await signup(a.client)
    sock = await connected(listeners, b, user["access_token"])
    kept_user = await signup(a.client)
    kept = await connected(listeners, b, kept_user["access_token"])
    session_id = a.runtime.unit.tokens.verify(user["access_token"], a.runtime.unit.clock.time()).session_id
    # Revoked outside the bus: the event is stored, but no reaction runs and nothing is published.
    assert await revoke_session(a.runtime.unit, Context.system("test").meta(), user["user"]["id"], session_id, "logout")
    assert not sock.gone.is_set()

    assert await b.follower(SessionWatch).check() == {session_id}

    await assert_gone(sock, b)
    assert kept.sio.connected
    assert await b.follower(SessionWatch).check() == set()
