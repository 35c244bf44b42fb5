"""Stripe webhooks over real HTTP, signed with Stripe's scheme: verified, recorded once, credited once."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from tests.fakes.stripe_api import FAKE_SECRET_KEY, FakeStripe, event, sign, signed
from tests.support import payments_support
from tests.support.accounts import auth, signup
from tests.support.payments_support import buyer, coins, credit_history, deliver, event_count, events_of_type, interleave, verify_status
from tests.support.secrets import WEBHOOK_SECRET
from truebond.bootstrap import Runtime
from truebond.commands.bus import Context
from truebond.commands.ledger import deduct
from truebond.events.base import Recorded
from truebond.projections.follower import Projector

# The fake Stripe, and this module's settings pointing the app at it (fixtures).
stripe_fake = payments_support.stripe_fake
settings = payments_support.settings


# -- exactly once ---------------------------------------------------------------------------------


def race_credits(runtime: Runtime, racers: int = 5) -> list[str]:
    """Hold every attempt to append a purchase credit until `racers` handlers are at that point.

    They have all looked for the credit and found none, so only the store's unique idempotency
    id and stream version stand between them and a double credit. Returns the attempts' ids.
    """
    store = runtime.unit.store
    interleave(store)
    attempts: list[str] = []
    gate = asyncio.Event()
    real_append = store.append

    async def racing(stream: str, head: Any, evt: Any, **kwargs: Any) -> Any:
        if evt.type_name == "CreditsPurchased":
            attempts.append(kwargs["event_id"])
            if len(attempts) >= racers:
                gate.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gate.wait(), 2)
        return await real_append(stream, head, evt, **kwargs)

    store.append = racing  # type: ignore[method-assign]
    return attempts


async def test_fifty_concurrent_deliveries_of_one_event_credit_once(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client)
    attempts = race_credits(runtime)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    body, headers = signed(evt, WEBHOOK_SECRET)

    async def one() -> tuple[int, dict[str, Any]]:
        resp = await client.post("/api/webhooks/stripe", data=body, headers=headers)
        return int(resp.status), await resp.json()

    answers = await asyncio.gather(*(one() for _ in range(50)))
    assert [status for status, _ in answers] == [200] * 50
    assert sorted(answer["duplicate"] for _, answer in answers) == [False] + [True] * 49
    # The handlers really raced to the credit: several tried to append it, one did.
    assert len(attempts) >= 5 and set(attempts) == {f"stripe-pi:{order['payment_intent_id']}"}
    assert await coins(client, user["access_token"]) == 110
    credits = await events_of_type(runtime, "CreditsPurchased")
    assert [c["_id"] for c in credits] == [f"stripe-pi:{order['payment_intent_id']}"]
    assert (credits[0]["data"]["amount"], credits[0]["data"]["balance_after"], credits[0]["data"]["user_id"]) == (
        100,
        110,
        user["user"]["id"],
    )
    assert len(await events_of_type(runtime, "StripeEventReceived")) == 1
    assert len(await events_of_type(runtime, "PaymentSucceeded")) == 1
    assert await verify_status(client, user["access_token"], order["payment_intent_id"]) == {"status": "completed", "coins": 100}
    history = await credit_history(client, user["access_token"])
    assert [(t["amount"], t["reason"], t["balance_after"]) for t in history] == [(100, "PURCHASE", 110), (10, "SIGNUP_BONUS", 10)]


async def test_one_payment_announced_by_two_event_ids_credits_once(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client, "popular")
    attempts = race_credits(runtime)
    intent = stripe_fake.succeed(order["payment_intent_id"])
    first, second = event("payment_intent.succeeded", intent), event("payment_intent.succeeded", intent)
    assert first["id"] != second["id"]
    statuses = await asyncio.gather(
        *(deliver(client, first, WEBHOOK_SECRET) for _ in range(5)),
        *(deliver(client, second, WEBHOOK_SECRET, "/api/webhooks/stripe/credits") for _ in range(5)),
    )
    assert statuses == [200] * 10
    assert len(attempts) >= 5
    assert await coins(client, user["access_token"]) == 510
    assert len(await events_of_type(runtime, "CreditsPurchased")) == 1
    received = await events_of_type(runtime, "StripeEventReceived")
    assert sorted(r["_id"] for r in received) == sorted([f"stripe-evt:{first['id']}", f"stripe-evt:{second['id']}"])
    assert await verify_status(client, user["access_token"], order["payment_intent_id"]) == {"status": "completed", "coins": 500}


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
        "stale timestamp": (body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET, now - 330)}),
        "far future timestamp": (body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET, now + 330)}),
        "missing header": (body, {}),
        "empty header": (body, {"Stripe-Signature": ""}),
        "garbage header": (body, {"Stripe-Signature": "not a signature"}),
        "v0 only": (body, {"Stripe-Signature": sign(body, WEBHOOK_SECRET).replace("v1=", "v0=")}),
        "body altered after signing": (json.dumps(altered).encode(), {"Stripe-Signature": sign(body, WEBHOOK_SECRET)}),
        "timestamp altered after signing": (
            body,
            {"Stripe-Signature": sign(body, WEBHOOK_SECRET, now - 600).replace(f"t={now - 600}", f"t={now}")},
        ),
        "signature of another body": (body, {"Stripe-Signature": sign(json.dumps(altered).encode(), WEBHOOK_SECRET)}),
        "two timestamps": (body, {"Stripe-Signature": f"t={now - 600},{sign(body, WEBHOOK_SECRET)}"}),
        "whitespace only": (body, {"Stripe-Signature": "   "}),
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
    assert await runtime.unit.db["payment_reviews"].count_documents({}) == 0
    assert await coins(client, user["access_token"]) == 10
    assert (await verify_status(client, user["access_token"], order["payment_intent_id"]))["status"] == "pending"

    # Nothing was recorded under the event's id: the genuine delivery is the first one and credits.
    body, headers = signed(evt, WEBHOOK_SECRET)
    resp = await client.post("/api/webhooks/stripe", data=body, headers=headers)
    assert resp.status == 200 and await resp.json() == {"received": True, "duplicate": False}
    assert await coins(client, user["access_token"]) == 110


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


def padded(evt: dict[str, Any], size: int) -> bytes:
    """The event as a JSON body of exactly `size` bytes (an extra key Stripe's parser ignores)."""
    bare = len(json.dumps({**evt, "padding": ""}).encode())
    return json.dumps({**evt, "padding": "x" * (size - bare)}).encode()


async def test_a_body_of_512_kib_is_taken_and_one_byte_more_is_refused(client: Any, runtime: Runtime, stripe_fake: FakeStripe) -> None:
    user, order = await buyer(client)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    before = await event_count(runtime)

    too_big = padded(evt, 512 * 1024 + 1)
    resp = await client.post("/api/webhooks/stripe", data=too_big, headers={"Stripe-Signature": sign(too_big, WEBHOOK_SECRET)})
    assert resp.status == 413 and (await resp.json())["code"] == "payload_too_large"

    # Without a Content-Length (chunked), the cap holds while reading.
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_big), 64 * 1024):
            yield too_big[start : start + 64 * 1024]

    resp = await client.post("/api/webhooks/stripe", data=chunks(), headers={"Stripe-Signature": sign(too_big, WEBHOOK_SECRET)})
    assert resp.status == 413
    assert "Content-Length" not in resp.request_info.headers
    assert await event_count(runtime) == before
    assert await coins(client, user["access_token"]) == 10

    exact = padded(evt, 512 * 1024)
    assert len(exact) == 512 * 1024
    resp = await client.post("/api/webhooks/stripe", data=exact, headers={"Stripe-Signature": sign(exact, WEBHOOK_SECRET)})
    assert resp.status == 200
    assert await coins(client, user["access_token"]) == 110


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


