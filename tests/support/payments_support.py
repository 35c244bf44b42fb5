"""What the payment and ledger tests share: the fake Stripe wired into the app, and HTTP helpers.

A test module that talks to Stripe binds the two fixtures at module level, which makes that
module's `settings` point the app's Stripe client at the fake:

    stripe_fake = payments_support.stripe_fake
    settings = payments_support.settings
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from tests.fakes.stripe_api import FAKE_SECRET_KEY, FakeStripe, signed
from tests.support.accounts import auth, signup
from tests.support.secrets import WEBHOOK_SECRET
from truebond.bootstrap import Runtime
from truebond.commands.payments import Package
from truebond.config import Settings
from truebond.events.store import EventStore


@pytest.fixture
async def stripe_fake() -> AsyncIterator[FakeStripe]:
    """The fake Stripe API on a free port."""
    fake = FakeStripe()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def settings(settings: Settings, stripe_fake: FakeStripe) -> Settings:
    """The test settings, with the Stripe client pointed at the fake."""
    return attrs.evolve(settings, stripe_api_base=stripe_fake.url, stripe_secret_key=FAKE_SECRET_KEY)


def paid_intent(intent_id: str, user_id: str, payment_id: str, package: Package) -> dict[str, Any]:
    """A succeeded payment_intent object that agrees with the server's order (for a webhook event)."""
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": package.amount,
        "amount_received": package.amount,
        "currency": "inr",
        "status": "succeeded",
        "metadata": {"user_id": user_id, "package_id": package.id, "payment_id": payment_id},
    }


# -- driving the app under test over HTTP -----------------------------------------------------------


async def place_order(client: Any, token: str, package_id: str = "starter") -> dict[str, Any]:
    """POST /api/payments/order as the owner of `token` (asserting 200)."""
    resp = await client.post("/api/payments/order", json={"package_id": package_id}, headers=auth(token))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def buyer(client: Any, package_id: str = "starter") -> tuple[dict[str, Any], dict[str, Any]]:
    """A new account (10 coins) with one pending order."""
    user = await signup(client)
    return user, await place_order(client, user["access_token"], package_id)


async def deliver(
    client: Any, evt: dict[str, Any], secret: str = WEBHOOK_SECRET, path: str = "/api/webhooks/stripe", timestamp: int | None = None
) -> int:
    """Deliver a webhook event signed with Stripe's scheme; returns the HTTP status."""
    body, headers = signed(evt, secret, timestamp)
    resp = await client.post(path, data=body, headers=headers)
    await resp.read()
    return int(resp.status)


async def coins(client: Any, token: str) -> int:
    """The balance /api/auth/me shows."""
    resp = await client.get("/api/auth/me", headers=auth(token))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return int(body["coins"])


async def verify_status(client: Any, token: str, intent_id: str) -> dict[str, Any]:
    """POST /api/payments/verify (asserting 200)."""
    resp = await client.post("/api/payments/verify", json={"payment_intent_id": intent_id}, headers=auth(token))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


async def credit_history(client: Any, token: str, limit: int | None = None) -> list[dict[str, Any]]:
    """GET /api/credits/history (asserting 200): the transactions, as the client sees them."""
    query = "" if limit is None else f"?limit={limit}"
    resp = await client.get(f"/api/credits/history{query}", headers=auth(token))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    transactions: list[dict[str, Any]] = body["transactions"]
    return transactions


# -- looking into the store ---------------------------------------------------------------------------


async def events_of_type(runtime: Runtime, type_name: str) -> list[dict[str, Any]]:
    """Raw stored events of one type."""
    docs: list[dict[str, Any]] = await runtime.unit.db["events"].find({"type": type_name}).to_list(None)
    return docs


async def event_count(runtime: Runtime) -> int:
    """How many events the store holds."""
    return int(await runtime.unit.db["events"].count_documents({}))


def interleave(store: EventStore) -> None:
    """Yield to the event loop before every store read and write.

    mongomock answers without ever suspending, so concurrent commands would otherwise run one
    after another; with these yields their load-decide-append steps really interleave and the
    optimistic-concurrency and duplicate-id paths are exercised (as against a real MongoDB).
    """
    for name in ("append", "get", "head", "load"):
        real = getattr(store, name)

        def yielding(real: Any) -> Any:
            async def call(*args: Any, **kwargs: Any) -> Any:
                await asyncio.sleep(0)
                return await real(*args, **kwargs)

            return call

        setattr(store, name, yielding(real))
