"""Suspension: every session and socket ends at once; no login, refresh, OTP login or connect after it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import socketio

from tests.fakes.sendgrid import FakeSendGrid
from tests.support import otp_support
from tests.support import sockets as socket_support
from tests.support.accounts import auth, signup
from tests.support.admins import PASSWORD, confirmed_post, make_admin
from tests.support.sockets import Listener, base_url
from truebond import bootstrap
from truebond.commands.identity.sessions import MAX_FAILURES_PER_ACCOUNT

mail = otp_support.mail
settings = otp_support.settings
listeners = socket_support.listeners


async def test_suspension_drops_sockets_and_refuses_every_way_back_in(
    client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid, listeners: Callable[[], Listener]
) -> None:
    admin = await make_admin(client, runtime)
    user = await signup(client)
    uid, email = user["user"]["id"], user["user"]["email"]
    second = await (await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})).json()
    sockets = [listeners(), listeners()]
    await sockets[0].connect(base_url(client), user["access_token"])
    await sockets[1].connect(base_url(client), second["access_token"])

    resp = await confirmed_post(client, f"/api/admin/users/{uid}/suspend", admin["headers"])
    assert resp.status == 200, await resp.text()

    # Both sessions' sockets are gone by the time the admin has the answer's effect; they were told why.
    for s in sockets:
        await s.wait_for("force_logout")
        await s.gone.wait()
        assert not s.sio.connected
    assert sockets[0].received["force_logout"][0]["reason"] == "suspended"
    # Every token stops; no new way in.
    assert (await client.get("/api/auth/me", headers=auth(user["access_token"]))).status == 401
    assert (await client.get("/api/auth/me", headers=auth(second["access_token"]))).status == 401
    assert (await client.post("/api/auth/refresh", json={"refresh_token": user["refresh_token"]})).status == 401
    assert (await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})).status == 401
    await client.post("/api/auth/otp/send-for-login", json={"email": email})
    assert mail.to(email) == []  # a suspended account gets no login code
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listeners().connect(base_url(client), user["access_token"])
    sessions = await runtime.unit.db["sessions"].find({"user_id": uid}).to_list(None)
    assert sessions and all(s.get("revoked_at") is not None for s in sessions)


async def test_otp_login_works_despite_a_password_lock_and_lifts_it(client: Any, runtime: bootstrap.Runtime, mail: FakeSendGrid) -> None:
    user = await signup(client)
    uid, email = user["user"]["id"], user["user"]["email"]
    # What 100 failures from many addresses leave behind: the account's password login is locked.
    await runtime.unit.redis.set(f"tb:loginfail:{uid}", MAX_FAILURES_PER_ACCOUNT)
    await runtime.unit.redis.set(f"tb:loginlock:{uid}", "1", ex=3600)
    assert (await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})).status == 401

    assert (await client.post("/api/auth/otp/send-for-login", json={"email": email})).status == 200
    resp = await client.post("/api/auth/login-with-otp", json={"email": email, "otp_code": mail.last_code(email)})
    assert resp.status == 200, await resp.text()
    # The owner proved the inbox: the password works again at once.
    assert (await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})).status == 200
    assert not await runtime.unit.redis.exists(f"tb:loginfail:{uid}")
