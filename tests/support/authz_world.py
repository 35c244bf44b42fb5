"""The identities of the authorization matrix, made once per test module over the real parts.

`World` holds the eight callers the matrix asks about and the resources "other user" tries to
act on: the owner's (`user`) spare sessions, a conversation and a message with a partner, a
ringing call, a photo, a payment and a report. Everything is made through HTTP (and the bus for
the call), the way a client or the CLI would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import pytest_asyncio
import redis
from aiohttp.test_utils import TestClient, TestServer
from mongomock_motor import AsyncMongoMockClient

from tests.fakes.stripe_api import FAKE_SECRET_KEY, FakeStripe
from tests.support.accounts import auth, signup
from tests.support.admins import confirmed_post, make_admin
from tests.support.photos import form, png_bytes
from tests.support.secrets import TEST_JWT_SECRET, WEBHOOK_SECRET
from truebond import bootstrap
from truebond.clock import OffsetClock
from truebond.commands.bus import Context
from truebond.commands.calls import InitiateCall
from truebond.config import load_settings

PASSWORD = "correct-horse-1"
# Who the matrix asks, in the order it asks them: the owner last, so that what the others try
# on the owner's resources meets them intact.
IDENTITIES = ("anonymous", "suspended", "deleted", "revoked", "other", "admin", "super_admin", "user")
DEAD = ("suspended", "deleted", "revoked")
LIVE = ("user", "other", "admin", "super_admin")
# The world lives as long as its module: its tests run on the module's event loop.
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")


@attrs.define
class Who:
    """One caller: its token (None for anonymous), account id and email."""

    name: str
    token: str | None
    user_id: str = ""
    email: str = ""
    refresh_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        """Its Authorization header, if it has a token."""
        return auth(self.token) if self.token else {}


@attrs.define
class World:
    """The running app, its runtime, the callers and the owner's resources."""

    client: TestClient[Any, Any]
    runtime: bootstrap.Runtime
    redis_url: str
    stripe: FakeStripe
    who: dict[str, Who] = attrs.field(factory=dict)
    partner: Who = attrs.field(default=None)
    target: Who = attrs.field(default=None)
    blocker: Who = attrs.field(default=None)
    conversation_id: str = ""
    message_id: str = ""
    call_id: str = ""
    photo_url: str = ""
    intent_id: str = ""
    report_id: str = ""

    @property
    def owner(self) -> Who:
        """The first user, whose resources the others try."""
        return self.who["user"]

    def session_of(self, token: str) -> str:
        """The session id an access token belongs to."""
        return self.runtime.unit.tokens.verify(token, self.runtime.unit.clock.time()).session_id

    async def login(self, who: Who) -> dict[str, Any]:
        """A new password login of an account (a new session)."""
        resp = await self.client.post("/api/auth/login", json={"email": who.email, "password": PASSWORD})
        body: dict[str, Any] = await resp.json()
        assert resp.status == 200, body
        return body

    async def fresh(self, name: str) -> Who:
        """A new caller of kind `name` (user-like or admin), for a row that uses its caller up."""
        if name in ("admin", "super_admin"):
            made = await make_admin(self.client, self.runtime, name)
            return Who(name, made["access_token"], made["user_id"], made["email"])
        return await account(self.client, name)

    async def report(self) -> str:
        """A new report by the owner on the target account; its id."""
        resp = await self.client.post(
            f"/api/users/report/{self.target.user_id}",
            json={"reason": "spam links in every message", "report_type": "profile"},
            headers=self.owner.headers,
        )
        body = await resp.json()
        assert resp.status == 201, body
        return str(body["report_id"])

    async def events(self) -> int:
        """How many events the store holds (nothing refused may add one)."""
        return int(await self.runtime.unit.db["events"].count_documents({}))

    def clear_limits(self) -> None:
        """Forget every rate-limit counter (what time passing would do), nothing else in Redis."""
        r = redis.Redis.from_url(self.redis_url)
        keys = list(r.scan_iter("LIMITS*", count=1000))
        if keys:
            r.delete(*keys)


