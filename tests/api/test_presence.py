"""Presence: a lease per connection in Redis; online while any lease lives; pushed only to partners.

Two instances share one Redis and one database; the partner lookup is a fake (chat's read model
is wired at merge). Lease expiry is driven by the controllable clock, never by sleeping: the
leases are scored by the clock's time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import ClientSession

from tests.support import instances as instance_support
from tests.support import sockets as socket_support
from tests.support.accounts import auth, signup, signup_body
from tests.support.instances import Instance, Instances, ServerProcess
from tests.support.sockets import Listener
from truebond.adapters.presence import LEASE_SECONDS, Presence
from truebond.adapters.redis_client import connect
from truebond.api.socket_presence import OFFLINE_EVENT, ONLINE_EVENT, PresenceFollower
from truebond.api.sockets import SocketLifecycle
from truebond.clock import Clock, OffsetClock
from truebond.commands.bus import Context
from truebond.commands.profile import UpdateSettings
from truebond.projections import blocks
from truebond.projections.presence import visible_online_among

instances = instance_support.instances
listeners = socket_support.listeners
server_process = instance_support.server_process


class Partners:
    """A fake conversation read model: who shares a conversation with whom."""

    def __init__(self) -> None:
        self.pairs: set[frozenset[str]] = set()

    def link(self, a: str, b: str) -> None:
        """`a` and `b` now share a conversation."""
        self.pairs.add(frozenset((a, b)))

    async def __call__(self, db: Any, user_id: str) -> list[str]:
        return sorted(next(iter(pair - {user_id})) for pair in self.pairs if user_id in pair)


class Followers:
    """The lifecycle factory the instances are started with; keeps each instance's follower."""

    def __init__(self, partners: Partners) -> None:
        self.partners = partners
        self.made: list[PresenceFollower] = []

    def __call__(self, redis: Any, clock: Clock) -> list[SocketLifecycle]:
        follower = PresenceFollower(Presence(redis, clock), partners=self.partners)
        self.made.append(follower)
        return [follower]


@pytest.fixture
def partners() -> Partners:
    """The fake partner lookup."""
    return Partners()


async def connected(listeners: Callable[[], Listener], instance: Instance, token: str) -> Listener:
    """A socket of `token` connected to `instance`."""
    sock = listeners()
    await sock.connect(instance.url, token)
    return sock


async def barrier(instance: Instance, *socks: tuple[Listener, str]) -> None:
    """Send a marker through `instance` to each (socket, user id) and wait for it to arrive.

    Pushes from one instance travel in order through the one Redis channel, so once the marker
    is in, anything that instance pushed before it is in too.
    """
    for sock, user_id in socks:
        await instance.sockets.emit_to_user(user_id, "marker", {})
        await sock.wait_for("marker")
        sock.received.pop("marker")


