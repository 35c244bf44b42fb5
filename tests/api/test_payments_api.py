"""Packages, orders, the read-only verify and the credit history, over real HTTP, with the fake Stripe."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.stripe_api import FakeStripe, event
from tests.support import payments_support
from tests.support.accounts import auth, signup
from tests.support.payments_support import coins, credit_history, deliver, place_order
from tests.support.secrets import WEBHOOK_SECRET
from truebond.bootstrap import Runtime
from truebond.commands.bus import Context
from truebond.commands.ledger import deduct

# The fake Stripe, and this module's settings pointing the app at it (fixtures).
stripe_fake = payments_support.stripe_fake
settings = payments_support.settings


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


@pytest.mark.parametrize(
    ("package_id", "coins_given", "paise"), [("starter", 100, 10000), ("popular", 500, 45000), ("premium", 1000, 80000)]
)
async def test_order_creates_an_intent_for_the_package_with_metadata_and_idempotency_key(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, package_id: str, coins_given: int, paise: int
) -> None:
    user = await signup(client)
    body = await place_order(client, user["access_token"], package_id)

    assert set(body) == {"payment_intent_id", "client_secret", "amount", "currency", "coins", "payment_id"}
    assert (body["amount"], body["currency"], body["coins"]) == (paise, "inr", coins_given)
    intent = stripe_fake.intents[body["payment_intent_id"]]
    assert body["client_secret"] == intent["client_secret"]
    assert (intent["amount"], intent["currency"]) == (paise, "inr")
    assert intent["metadata"] == {"user_id": user["user"]["id"], "package_id": package_id, "payment_id": body["payment_id"]}

    # One request, made by stripe-python's native async client over its aiohttp HTTP client,
    # with the server's secret key and an Idempotency-Key bound to this payment.
    (request,) = stripe_fake.requests
    assert (request["method"], request["path"]) == ("POST", "/v1/payment_intents")
    assert request["user_agent"].startswith("Stripe/v1 PythonBindings/")
    assert request["client_user_agent"]["httplib"] == "aiohttp"
    assert request["idempotency_key"] == f"truebond-order-{body['payment_id']}"
    assert request["form"]["amount"] == str(paise) and request["form"]["currency"] == "inr"

    created = await runtime.unit.store.get(f"payment-created:{body['payment_intent_id']}")
    assert created is not None and created.type == "PaymentCreated" and created.stream == f"payment-{body['payment_intent_id']}"
    assert created.meta.actor == f"user:{user['user']['id']}"
    doc = await runtime.unit.db["payments"].find_one({"_id": body["payment_intent_id"]})
    assert doc is not None
    assert (doc["userId"], doc["status"], doc["amount"], doc["coins"], doc["package_id"], doc["intent_id"], doc["payment_id"]) == (
        user["user"]["id"],
        "pending",
        paise,
        coins_given,
        package_id,
        body["payment_intent_id"],
        body["payment_id"],
    )
    assert doc["created_at"] is not None and doc["updated_at"] is not None
    indexes = await runtime.unit.db["payments"].index_information()
    assert indexes["userId"]["key"][0] == ("userId", 1)


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


async def test_eleventh_order_in_an_hour_is_rate_limited_per_user(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, other = await signup(client), await signup(client)
    for _ in range(10):
        await place_order(client, user["access_token"])
    resp = await client.post("/api/payments/order", json={"package_id": "starter"}, headers=auth(user["access_token"]))
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 3600
    assert (await resp.json())["code"] == "rate_limited"
    assert len(stripe_fake.intents) == 10
    assert await runtime.unit.db["events"].count_documents({"type": "PaymentCreated"}) == 10

    # The limit is the user's own: another account (same IP) still orders.
    await place_order(client, other["access_token"])
    assert len(stripe_fake.intents) == 11


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


@pytest.mark.parametrize("reply", [{"amount": 1}, {"amount": 1000000}, {"currency": "usd"}])
async def test_a_stripe_reply_that_differs_from_the_package_answers_503_and_records_no_order(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, reply: dict[str, Any]
) -> None:
    user = await signup(client)
    stripe_fake.next_reply = dict(reply)
    resp = await client.post("/api/payments/order", json={"package_id": "starter"}, headers=auth(user["access_token"]))
    body = await resp.json()
    assert resp.status == 503, body
    assert body["code"] == "dependency_unavailable"
    assert "client_secret" not in body and "payment_intent_id" not in body
    assert len(stripe_fake.intents) == 1
    assert await runtime.unit.db["events"].count_documents({"type": "PaymentCreated"}) == 0
    assert await runtime.unit.db["payments"].count_documents({}) == 0


async def test_verify_reads_only_and_never_credits(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user = await signup(client)
    token = user["access_token"]
    order = await place_order(client, token)

    resp = await client.post("/api/payments/verify", json={"payment_intent_id": order["payment_intent_id"]}, headers=auth(token))
    assert resp.status == 200
    assert await resp.json() == {"status": "pending", "coins": 0}

    # Stripe says paid, but no webhook yet: verify still says pending, credits nothing, stores
    # nothing and does not even ask Stripe.
    stripe_fake.succeed(order["payment_intent_id"])
    stored, stripe_calls = await runtime.unit.db["events"].count_documents({}), len(stripe_fake.requests)
    for _ in range(3):
        resp = await client.post("/api/payments/verify", json={"payment_intent_id": order["payment_intent_id"]}, headers=auth(token))
        assert await resp.json() == {"status": "pending", "coins": 0}
    assert await coins(client, token) == 10
    assert await runtime.unit.db["events"].count_documents({}) == stored
    assert len(stripe_fake.requests) == stripe_calls

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


async def test_credit_history_is_newest_first_with_the_contract_fields(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, other = await signup(client), await signup(client)
    token, user_id = user["access_token"], user["user"]["id"]
    order = await place_order(client, token, "premium")
    assert await deliver(client, event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"])), WEBHOOK_SECRET) == 200
    meta = Context(actor=f"user:{user_id}").meta()
    for n in range(3):  # quick charges, possibly within one millisecond: still in order
        await deduct(runtime.unit, user_id, n + 1, reason="message", reference=f"msg:{n}", event_id=f"msg:{user_id}:{n}", meta=meta)

    transactions = await credit_history(client, token)
    assert [(t["amount"], t["reason"], t["balance_after"]) for t in transactions] == [
        (-3, "MESSAGE", 1004),
        (-2, "MESSAGE", 1007),
        (-1, "MESSAGE", 1009),
        (1000, "PURCHASE", 1010),
        (10, "SIGNUP_BONUS", 10),
    ]
    assert all(set(t) == {"id", "amount", "reason", "balance_after", "description", "created_at"} for t in transactions)
    assert transactions[3]["id"] == f"stripe-pi:{order['payment_intent_id']}"
    assert transactions[3]["description"] == "Purchased 1000 coins (Premium)"
    stamps = [t["created_at"] for t in transactions]
    assert stamps == sorted(stamps, reverse=True) and all(stamp.endswith("Z") for stamp in stamps)
    assert [(t["amount"], t["reason"]) for t in await credit_history(client, other["access_token"])] == [(10, "SIGNUP_BONUS")]
    indexes = await runtime.unit.db["credit_transactions"].index_information()
    assert [tuple(k) for k in indexes["user_time"]["key"]] == [("user_id", 1), ("created_at", -1)]

    assert [t["amount"] for t in await credit_history(client, token, limit=2)] == [-3, -2]
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