async def account(client: TestClient[Any, Any], name: str) -> Who:
    """A new account signed up over HTTP."""
    body = await signup(client)
    return Who(name, body["access_token"], body["user"]["id"], body["user"]["email"], body["refresh_token"])


async def _build(world: World) -> None:
    client, rt = world.client, world.runtime
    world.clear_limits()
    for name in ("user", "other"):
        world.who[name] = await account(client, name)
    for name in ("admin", "super_admin"):
        world.who[name] = await world.fresh(name)
    world.who["anonymous"] = Who("anonymous", None)
    world.partner = await account(client, "partner")
    world.target = await account(client, "target")
    world.blocker = await account(client, "blocker")
    owner, other, partner = world.owner, world.who["other"], world.partner

    world.clear_limits()
    # The dead: a suspended account, a deleted one, a logged-out session; each keeps its old token.
    for name in DEAD:
        world.who[name] = await account(client, name)
    dead = world.who
    admin_headers = world.who["admin"].headers
    resp = await confirmed_post(client, f"/api/admin/users/{dead['suspended'].user_id}/suspend", admin_headers, json={"reason": "test"})
    assert resp.status == 200, await resp.text()
    assert (await client.delete("/api/users/account", headers=dead["deleted"].headers)).status == 200
    assert (await client.post("/api/auth/logout", headers=dead["revoked"].headers)).status == 200

    # The owner's things: a conversation where the partner wrote to them, a ringing call, a photo,
    # a pending payment, a report.
    resp = await client.post("/api/messages/send", json={"receiver_id": owner.user_id, "content": "hi there"}, headers=partner.headers)
    sent = await resp.json()
    assert resp.status == 200, sent
    world.conversation_id, world.message_id = sent["conversation_id"], sent["message_id"]
    world.call_id = await rt.bus.handle(InitiateCall(partner.user_id, owner.user_id, "audio"), Context(actor=f"user:{partner.user_id}"))
    resp = await client.post("/api/users/upload-photo", data=form(png_bytes(), "p.png", "image/png"), headers=owner.headers)
    photo = await resp.json()
    assert resp.status == 200, photo
    world.photo_url = photo["url"]
    resp = await client.post("/api/payments/order", json={"package_id": "starter"}, headers=owner.headers)
    order = await resp.json()
    assert resp.status == 200, order
    world.intent_id = order["payment_intent_id"]
    world.report_id = await world.report()
    resp = await client.post(f"/api/users/block/{other.user_id}", json={}, headers=world.blocker.headers)
    assert resp.status == 200, await resp.text()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(redis_server: str) -> AsyncIterator[World]:
    """The app on a real port over a private database and the private Redis, with its callers."""
    redis.Redis.from_url(redis_server).flushdb()
    stripe = FakeStripe()
    await stripe.start()
    settings = load_settings(
        "test",
        {
            "REDIS_URL": redis_server,
            "JWT_SECRET": TEST_JWT_SECRET,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "FRONTEND_URL": "https://app.truebond.test",
            "BACKEND_URL": "https://api.truebond.test",
        },
    )
    settings = attrs.evolve(settings, stripe_api_base=stripe.url, stripe_secret_key=FAKE_SECRET_KEY)
    db = AsyncMongoMockClient(tz_aware=True)[f"truebond_authz_{uuid.uuid4().hex[:8]}"]
    rt = await bootstrap.build(settings, db=db, clock=OffsetClock(), fast_hashing=True)
    await bootstrap.ensure_indexes(rt.unit)
    client: TestClient[Any, Any] = TestClient(TestServer(bootstrap.web_app(rt)))
    await client.start_server()
    w = World(client=client, runtime=rt, redis_url=redis_server, stripe=stripe)
    try:
        await _build(w)
        yield w
    finally:
        await client.close()
        await rt.close()
        await stripe.stop()
