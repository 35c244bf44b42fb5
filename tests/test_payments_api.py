"""Packages, orders, the read-only verify and the credit history, over real HTTP, with the fake Stripe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from tests.conftest import WEBHOOK_SECRET, auth, signup
from tests.fakes.stripe_api import FAKE_SECRET_KEY, FakeStripe, coins, deliver, event, place_order
from truebond.bootstrap import Runtime
from truebond.config import Settings


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


async def test_packages_come_from_the_server_table(client: Any) -> None:
    resp = await client.get("/api/payments/packages")
    assert resp.status == 200
    assert await resp.json() == {
        "packages": [
            {"id": "starter", "coins": 100, "amount_inr": 100, "label": "Starter", "discount": 0, "popular": False},
            {"id": "popular", "coins": 500, "amount_inr": 450, "label": "Popular", "discount": 10, "popular": False},
            {"id": "premium", "coins": 1000, "amount_inr": 800, "label": "Premium", "discount": 20, "popular": True},
        ],
        "currency": "INR",
        "min_purchase": 100,
    }


async def test_order_creates_an_intent_for_the_package_with_metadata_and_idempotency_key(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe
) -> None:
    user = await signup(client)
    body = await place_order(client, user["access_token"], "popular")

    assert set(body) == {"payment_intent_id", "client_secret", "amount", "currency", "coins", "payment_id"}
    assert body["amount"] == 45000 and body["currency"] == "inr" and body["coins"] == 500
    intent = stripe_fake.intents[body["payment_intent_id"]]
    assert body["client_secret"] == intent["client_secret"]
    assert intent["amount"] == 45000 and intent["currency"] == "inr"
    assert intent["metadata"] == {"user_id": user["user"]["id"], "package_id": "popular", "payment_id": body["payment_id"]}
    (request,) = stripe_fake.requests
    assert request["idempotency_key"] and body["payment_id"] in request["idempotency_key"]

    created = await runtime.unit.store.get(f"payment-created:{body['payment_intent_id']}")
    assert created is not None and created.type == "PaymentCreated" and created.stream == f"payment-{body['payment_intent_id']}"
    doc = await runtime.unit.db["payments"].find_one({"_id": body["payment_intent_id"]})
    assert doc is not None
    assert (doc["userId"], doc["status"], doc["amount"], doc["coins"], doc["package_id"]) == (
        user["user"]["id"],
        "pending",
        45000,
        500,
        "popular",
    )
    assert "userId" in await runtime.unit.db["payments"].index_information()


@pytest.mark.parametrize(
    "body",
    [
        {"package_id": "starter", "amount": 1},
        {"package_id": "premium", "coins": 999999},
        {"package_id": "starter", "amount_inr": 1, "currency": "usd"},
        {"package_id": "gold"},
        {"package_id": 1},
        {},
    ],
)
async def test_order_refuses_client_amounts_coins_and_unknown_packages(client: Any, stripe_fake: FakeStripe, body: dict[str, Any]) -> None:
    user = await signup(client)
    resp = await client.post("/api/payments/order", json=body, headers=auth(user["access_token"]))
    assert resp.status == 422
    answer = await resp.json()
    assert answer["code"] == "validation_error" and answer["errors"]
    assert stripe_fake.requests == []


async def test_order_needs_a_login(client: Any, stripe_fake: FakeStripe) -> None:
    resp = await client.post("/api/payments/order", json={"package_id": "starter"})
    assert resp.status == 401
    assert stripe_fake.requests == []


async def test_eleventh_order_in_an_hour_is_rate_limited(client: Any, stripe_fake: FakeStripe) -> None:
    user = await signup(client)
    for _ in range(10):
        await place_order(client, user["access_token"])
    resp = await client.post("/api/payments/order", json={"package_id": "starter"}, headers=auth(user["access_token"]))
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["code"] == "rate_limited"
    assert len(stripe_fake.intents) == 10


async def test_a_stripe_retry_reuses_the_idempotency_key_and_makes_one_intent(client: Any, stripe_fake: FakeStripe) -> None:
    user = await signup(client)
    stripe_fake.fail_next = 1
    body = await place_order(client, user["access_token"])
    assert len(stripe_fake.intents) == 1
    keys = [r["idempotency_key"] for r in stripe_fake.requests]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert body["payment_intent_id"] in stripe_fake.intents


async def test_stripe_down_answers_503_and_records_nothing(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user = await signup(client)
    stripe_fake.fail_next = 100
    resp = await client.post("/api/payments/order", json={"package_id": "starter"}, headers=auth(user["access_token"]))
    assert resp.status == 503
    body = await resp.json()
    assert body["code"] == "dependency_unavailable" and "Stripe" not in body["detail"]
    assert await runtime.unit.db["events"].count_documents({"type": "PaymentCreated"}) == 0


async def test_verify_reads_only_and_never_credits(client: Any, stripe_fake: FakeStripe) -> None:
    user = await signup(client)
    token = user["access_token"]
    order = await place_order(client, token)

    resp = await client.post("/api/payments/verify", json={"payment_intent_id": order["payment_intent_id"]}, headers=auth(token))
    assert resp.status == 200
    assert await resp.json() == {"status": "pending", "coins": 0}

    # Stripe says paid, but no webhook yet: verify still says pending and nothing is credited.
    stripe_fake.succeed(order["payment_intent_id"])
    for _ in range(3):
        resp = await client.post("/api/payments/verify", json={"payment_intent_id": order["payment_intent_id"]}, headers=auth(token))
        assert (await resp.json())["status"] == "pending"
    assert await coins(client, token) == 10

    evt = event("payment_intent.succeeded", stripe_fake.intents[order["payment_intent_id"]])
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    resp = await client.post("/api/payments/verify", json={"payment_intent_id": order["payment_intent_id"]}, headers=auth(token))
    assert await resp.json() == {"status": "completed", "coins": 100}
    assert await coins(client, token) == 110


async def test_verify_reports_failed_payments(client: Any, stripe_fake: FakeStripe) -> None:
    user = await signup(client)
    token = user["access_token"]
    order = await place_order(client, token)
    evt = event("payment_intent.payment_failed", stripe_fake.fail(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    resp = await client.post("/api/payments/verify", json={"payment_intent_id": order["payment_intent_id"]}, headers=auth(token))
    assert await resp.json() == {"status": "failed", "coins": 0}

    # The customer tries another card and it works: the same payment completes.
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    resp = await client.post("/api/payments/verify", json={"payment_intent_id": order["payment_intent_id"]}, headers=auth(token))
    assert await resp.json() == {"status": "completed", "coins": 100}


async def test_verify_hides_other_users_payments_and_validates_input(client: Any, stripe_fake: FakeStripe) -> None:
    alice, bob = await signup(client), await signup(client)
    order = await place_order(client, alice["access_token"])
    resp = await client.post(
        "/api/payments/verify", json={"payment_intent_id": order["payment_intent_id"]}, headers=auth(bob["access_token"])
    )
    assert resp.status == 404
    resp = await client.post("/api/payments/verify", json={"payment_intent_id": "pi_1DoesNotExist000"}, headers=auth(bob["access_token"]))
    assert resp.status == 404
    for body in ({"payment_intent_id": order["payment_intent_id"], "coins": 100}, {"payment_intent_id": "../../x"}, {}):
        resp = await client.post("/api/payments/verify", json=body, headers=auth(alice["access_token"]))
        assert resp.status == 422, body
    resp = await client.post("/api/payments/verify", json={"payment_intent_id": order["payment_intent_id"]})
    assert resp.status == 401


async def test_credit_history_is_newest_first_with_the_contract_fields(client: Any, stripe_fake: FakeStripe) -> None:
    user = await signup(client)
    token = user["access_token"]
    order = await place_order(client, token, "premium")
    assert await deliver(client, event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"])), WEBHOOK_SECRET) == 200

    resp = await client.get("/api/credits/history", headers=auth(token))
    assert resp.status == 200
    transactions = (await resp.json())["transactions"]
    assert [(t["amount"], t["reason"], t["balance_after"]) for t in transactions] == [(1000, "purchase", 1010), (10, "signup_bonus", 10)]
    assert all(set(t) == {"id", "amount", "reason", "balance_after", "description", "created_at"} for t in transactions)
    assert transactions[0]["description"] == "Purchased 1000 coins (Premium)"

    resp = await client.get("/api/credits/history?limit=1", headers=auth(token))
    assert [t["amount"] for t in (await resp.json())["transactions"]] == [1000]
    for query in ("limit=0", "limit=101", "limit=x", "user_id=someone"):
        resp = await client.get(f"/api/credits/history?{query}", headers=auth(token))
        assert resp.status == 422, query
    assert (await client.get("/api/credits/history")).status == 401


async def test_openapi_lists_the_payment_routes(client: Any) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    for path in ("/api/payments/packages", "/api/payments/order", "/api/payments/verify", "/api/credits/history"):
        assert path in doc["paths"]
    for path in ("/api/webhooks/stripe", "/api/webhooks/stripe/credits"):
        op = doc["paths"][path]["post"]
        assert op["x-auth"] == "webhook" and "security" not in op
    order_schema = doc["paths"]["/api/payments/order"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert order_schema.get("additionalProperties") is False