async def profile(instance: Instance, viewer: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """GET /api/users/profile/{id} as `viewer` sees it."""
    resp = await instance.client.get(f"/api/users/profile/{target['user']['id']}", headers=auth(viewer["access_token"]))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def hide_presence(instance: Instance, user: dict[str, Any]) -> None:
    """Turn the user's `privacy.show_online` off (the client's key)."""
    cmd = UpdateSettings(user["user"]["id"], {"privacy": {"show_online": False}})
    await instance.runtime.bus.handle(cmd, Context(actor=f"user:{user['user']['id']}"))


async def test_online_while_any_connection_lives(instances: Instances, listeners: Callable[[], Listener]) -> None:
    a, b = await instances.start(2)
    alice, bob = await signup(a.client), await signup(a.client)
    assert (await profile(a, bob, alice))["is_online"] is False

    first = await connected(listeners, a, alice["access_token"])
    second = await connected(listeners, b, alice["access_token"])
    assert (await profile(b, bob, alice))["is_online"] is True
    me = await (await a.client.get("/api/auth/me", headers=auth(alice["access_token"]))).json()
    assert me["is_online"] is True

    await first.sio.disconnect()
    assert (await profile(a, bob, alice))["is_online"] is True
    await second.sio.disconnect()
    assert (await profile(a, bob, alice))["is_online"] is False
    assert await visible_online_among(a.runtime.unit, bob["user"]["id"], [alice["user"]["id"], bob["user"]["id"]]) == set()


async def test_presence_goes_only_to_partners_across_instances(
    instances: Instances, listeners: Callable[[], Listener], partners: Partners
) -> None:
    a, b = await instances.start(2, lifecycle=Followers(partners))
    alice, bob, carol = await signup(a.client), await signup(a.client), await signup(a.client)
    partners.link(alice["user"]["id"], bob["user"]["id"])
    bob_sock = await connected(listeners, b, bob["access_token"])
    carol_sock = await connected(listeners, b, carol["access_token"])

    alice_sock = await connected(listeners, a, alice["access_token"])
    assert await bob_sock.wait_for(ONLINE_EVENT) == {"user_id": alice["user"]["id"]}
    # A second connection of an online user announces nothing more.
    await connected(listeners, b, alice["access_token"])
    await barrier(a, (bob_sock, bob["user"]["id"]), (carol_sock, carol["user"]["id"]))
    await barrier(b, (bob_sock, bob["user"]["id"]), (carol_sock, carol["user"]["id"]))
    assert bob_sock.received[ONLINE_EVENT] == [{"user_id": alice["user"]["id"]}]
    assert carol_sock.received == {}
    # Bob was online before Alice came: his coming was announced then, not now.
    assert ONLINE_EVENT not in alice_sock.received

    await alice_sock.sio.disconnect()
    await barrier(a, (bob_sock, bob["user"]["id"]))
    assert OFFLINE_EVENT not in bob_sock.received  # her socket on B still lives


async def test_the_last_disconnect_announces_offline_to_partners(
    instances: Instances, listeners: Callable[[], Listener], partners: Partners
) -> None:
    a, b = await instances.start(2, lifecycle=Followers(partners))
    alice, bob, carol = await signup(a.client), await signup(a.client), await signup(a.client)
    partners.link(alice["user"]["id"], bob["user"]["id"])
    bob_sock = await connected(listeners, b, bob["access_token"])
    carol_sock = await connected(listeners, b, carol["access_token"])
    alice_sock = await connected(listeners, a, alice["access_token"])
    await bob_sock.wait_for(ONLINE_EVENT)

    await alice_sock.sio.disconnect()
    assert await bob_sock.wait_for(OFFLINE_EVENT) == {"user_id": alice["user"]["id"]}
    await barrier(a, (carol_sock, carol["user"]["id"]))
    assert carol_sock.received == {}


async def test_no_presence_for_a_user_who_hides_it(instances: Instances, listeners: Callable[[], Listener], partners: Partners) -> None:
    a, b = await instances.start(2, lifecycle=Followers(partners))
    alice, bob = await signup(a.client), await signup(a.client)
    partners.link(alice["user"]["id"], bob["user"]["id"])
    await hide_presence(a, alice)
    bob_sock = await connected(listeners, b, bob["access_token"])

    alice_sock = await connected(listeners, a, alice["access_token"])
    await barrier(a, (bob_sock, bob["user"]["id"]))
    assert (await profile(b, bob, alice))["is_online"] is False
    assert await visible_online_among(b.runtime.unit, bob["user"]["id"], [alice["user"]["id"]]) == set()
    # She still sees herself online, and Bob (who shows it) is online to her.
    me = await (await a.client.get("/api/auth/me", headers=auth(alice["access_token"]))).json()
    assert me["is_online"] is True
    assert (await profile(a, alice, bob))["is_online"] is True

    await alice_sock.sio.disconnect()
    await barrier(a, (bob_sock, bob["user"]["id"]))
    assert bob_sock.received == {}


async def test_no_presence_to_a_partner_blocked_either_way(
    instances: Instances, listeners: Callable[[], Listener], partners: Partners, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await instances.start(2, lifecycle=Followers(partners))
    alice, bob, dan = await signup(a.client), await signup(a.client), await signup(a.client)
    partners.link(alice["user"]["id"], bob["user"]["id"])
    partners.link(alice["user"]["id"], dan["user"]["id"])
    blocked = frozenset((alice["user"]["id"], dan["user"]["id"]))

    async def blocked_either_way(db: Any, x: str, y: str) -> bool:
        return frozenset((x, y)) == blocked

    monkeypatch.setattr(blocks, "blocked_either_way", blocked_either_way)
    bob_sock = await connected(listeners, b, bob["access_token"])
    dan_sock = await connected(listeners, b, dan["access_token"])

    await connected(listeners, a, alice["access_token"])
    assert await bob_sock.wait_for(ONLINE_EVENT) == {"user_id": alice["user"]["id"]}
    await barrier(a, (dan_sock, dan["user"]["id"]))
    assert ONLINE_EVENT not in dan_sock.received


async def test_leases_are_renewed_while_the_socket_lives_and_expire_without_renewal(
    instances: Instances, listeners: Callable[[], Listener], partners: Partners, clock: OffsetClock
) -> None:
    followers = Followers(partners)
    a, b = await instances.start(2, lifecycle=followers)
    alice, bob = await signup(a.client), await signup(a.client)
    partners.link(alice["user"]["id"], bob["user"]["id"])
    bob_sock = await connected(listeners, b, bob["access_token"])
    await connected(listeners, a, alice["access_token"])
    await bob_sock.wait_for(ONLINE_EVENT)
    follower_a, follower_b = followers.made

    # Renewed inside the lease (as each web process does every 20 s), both stay online.
    for _ in range(5):
        clock.advance(LEASE_SECONDS * 0.75)
        await follower_a.renew()
        await follower_b.renew()
        assert await follower_a.sweep() == []
    assert (await profile(b, bob, alice))["is_online"] is True

    # Instance A stops renewing (as a hung or killed process would): Alice's lease runs out,
    # she is offline to everyone, and a sweep on any instance announces it once.
    clock.advance(LEASE_SECONDS + 1)
    await follower_b.renew()
    assert (await profile(b, bob, alice))["is_online"] is False
    assert (await profile(a, alice, bob))["is_online"] is True
    assert await follower_b.sweep() == [alice["user"]["id"]]
    assert await bob_sock.wait_for(OFFLINE_EVENT) == {"user_id": alice["user"]["id"]}
    assert await follower_a.sweep() == []

    # Her socket still lives: the next renewal brings her lease back, and her partners hear it.
    bob_sock.received.clear()
    await follower_a.renew()
    assert await bob_sock.wait_for(ONLINE_EVENT) == {"user_id": alice["user"]["id"]}
    assert (await profile(b, bob, alice))["is_online"] is True


async def test_a_server_killed_with_sigkill_leaves_nobody_online_once_its_leases_expire(
    redis_url: str, server_process: Callable[[], ServerProcess], listeners: Callable[[], Listener], clock: OffsetClock
) -> None:
    server = server_process()
    await server.ready()
    async with ClientSession() as http:
        resp = await http.post(server.url + "/api/auth/signup", json=signup_body())
        user = await resp.json()
        assert resp.status == 201, user
    sock = listeners()
    await sock.connect(server.url, user["access_token"])
    redis = connect(redis_url)
    presence = Presence(redis, clock)
    user_id = user["user"]["id"]
    try:
        assert await presence.is_online(user_id)

        server.kill()
        # The dead server said nothing: its lease is still there...
        assert await presence.is_online(user_id)
        # ...until it runs out. Nobody is online, and a sweep reports (and clears) the ghost once.
        clock.advance(LEASE_SECONDS + 1)
        assert not await presence.is_online(user_id)
        assert await presence.online_among([user_id]) == set()
        assert await presence.expire() == [user_id]
        assert await presence.expire() == []
        assert not await presence.is_online(user_id)
    finally:
        await redis.aclose()