async def test_a_success_event_about_something_other_than_an_intent_credits_nothing(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe
) -> None:
    user, order = await buyer(client)
    stripe_fake.succeed(order["payment_intent_id"])
    # A charge names the intent and carries the right amount, but only the intent is the order's fact.
    charge = {
        **stripe_fake.charge(order["payment_intent_id"], refunded=0),
        "metadata": stripe_fake.intents[order["payment_intent_id"]]["metadata"],
    }
    evt = event("payment_intent.succeeded", charge)
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await coins(client, user["access_token"]) == 10
    assert await events_of_type(runtime, "CreditsPurchased") == []
    (rejected,) = await events_of_type(runtime, "StripeEventRejected")
    assert rejected["data"]["reason"] == "not_a_payment_intent"


# -- failures, refunds, disputes -------------------------------------------------------------------


async def test_refund_after_spending_withdraws_only_the_remainder_and_flags_the_account(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe
) -> None:
    user, order = await buyer(client)
    user_id, token, intent_id = user["user"]["id"], user["access_token"], order["payment_intent_id"]
    assert await deliver(client, event("payment_intent.succeeded", stripe_fake.succeed(intent_id)), WEBHOOK_SECRET) == 200
    await deduct(
        runtime.unit, user_id, 60, reason="message", reference="msg:1", event_id="msg:1", meta=Context(actor=f"user:{user_id}").meta()
    )
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
        (-50, "REFUND", 0),
        (-60, "MESSAGE", 50),
        (100, "PURCHASE", 110),
        (10, "SIGNUP_BONUS", 10),
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
    (reversal,) = await events_of_type(runtime, "CreditsReversed")
    assert (reversal["data"]["amount"], reversal["data"]["reason"], reversal["data"]["flagged"]) == (-500, "dispute", True)
    assert len(await events_of_type(runtime, "PaymentReversed")) == 1
    assert (await runtime.unit.db["payments"].find_one({"_id": intent_id}))["status"] == "disputed"
    (review,) = await runtime.unit.db["payment_reviews"].find({"kind": "account_flagged"}).to_list(None)
    assert (review["user_id"], review["reason"], review["coins_withdrawn"]) == (user["user"]["id"], "dispute", 500)
    history = await credit_history(client, user["access_token"])
    assert [(t["amount"], t["reason"], t["balance_after"]) for t in history] == [
        (-500, "DISPUTE", 10),
        (500, "PURCHASE", 510),
        (10, "SIGNUP_BONUS", 10),
    ]


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


