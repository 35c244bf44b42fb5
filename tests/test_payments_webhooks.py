"""Stripe webhooks over real HTTP, signed with Stripe's scheme: verified, recorded once, credited once."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from tests.conftest import WEBHOOK_SECRET, auth, signup
from tests.fakes.stripe_api import FAKE_SECRET_KEY, FakeStripe, coins, deliver, event, place_order, sign, signed
from truebond.bootstrap import Runtime
from truebond.commands.ledger import deduct
from truebond.config import Settings
from truebond.events.base import Meta, Recorded
from truebond.projections.runner import Projector


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


async def buyer(client: Any, package_id: str = "starter") -> tuple[dict[str, Any], dict[str, Any]]:
    """A new account (10 coins) with one pending order."""
    user = await signup(client)
    return user, await place_order(client, user["access_token"], package_id)


async def events_of_type(runtime: Runtime, type_name: str) -> list[dict[str, Any]]:
    """Raw stored events of one type."""
    docs: list[dict[str, Any]] = await runtime.unit.db["events"].find({"type": type_name}).to_list(None)
    return docs


async def event_count(runtime: Runtime) -> int:
    """How many events the store holds."""
    return int(await runtime.unit.db["events"].count_documents({}))


async def verify_status(client: Any, token: str, intent_id: str) -> dict[str, Any]:
    """POST /api/payments/verify."""
    resp = await client.post("/api/payments/verify", json={"payment_intent_id": intent_id}, headers=auth(token))
    body: dict[str, Any] = await resp.json()
    return body


# -- exactly once ---------------------------------------------------------------------------------


async def test_fifty_concurrent_deliveries_of_one_event_credit_once(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    body, headers = signed(evt, WEBHOOK_SECRET)

    async def one() -> int:
        resp = await client.post("/api/webhooks/stripe", data=body, headers=headers)
        await resp.read()
        return int(resp.status)

    statuses = await asyncio.gather(*(one() for _ in range(50)))
    assert statuses == [200] * 50
    assert await coins(client, user["access_token"]) == 110
    credits = await events_of_type(runtime, "CreditsPurchased")
    assert [c["_id"] for c in credits] == [f"stripe-pi:{order['payment_intent_id']}"]
    assert credits[0]["data"]["amount"] == 100 and credits[0]["data"]["balance_after"] == 110
    assert len(await events_of_type(runtime, "StripeEventReceived")) == 1
    assert len(await events_of_type(runtime, "PaymentSucceeded")) == 1
    assert await verify_status(client, user["access_token"], order["payment_intent_id"]) == {"status": "completed", "coins": 100}


async def test_one_payment_announced_by_two_event_ids_credits_once(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client, "popular")
    intent = stripe_fake.succeed(order["payment_intent_id"])
    first, second = event("payment_intent.succeeded", intent), event("payment_intent.succeeded", intent)
    assert first["id"] != second["id"]
    statuses = await asyncio.gather(
        deliver(client, first, WEBHOOK_SECRET), deliver(client, second, WEBHOOK_SECRET, "/api/webhooks/stripe/credits")
    )
    assert statuses == [200, 200]
    assert await coins(client, user["access_token"]) == 510
    assert len(await events_of_type(runtime, "CreditsPurchased")) == 1
    assert len(await events_of_type(runtime, "StripeEventReceived")) == 2


async def test_a_duplicate_delivery_answers_200_and_changes_nothing(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    before = await event_count(runtime)
    resp_body, headers = signed(evt, WEBHOOK_SECRET)
    resp = await client.post("/api/webhooks/stripe", data=resp_body, headers=headers)
    assert resp.status == 200
    assert await resp.json() == {"received": True, "duplicate": True}
    assert await event_count(runtime) == before
    assert await coins(client, user["access_token"]) == 110


# -- signatures -----------------------------------------------------------------------------------


def _bad_deliveries(evt: dict[str, Any]) -> dict[str, tuple[bytes, dict[str, str]]]:
    body = json.dumps(evt).encode()
    now = int(time.time())
    altered = json.loads(body)
    altered["data"]["object"]["amount"] = 1
    return {
        "bad signature": (body, {"Stripe-Signature": f"t={now},v1={'0' * 64}"}),
        "wrong secret": (body, {"Stripe-Signature": sign(body, "whsec_not_the_right_secret_0000")}),
        "stale timestamp": (body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET, now - 301)}),
        "far future timestamp": (body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET, now + 301)}),
        "missing header": (body, {}),
        "empty header": (body, {"Stripe-Signature": ""}),
        "garbage header": (body, {"Stripe-Signature": "not a signature"}),
        "v0 only": (body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET).replace("v1=", "v0=")}),
        "body altered after signing": (json.dumps(altered).encode(), {"Stripe-Signature": sign(body, WEBHOOK_SECRET)}),
    }


async def test_unverifiable_deliveries_answer_400_and_store_nothing(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    before = await event_count(runtime)
    for name, (body, headers) in _bad_deliveries(evt).items():
        for path in ("/api/webhooks/stripe", "/api/webhooks/stripe/credits"):
            resp = await client.post(path, data=body, headers={"Content-Type": "application/json", **headers})
            assert resp.status == 400, name
            answer = await resp.json()
            assert answer["code"] == "invalid_signature", name
            assert set(answer) == {"detail", "code", "request_id"}
    assert await event_count(runtime) == before
    assert await coins(client, user["access_token"]) == 10
    assert (await verify_status(client, user["access_token"], order["payment_intent_id"]))["status"] == "pending"


async def test_a_signature_inside_the_tolerance_is_accepted(client: Any, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET, timestamp=int(time.time()) - 290) == 200
    assert await coins(client, user["access_token"]) == 110


async def test_nothing_verifies_without_a_configured_secret(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client)
    runtime.unit.settings = attrs.evolve(runtime.unit.settings, stripe_webhook_secret="")
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET) == 400
    assert await deliver(client, evt, "") == 400
    assert await coins(client, user["access_token"]) == 10


async def test_verified_but_malformed_bodies_answer_400_and_store_nothing(client: Any, runtime: Runtime) -> None:
    before = await event_count(runtime)
    bodies = [
        b"not json",
        b"[]",
        b'{"object": "event"}',
        json.dumps({"id": "evt_1x", "object": "event", "type": "payment_intent.succeeded"}).encode(),
        json.dumps({"id": "../x", "object": "event", "type": "x", "data": {"object": {}}}).encode(),
        b'{"id": "evt_1abc", "object": "event", "type": "x\\ud800", "data": {"object": {}}}',
    ]
    for body in bodies:
        resp = await client.post("/api/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(body, WEBHOOK_SECRET)})
        assert resp.status == 400, body
    assert await event_count(runtime) == before


async def test_a_body_over_512_kib_is_refused(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    _, order = await buyer(client)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    evt["padding"] = "x" * (512 * 1024)
    before = await event_count(runtime)
    assert await deliver(client, evt, WEBHOOK_SECRET) == 413
    assert await event_count(runtime) == before


# -- refusing what disagrees with the server's order ----------------------------------------------


async def test_an_intent_the_server_never_created_credits_nothing(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user = await signup(client)
    # Right metadata shape, right price, but no order: created outside the server.
    forged = stripe_fake.add_intent(10000, metadata={"user_id": user["user"]["id"], "package_id": "starter", "payment_id": "p" * 32})
    evt = event("payment_intent.succeeded", forged)
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await coins(client, user["access_token"]) == 10
    assert await events_of_type(runtime, "CreditsPurchased") == []
    (rejected,) = await events_of_type(runtime, "StripeEventRejected")
    assert rejected["data"]["reason"] == "unknown_intent" and rejected["_id"] == f"stripe-rejected:{evt['id']}"
    (review,) = await runtime.unit.db["payment_reviews"].find({}).to_list(None)
    assert review["kind"] == "webhook_rejected" and review["reason"] == "unknown_intent"
    assert await runtime.unit.db["payments"].find_one({"_id": forged["id"]}) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": 1000, "amount_received": 1000}, "amount_mismatch"),
        ({"amount_received": 100}, "amount_mismatch"),
        ({"currency": "usd"}, "currency_mismatch"),
        ({"metadata": {"package_id": "premium"}}, "metadata_mismatch"),
        ({"metadata": {"payment_id": "0" * 32}}, "metadata_mismatch"),
        ({"metadata": {}}, "metadata_mismatch"),
        ({"status": "processing"}, "not_succeeded"),
    ],
)
async def test_facts_that_disagree_with_the_order_credit_nothing(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, change: dict[str, Any], reason: str
) -> None:
    user, order = await buyer(client)
    intent = stripe_fake.succeed(order["payment_intent_id"])
    if "metadata" in change:
        change = {"metadata": {} if not change["metadata"] else {**intent["metadata"], **change["metadata"]}}
    evt = event("payment_intent.succeeded", {**intent, **change})
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await coins(client, user["access_token"]) == 10
    assert await events_of_type(runtime, "CreditsPurchased") == []
    (rejected,) = await events_of_type(runtime, "StripeEventRejected")
    assert rejected["data"]["reason"] == reason and rejected["data"]["user_id"] == user["user"]["id"]
    assert await verify_status(client, user["access_token"], order["payment_intent_id"]) == {"status": "failed", "coins": 0}


async def test_metadata_pointing_at_another_user_credits_nobody(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    alice, order = await buyer(client)
    mallory = await signup(client)
    intent = stripe_fake.succeed(order["payment_intent_id"])
    evt = event("payment_intent.succeeded", {**intent, "metadata": {**intent["metadata"], "user_id": mallory["user"]["id"]}})
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await coins(client, alice["access_token"]) == 10
    assert await coins(client, mallory["access_token"]) == 10
    assert await events_of_type(runtime, "CreditsPurchased") == []


# -- failures, refunds, disputes -------------------------------------------------------------------


async def test_refund_after_spending_withdraws_only_the_remainder_and_flags_the_account(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe
) -> None:
    user, order = await buyer(client)
    user_id, token, intent_id = user["user"]["id"], user["access_token"], order["payment_intent_id"]
    assert await deliver(client, event("payment_intent.succeeded", stripe_fake.succeed(intent_id)), WEBHOOK_SECRET) == 200
    await deduct(runtime.unit, user_id, 60, reason="message", reference="msg:1", event_id="msg:1", meta=Meta(actor=f"user:{user_id}"))
    assert await coins(client, token) == 50

    assert await deliver(client, event("charge.refunded", stripe_fake.charge(intent_id)), WEBHOOK_SECRET) == 200
    assert await coins(client, token) == 0
    (reversal,) = await events_of_type(runtime, "CreditsReversed")
    assert reversal["_id"] == f"stripe-reversal:{intent_id}"
    assert (reversal["data"]["amount"], reversal["data"]["balance_after"], reversal["data"]["flagged"]) == (-50, 0, True)
    (review,) = await runtime.unit.db["payment_reviews"].find({"kind": "account_flagged"}).to_list(None)
    assert (review["user_id"], review["reason"], review["coins_withdrawn"]) == (user_id, "refund", 50)
    doc = await runtime.unit.db["payments"].find_one({"_id": intent_id})
    assert doc["status"] == "refunded"

    # A dispute on the same payment afterwards withdraws nothing more; the balance never goes negative.
    assert await deliver(client, event("charge.dispute.created", stripe_fake.dispute(intent_id)), WEBHOOK_SECRET) == 200
    assert await coins(client, token) == 0
    assert len(await events_of_type(runtime, "CreditsReversed")) == 1
    assert (await runtime.unit.db["payments"].find_one({"_id": intent_id}))["status"] == "disputed"
    history = (await (await client.get("/api/credits/history", headers=auth(token))).json())["transactions"]
    assert [(t["amount"], t["reason"], t["balance_after"]) for t in history] == [
        (-50, "refund", 0),
        (-60, "message", 50),
        (100, "purchase", 110),
        (10, "signup_bonus", 10),
    ]
    assert all(t["balance_after"] >= 0 for t in history)


async def test_dispute_with_nothing_spent_withdraws_the_whole_purchase(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client, "popular")
    intent_id = order["payment_intent_id"]
    assert await deliver(client, event("payment_intent.succeeded", stripe_fake.succeed(intent_id)), WEBHOOK_SECRET) == 200
    assert await coins(client, user["access_token"]) == 510
    dispute = event("charge.dispute.created", stripe_fake.dispute(intent_id))
    assert await asyncio.gather(*(deliver(client, dispute, WEBHOOK_SECRET) for _ in range(5))) == [200] * 5
    assert await coins(client, user["access_token"]) == 10
    assert len(await events_of_type(runtime, "CreditsReversed")) == 1


async def test_a_refund_before_the_success_event_means_no_credit(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client)
    intent_id = order["payment_intent_id"]
    intent = stripe_fake.succeed(intent_id)
    # Stripe does not promise delivery order: the refund arrives first.
    assert await deliver(client, event("charge.refunded", stripe_fake.charge(intent_id)), WEBHOOK_SECRET) == 200
    assert await deliver(client, event("payment_intent.succeeded", intent), WEBHOOK_SECRET) == 200
    assert await coins(client, user["access_token"]) == 10
    assert await events_of_type(runtime, "CreditsPurchased") == []
    (rejected,) = await events_of_type(runtime, "StripeEventRejected")
    assert rejected["data"]["reason"] == "payment_reversed"


async def test_events_about_unknown_charges_and_other_types_are_stored_and_acknowledged(client: Any, runtime: Runtime) -> None:
    others = [
        event("customer.created", {"id": "cus_1NvLd3IaQ9", "object": "customer", "email": "someone@example.com"}),
        event(
            "charge.refunded",
            {"id": "ch_1Unknown0000", "object": "charge", "amount": 500, "currency": "inr", "payment_intent": "pi_1Unknown00"},
        ),
        event("charge.refunded", {"id": "ch_1NoIntent000", "object": "charge", "amount": 500, "currency": "inr", "payment_intent": None}),
        event("payment_intent.payment_failed", {"id": "pi_1Unknown00", "object": "payment_intent", "amount": 1, "currency": "inr"}),
    ]
    for evt in others:
        assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    received = await events_of_type(runtime, "StripeEventReceived")
    assert sorted(r["data"]["stripe_event_id"] for r in received) == sorted(e["id"] for e in others)
    assert not any("someone@example.com" in json.dumps(r, default=str) for r in received)
    assert await events_of_type(runtime, "CreditsReversed") == []


# -- crashes and retries ---------------------------------------------------------------------------


async def test_a_failure_while_processing_answers_500_and_the_retry_completes(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, order = await buyer(client)
    store = runtime.unit.store
    real_append = store.append
    failures = {"left": 1}

    async def flaky_append(stream: str, head: Any, evt: Any, **kwargs: Any) -> Any:
        if evt.type_name == "PaymentSucceeded" and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("mongo went away")
        return await real_append(stream, head, evt, **kwargs)

    monkeypatch.setattr(store, "append", flaky_append)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET) == 500
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await coins(client, user["access_token"]) == 110
    assert len(await events_of_type(runtime, "CreditsPurchased")) == 1
    assert await verify_status(client, user["access_token"], order["payment_intent_id"]) == {"status": "completed", "coins": 100}


async def test_projector_killed_between_append_and_read_model_update_heals(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, order = await buyer(client, "premium")
    token = user["access_token"]
    projections = runtime.unit.projections
    real_apply = projections.apply

    async def killed(rec: Recorded) -> None:
        if rec.type == "CreditsPurchased":
            raise SystemError("process killed before the read models were updated")
        await real_apply(rec)

    monkeypatch.setattr(projections, "apply", killed)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET) == 500
    assert len(await events_of_type(runtime, "CreditsPurchased")) == 1
    assert await coins(client, token) == 10  # the read model did not see the credit

    # Restart: the async projector catches up from its checkpoint.
    monkeypatch.setattr(projections, "apply", real_apply)
    await Projector(projections).run_once()
    assert await coins(client, token) == 1010
    history = (await (await client.get("/api/credits/history", headers=auth(token))).json())["transactions"]
    assert [(t["amount"], t["balance_after"]) for t in history] == [(1000, 1010), (10, 10)]

    # Stripe retries the 500: 200, nothing credited twice, the payment completes.
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await coins(client, token) == 1010
    assert await verify_status(client, token, order["payment_intent_id"]) == {"status": "completed", "coins": 1000}
    assert await runtime.unit.projections.diff() == []


# -- logs ------------------------------------------------------------------------------------------


async def test_payment_logs_carry_type_amount_status_and_no_ids_or_signatures(
    client: Any, stripe_fake: FakeStripe, log_output: io.StringIO
) -> None:
    user, order = await buyer(client)
    intent = stripe_fake.succeed(order["payment_intent_id"])
    evt = event("payment_intent.succeeded", intent)
    body, headers = signed(evt, WEBHOOK_SECRET)
    assert (await client.post("/api/webhooks/stripe", data=body, headers=headers)).status == 200
    forged = event("payment_intent.succeeded", {**intent, "amount": 1})
    assert await deliver(client, forged, WEBHOOK_SECRET) == 200
    bad = await client.post("/api/webhooks/stripe", data=body, headers={"Stripe-Signature": "t=1,v1=" + "a" * 64})
    assert bad.status == 400

    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    text = log_output.getvalue()
    for secret in (order["payment_intent_id"], order["client_secret"], headers["Stripe-Signature"], WEBHOOK_SECRET, user["user"]["email"]):
        assert secret not in text
    webhook = [entry for entry in lines if entry.get("event") == "payment.webhook"]
    assert webhook and webhook[0]["type"] == "payment_intent.succeeded" and webhook[0]["amount"] == 10000
    assert webhook[0]["status"] == "credited"
    rejected = [entry for entry in lines if entry.get("event") == "payment.rejected"]
    assert rejected and rejected[0]["level"] == "warning" and rejected[0]["reason"] == "amount_mismatch"
    assert any(entry.get("event") == "payment.webhook_unverified" for entry in lines)


async def test_no_per_ip_limit_drops_stripe_deliveries(client: Any) -> None:
    # More than the default 120 requests per IP per minute: Stripe's bursts and retries all land.
    evts = [event("customer.updated", {"id": f"cus_1Burst{n:06d}", "object": "customer"}) for n in range(130)]
    statuses = await asyncio.gather(*(deliver(client, evt, WEBHOOK_SECRET) for evt in evts))
    assert statuses == [200] * 130


async def test_credit_and_withdrawal_push_balance_updated(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, order = await buyer(client)
    pushed: list[tuple[str, str, Any]] = []

    class Recorder:
        async def emit_to_user(self, user_id: str, name: str, data: Any) -> None:
            pushed.append((user_id, name, data))

    monkeypatch.setattr(runtime.unit, "notifier", Recorder())
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await deliver(client, event("charge.refunded", stripe_fake.charge(order["payment_intent_id"])), WEBHOOK_SECRET) == 200
    uid = user["user"]["id"]
    assert pushed == [(uid, "balance_updated", {"coins": 110}), (uid, "balance_updated", {"coins": 10})]
