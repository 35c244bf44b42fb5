"""The authenticated path's one Redis round trip, and the cached standing it reads, across instances.

Two server instances share one Redis and one database. A user's standing (status, role) is
cached in Redis by whichever instance saw the user first; every change of it made on instance A
(suspension, deletion, demotion) and every revoked session must answer on instance B's very
next request, without B having been told anything but through Redis.
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection

from tests.support import instances as instance_support
from tests.support.accounts import auth, signup
from tests.support.admins import confirmed_post, make_admin
from tests.support.instances import Instance, Instances
from truebond.adapters.auth_gate import STANDING_PREFIX
from truebond.api import auth as auth_module
from truebond.commands.admin import REACTIONS as ADMIN_REACTIONS
from truebond.commands.bus import Context
from truebond.commands.identity import SetRole
from truebond.events.admin import UserSuspended

instances = instance_support.instances
PASSWORD = "correct-horse-1"


async def me(instance: Instance, token: str) -> int:
    """The status of GET /api/auth/me with `token` on `instance`."""
    resp = await instance.client.get("/api/auth/me", headers=auth(token))
    await resp.read()
    return resp.status


async def test_suspension_on_a_stops_the_next_request_on_b_even_with_its_sessions_left(
    instances: Instances, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await instances.start(2)
    admin = await make_admin(a.client, a.runtime)
    user = await signup(a.client)
    assert await me(b, user["access_token"]) == 200  # B has cached the user's standing
    # Only the status changes: the reaction that ends the sessions is taken out on A, so what
    # stops B is the standing the suspension's own reaction dropped.
    ending = ADMIN_REACTIONS[UserSuspended][0]
    monkeypatch.setitem(a.runtime.bus.reactions, UserSuspended, [r for r in a.runtime.bus.reactions[UserSuspended] if r != ending])

    resp = await confirmed_post(a.client, f"/api/admin/users/{user['user']['id']}/suspend", admin["headers"])
    assert resp.status == 200, await resp.text()

    resp = await b.client.get("/api/auth/me", headers=auth(user["access_token"]))
    assert resp.status == 401
    assert (await resp.json())["code"] == "unauthorized"

    reactivated = await a.client.post(f"/api/admin/users/{user['user']['id']}/reactivate", headers=admin["headers"])
    assert reactivated.status == 200, await reactivated.text()
    assert await me(b, user["access_token"]) == 200  # the session was never ended, the status is back


async def test_demotion_on_a_closes_admin_routes_on_b_at_the_next_request(instances: Instances) -> None:
    a, b = await instances.start(2)
    admin = await make_admin(a.client, a.runtime)
    assert (await b.client.get("/api/admin/me", headers=admin["headers"])).status == 200

    await a.runtime.bus.handle(SetRole(admin["email"], "user", "left the team"), Context.system("cli"))

    resp = await b.client.get("/api/admin/me", headers=admin["headers"])
    assert resp.status == 403
    assert (await resp.json())["code"] == "forbidden"


async def test_deletion_on_a_ends_every_request_on_b(instances: Instances) -> None:
    a, b = await instances.start(2)
    user = await signup(a.client)
    assert await me(b, user["access_token"]) == 200

    resp = await a.client.delete("/api/users/account", headers=auth(user["access_token"]))
    assert resp.status == 200, await resp.text()

    assert await me(b, user["access_token"]) == 401


async def test_a_session_revoked_on_a_is_refused_on_b_and_the_other_session_goes_on(instances: Instances) -> None:
    a, b = await instances.start(2)
    user = await signup(a.client)
    second = await (await a.client.post("/api/auth/login", json={"email": user["user"]["email"], "password": PASSWORD})).json()
    assert await me(b, user["access_token"]) == 200 and await me(b, second["access_token"]) == 200
    listed = await (await a.client.get("/api/auth/sessions", headers=auth(second["access_token"]))).json()
    first_id = next(s["id"] for s in listed["sessions"] if not s["current"])

    assert (await a.client.delete(f"/api/auth/sessions/{first_id}", headers=auth(second["access_token"]))).status == 200

    assert await me(b, user["access_token"]) == 401
    assert await me(b, second["access_token"]) == 200


async def test_a_change_between_the_read_and_the_fill_is_not_left_in_the_cache(
    instances: Instances, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache miss reads the user, then fills; a suspension in between must not be cached as active."""
    a, b = await instances.start(2)
    admin = await make_admin(a.client, a.runtime)
    user = await signup(a.client)
    uid = user["user"]["id"]
    resp = await confirmed_post(a.client, f"/api/admin/users/{uid}/suspend", admin["headers"])
    assert resp.status == 200
    login = await a.client.post("/api/auth/login", json={"email": user["user"]["email"], "password": PASSWORD})
    assert login.status == 401
    # B's first read of the user sees it as it was before the suspension (a slow read).
    real = auth_module.user_by_id
    reads = 0

    async def stale_once(db: Any, user_id: str) -> dict[str, Any] | None:
        nonlocal reads
        reads += 1
        doc = await real(db, user_id)
        return {**doc, "status": "active"} if reads == 1 and doc is not None else doc

    monkeypatch.setattr(auth_module, "user_by_id", stale_once)
    # The session is still allowed (its reaction was not needed here): put it back to reach the standing.
    session_id = b.runtime.unit.tokens.verify(user["access_token"], b.runtime.unit.clock.time()).session_id
    await b.runtime.unit.sessions.allow(session_id, uid, 60)

    assert await me(b, user["access_token"]) == 401
    assert await b.runtime.unit.redis.hget(STANDING_PREFIX + uid, "status") in (None, "suspended")


async def test_a_warm_authenticated_request_is_one_redis_round_trip_and_no_user_read(
    instances: Instances, monkeypatch: pytest.MonkeyPatch
) -> None:
    (a,) = await instances.start(1)
    user = await signup(a.client)
    session_id = a.runtime.unit.tokens.verify(user["access_token"], a.runtime.unit.clock.time()).session_id
    assert await me(a, user["access_token"]) == 200  # the standing is cached now

    writes: list[bytes] = []
    original_send = AbstractConnection.send_packed_command

    async def counting_send(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        chunks = [command] if isinstance(command, (bytes, str, memoryview)) else list(command)
        packed = b"".join(bytes(c) if not isinstance(c, str) else c.encode() for c in chunks)
        if session_id.encode() in packed:
            writes.append(packed)
        await original_send(self, command, check_health)

    user_reads = 0
    real = auth_module.user_by_id

    async def counting_read(db: Any, user_id: str) -> dict[str, Any] | None:
        nonlocal user_reads
        user_reads += 1
        return await real(db, user_id)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting_send)
    monkeypatch.setattr(auth_module, "user_by_id", counting_read)
    assert await me(a, user["access_token"]) == 200

    # One write carrying this session (the script: allow-list, standing, touch, limits), no user read.
    assert len(writes) == 1 and b"EVALSHA" in writes[0].upper(), writes
    assert user_reads == 0