class Pushes:
    """A notifier that records what would be pushed to sockets."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    async def emit_to_user(self, user_id: str, name: str, data: Any) -> None:
        """Record one push."""
        self.sent.append((user_id, name, data))


def fail_once(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, type_name: str) -> dict[str, int]:
    """The next append of a `type_name` event raises, as if MongoDB dropped the connection."""
    store = runtime.unit.store
    real_append = store.append
    failures = {"left": 1}

    async def flaky_append(stream: str, head: Any, evt: Any, **kwargs: Any) -> Any:
        if evt.type_name == type_name and failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("mongo went away")
        return await real_append(stream, head, evt, **kwargs)

    monkeypatch.setattr(store, "append", flaky_append)
    return failures


@pytest.mark.parametrize("failing", ["StripeEventReceived", "CreditsPurchased", "PaymentSucceeded"])
async def test_a_failure_while_crediting_answers_500_and_the_retry_completes(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    user, order = await buyer(client)
    pushes = Pushes()
    monkeypatch.setattr(runtime.unit, "notifier", pushes)
    failures = fail_once(runtime, monkeypatch, failing)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    body, headers = signed(evt, WEBHOOK_SECRET)

    resp = await client.post("/api/webhooks/stripe", data=body, headers=headers)
    assert resp.status == 500 and failures["left"] == 0
    answer = await resp.json()
    assert answer["code"] == "internal" and "mongo" not in json.dumps(answer)

    # Stripe retries the same delivery (with a fresh signature): the work completes, once.
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await coins(client, user["access_token"]) == 110
    assert len(await events_of_type(runtime, "CreditsPurchased")) == 1
    assert len(await events_of_type(runtime, "PaymentSucceeded")) == 1
    assert len(await events_of_type(runtime, "StripeEventReceived")) == 1
    assert await verify_status(client, user["access_token"], order["payment_intent_id"]) == {"status": "completed", "coins": 100}
    assert pushes.sent[-1] == (user["user"]["id"], "balance_updated", {"coins": 110})
    assert await runtime.unit.projections.diff() == []

    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await coins(client, user["access_token"]) == 110


@pytest.mark.parametrize("failing", ["PaymentReversed", "CreditsReversed"])
async def test_a_failure_while_reversing_answers_500_and_the_retry_completes(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    user, order = await buyer(client)
    intent_id = order["payment_intent_id"]
    assert await deliver(client, event("payment_intent.succeeded", stripe_fake.succeed(intent_id)), WEBHOOK_SECRET) == 200
    failures = fail_once(runtime, monkeypatch, failing)
    refund = event("charge.refunded", stripe_fake.charge(intent_id))
    assert await deliver(client, refund, WEBHOOK_SECRET) == 500
    assert failures["left"] == 0
    assert await deliver(client, refund, WEBHOOK_SECRET) == 200
    assert await coins(client, user["access_token"]) == 10
    (reversal,) = await events_of_type(runtime, "CreditsReversed")
    assert (reversal["data"]["amount"], reversal["data"]["flagged"]) == (-100, True)
    assert (await runtime.unit.db["payments"].find_one({"_id": intent_id}))["status"] == "refunded"
    assert await runtime.unit.db["payment_reviews"].count_documents({"kind": "account_flagged", "user_id": user["user"]["id"]}) == 1


@pytest.mark.parametrize("applied_before_kill", [(), ("balances",)])
async def test_projector_killed_between_append_and_read_model_update_heals(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, applied_before_kill: tuple[str, ...]
) -> None:
    user, order = await buyer(client, "premium")
    token, user_id = user["access_token"], user["user"]["id"]
    projections = runtime.unit.projections
    real_apply = projections.apply

    async def killed(rec: Recorded) -> None:
        if rec.type == "CreditsPurchased":
            # The process dies after the append, with none (or only some) of the read models updated.
            for view in projections.named(applied_before_kill):
                await view.apply(projections.db[view.collection], rec, projections.store)
            raise SystemError("process killed before the read models were updated")
        await real_apply(rec)

    monkeypatch.setattr(projections, "apply", killed)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET) == 500
    monkeypatch.setattr(projections, "apply", real_apply)
    assert len(await events_of_type(runtime, "CreditsPurchased")) == 1
    assert await coins(client, token) == (1010 if applied_before_kill else 10)
    assert [t["amount"] for t in await credit_history(client, token)] == [10]

    # A command meanwhile decides on the stream, not on the stale read model: the 1000 coins are there.
    meta = Context(actor=f"user:{user_id}").meta()
    await deduct(runtime.unit, user_id, 1005, reason="call", reference="call:c1:tick:1", event_id="call:c1:tick:1", meta=meta)

    # Restart: the async projector catches up from its checkpoint.
    await Projector(projections).run_once()
    assert await coins(client, token) == 5
    history = await credit_history(client, token)
    assert [(t["amount"], t["reason"], t["balance_after"]) for t in history] == [
        (-1005, "CALL", 5),
        (1000, "PURCHASE", 1010),
        (10, "SIGNUP_BONUS", 10),
    ]

    # Stripe retries the 500: 200, nothing credited twice, the payment completes.
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await coins(client, token) == 5
    assert await verify_status(client, token, order["payment_intent_id"]) == {"status": "completed", "coins": 1000}
    assert await runtime.unit.projections.diff() == []


# -- logs ------------------------------------------------------------------------------------------


ENVELOPE = {"event", "level", "logger", "timestamp", "request_id"}


async def test_payment_logs_carry_event_id_type_amount_status_only_and_mask_ids(
    client: Any, stripe_fake: FakeStripe, log_output: io.StringIO
) -> None:
    user, order = await buyer(client)
    intent_id = order["payment_intent_id"]
    intent = stripe_fake.succeed(intent_id)
    evt = event("payment_intent.succeeded", intent)
    body, headers = signed(evt, WEBHOOK_SECRET)
    assert (await client.post("/api/webhooks/stripe", data=body, headers=headers)).status == 200
    assert (await client.post("/api/webhooks/stripe", data=body, headers=signed(evt, WEBHOOK_SECRET)[1])).status == 200
    forged = event("payment_intent.succeeded", {**intent, "amount": 1})
    assert await deliver(client, forged, WEBHOOK_SECRET) == 200
    charge = stripe_fake.charge(intent_id)
    refund = event("charge.refunded", charge)
    assert await deliver(client, refund, WEBHOOK_SECRET) == 200
    bad = await client.post("/api/webhooks/stripe", data=body, headers={"Stripe-Signature": "t=1,v1=" + "a" * 64})
    assert bad.status == 400

    text = log_output.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    never = [
        intent_id,
        order["client_secret"],
        order["payment_id"],
        charge["id"],
        evt["id"],
        forged["id"],
        refund["id"],
        headers["Stripe-Signature"].split("v1=")[1],
        WEBHOOK_SECRET,
        FAKE_SECRET_KEY,
        user["user"]["email"],
        "payer@example.com",
    ]
    for secret in never:
        assert secret not in text, secret

    webhook = [entry for entry in lines if entry["event"] == "payment.webhook"]
    assert [(e["type"], e["amount"], e["status"]) for e in webhook] == [
        ("payment_intent.succeeded", 10000, "credited"),
        ("payment_intent.succeeded", 10000, "duplicate:already_credited"),
        ("charge.refunded", 10000, "reversed"),
    ]
    assert all(set(e) == ENVELOPE | {"event_id", "type", "amount", "status"} and e["event_id"] == "evt_***" for e in webhook)
    (rejected,) = [entry for entry in lines if entry["event"] == "payment.rejected"]
    assert set(rejected) == ENVELOPE | {"event_id", "type", "amount", "status", "reason"}
    assert (rejected["level"], rejected["event_id"], rejected["amount"], rejected["status"], rejected["reason"]) == (
        "warning",
        "evt_***",
        1,
        "rejected",
        "amount_mismatch",
    )
    (unverified,) = [entry for entry in lines if entry["event"] == "payment.webhook_unverified"]
    assert set(unverified) == ENVELOPE | {"reason", "status"} and unverified["reason"] == "bad_signature"


async def test_no_per_ip_limit_drops_stripe_deliveries(client: Any) -> None:
    # More than the default 120 requests per IP per minute: Stripe's bursts and retries all land.
    evts = [event("customer.updated", {"id": f"cus_1Burst{n:06d}", "object": "customer"}) for n in range(130)]
    statuses = await asyncio.gather(*(deliver(client, evt, WEBHOOK_SECRET) for evt in evts))
    assert statuses == [200] * 130


async def test_credit_and_withdrawal_push_balance_updated(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, order = await buyer(client)
    pushes = Pushes()
    monkeypatch.setattr(runtime.unit, "notifier", pushes)
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await deliver(client, event("charge.refunded", stripe_fake.charge(order["payment_intent_id"])), WEBHOOK_SECRET) == 200
    uid = user["user"]["id"]
    assert [p for p in pushes.sent if p[1] == "balance_updated"] == [
        (uid, "balance_updated", {"coins": 110}),
        (uid, "balance_updated", {"coins": 10}),
    ]
    # The credited purchase also raised one notification (commands/notifications.py).
    assert [p[1] for p in pushes.sent if p[1] != "balance_updated"] == ["new_notification"]


class DeadSockets:
    """A notifier whose every push fails, as when the Socket.IO channel is down."""

    async def emit_to_user(self, user_id: str, name: str, data: Any) -> None:
        """Fail."""
        raise ConnectionError("socket channel down")


async def test_a_failed_balance_push_never_undoes_the_credit(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO
) -> None:
    user, order = await buyer(client)
    monkeypatch.setattr(runtime.unit, "notifier", DeadSockets())
    evt = event("payment_intent.succeeded", stripe_fake.succeed(order["payment_intent_id"]))
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    assert await coins(client, user["access_token"]) == 110
    assert await verify_status(client, user["access_token"], order["payment_intent_id"]) == {"status": "completed", "coins": 100}
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    assert [entry["level"] for entry in lines if entry["event"] == "payment.notify_failed"] == ["warning"]
