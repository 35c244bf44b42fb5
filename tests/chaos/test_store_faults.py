"""MongoDB write errors and timeouts injected between the event store and its collection.

What a client sees: 503 `dependency_unavailable`, never a 500 or a half-done answer. What the
store holds afterwards: either the whole event or nothing (one document per event, and each
insert is atomic in MongoDB), every hash chain intact and every read model equal to the one
re-derived from the events (`truebond verify`'s check). A retry with the same idempotency id (a
message's `client_message_id`, a Stripe event id) then succeeds exactly once: one message, one
coin, one credit, whether the failed attempt wrote nothing or wrote and lost its answer. A
signup that fails part-way (it writes to five streams) leaves either no trace that blocks a retry
or a complete account with its welcome coins once `truebond project` has run.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import NotPrimaryError

from tests.fakes.stripe_api import FakeStripe, event
from tests.support import payments_support
from tests.support.accounts import auth, signup_body
from tests.support.chaos import LOST_ANSWER, READ_TIMEOUT, REFUSED, Faults, inject
from tests.support.chat import coins, history, send, two_users, uid
from tests.support.payments_support import buyer, deliver, events_of_type, verify_status
from truebond.bootstrap import Runtime
from truebond.projections.follower import Projector
from truebond.verify import verify, verify_chains
from truebond.workers.reactions import reactions_follower

stripe_fake = payments_support.stripe_fake
settings = payments_support.settings


def of_type(name: str) -> Any:
    return lambda doc: isinstance(doc, dict) and doc.get("type") == name


def assert_unavailable(status: int, body: Any) -> None:
    assert status == 503, body
    assert body["code"] == "dependency_unavailable", body
    assert "injected" not in str(body) and "Traceback" not in str(body)


@pytest.mark.parametrize("mode", [REFUSED, LOST_ANSWER])
async def test_a_message_whose_write_fails_is_a_503_and_its_retry_sends_it_once(client: Any, runtime: Runtime, mode: str) -> None:
    alice, bob = await two_users(client)
    faults = inject(runtime, Faults())
    faults.add("insert_one", mode, of_type("MessageSent"))

    status, body = await send(client, alice, bob, "are you there?", client_message_id="cm-1")
    assert_unavailable(status, body)
    stored = await events_of_type(runtime, "MessageSent")
    assert len(stored) == (1 if mode == LOST_ANSWER else 0)  # the whole event or nothing

    first = await send(client, alice, bob, "are you there?", client_message_id="cm-1")
    again = await send(client, alice, bob, "are you there?", client_message_id="cm-1")
    assert first[0] == again[0] == 200, (first, again)
    assert first[1]["message_id"] == again[1]["message_id"]
    assert [e["_id"] for e in await events_of_type(runtime, "MessageSent")] == [f"msg:{uid(alice)}:cm-1"]
    assert await coins(client, alice) == 9
    seen = await history(client, bob, alice)
    assert [m["content"] for m in seen["messages"]] == ["are you there?"]
    assert faults.injected == [f"insert_one:{mode}"]
    assert await verify(runtime.unit) == []


async def test_a_read_timeout_in_the_store_is_a_503_and_changes_nothing(client: Any, runtime: Runtime) -> None:
    alice, bob = await two_users(client)
    faults = inject(runtime, Faults())
    faults.add("find_one", READ_TIMEOUT, times=1)
    status, body = await send(client, alice, bob, "hi", client_message_id="cm-2")
    assert_unavailable(status, body)
    assert await events_of_type(runtime, "MessageSent") == []
    assert (await send(client, alice, bob, "hi", client_message_id="cm-2"))[0] == 200
    assert await coins(client, alice) == 9
    assert await verify(runtime.unit) == []


@pytest.mark.parametrize(
    ("failing", "mode"),
    [("CreditsPurchased", REFUSED), ("CreditsPurchased", LOST_ANSWER), ("PaymentSucceeded", REFUSED), ("StripeEventReceived", LOST_ANSWER)],
)
async def test_a_webhook_whose_write_fails_is_a_503_and_its_redelivery_credits_once(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, failing: str, mode: str
) -> None:
    user, order = await buyer(client)
    token, intent = user["access_token"], order["payment_intent_id"]
    faults = inject(runtime, Faults())
    faults.add("insert_one", mode, of_type(failing))
    evt = event("payment_intent.succeeded", stripe_fake.succeed(intent))

    assert await deliver(client, evt) == 503  # Stripe retries a non-2xx delivery
    assert await deliver(client, evt) == 200
    assert await deliver(client, evt) == 200
    assert [c["_id"] for c in await events_of_type(runtime, "CreditsPurchased")] == [f"stripe-pi:{intent}"]
    assert len(await events_of_type(runtime, "PaymentSucceeded")) == 1
    resp = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert (await resp.json())["coins"] == 110
    assert await verify_status(client, token, intent) == {"status": "completed", "coins": 100}
    assert await verify(runtime.unit) == []


async def test_random_write_faults_under_retrying_clients_leave_every_message_once_and_the_store_verified(
    client: Any, runtime: Runtime
) -> None:
    users = [await two_users(client) for _ in range(3)]
    faults = inject(runtime, Faults(write_failure_rate=0.3))
    sent: dict[str, int] = {}
    for round_ in range(4):
        for i, (a, b) in enumerate(users):
            key = f"r{round_}-u{i}"
            for _attempt in range(20):
                status, body = await send(client, a, b, f"message {key}", client_message_id=key)
                if status == 200:
                    break
                assert_unavailable(status, body)
            else:
                raise AssertionError(f"{key} never went through")
            sent[uid(a)] = sent.get(uid(a), 0) + 1
    assert any(f.endswith(REFUSED) for f in faults.injected) and any(f.endswith(LOST_ANSWER) for f in faults.injected)
    faults.write_failure_rate = 0.0
    for a, b in users:
        assert await coins(client, a) == 10 - sent[uid(a)]
        seen = await history(client, b, a)
        assert [m["content"] for m in seen["messages"]] == [f"message r{r}-u{users.index((a, b))}" for r in range(4)]
    assert len(await events_of_type(runtime, "MessageSent")) == sum(sent.values())
    assert await verify_chains(runtime.unit) == []
    # A reaction's event (a notification) whose answer was lost is stored but not yet in its read
    # model; the projector (`truebond project`) heals exactly that, and then nothing differs.
    await Projector(runtime.unit.projections).run_once()
    assert await verify(runtime.unit) == []


async def test_a_read_model_write_failing_after_the_append_is_a_503_and_the_retry_heals_it(
    client: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await two_users(client)
    real_apply = runtime.unit.projections.apply
    failed: list[str] = []

    async def apply(rec: Any) -> None:
        if rec.type == "MessageSent" and not failed:
            failed.append(rec.id)
            raise NotPrimaryError("not primary (injected)")
        await real_apply(rec)

    monkeypatch.setattr(runtime.unit.projections, "apply", apply)
    status, body = await send(client, alice, bob, "still there?", client_message_id="cm-3")
    assert_unavailable(status, body)  # the event is stored, its read models are not: not a 500
    assert failed == [f"msg:{uid(alice)}:cm-3"]
    again = await send(client, alice, bob, "still there?", client_message_id="cm-3")
    assert again[0] == 200, again
    assert await coins(client, alice) == 9
    assert [m["content"] for m in (await history(client, bob, alice))["messages"]] == ["still there?"]
    assert await verify(runtime.unit) == []


@pytest.mark.parametrize(
    ("failing", "mode"), [("UserRegistered", REFUSED), ("UserRegistered", LOST_ANSWER), ("SignupBonusGranted", REFUSED)]
)
async def test_a_signup_whose_write_fails_is_a_503_and_leaves_an_account_that_works(
    client: Any, runtime: Runtime, failing: str, mode: str
) -> None:
    faults = inject(runtime, Faults())
    faults.add("insert_one", mode, of_type(failing))
    body = signup_body()
    first = await client.post("/api/auth/signup", json=body)
    assert_unavailable(first.status, await first.json())

    # What `truebond project` does continuously: heal read models, re-drive the reactions.
    await Projector(runtime.unit.projections).run_once()
    await reactions_follower(runtime.bus).run_once()
    retry = await client.post("/api/auth/signup", json=body)
    answer = await retry.json()
    if mode == REFUSED and failing == "UserRegistered":
        assert retry.status == 201, answer  # the failed signup gave its email and phone back
        token = answer["access_token"]
    else:  # the account was stored before the failure: it is taken, and its password logs in
        assert retry.status == 409, answer
        login = await client.post("/api/auth/login", json={"email": body["email"], "password": body["password"]})
        assert login.status == 200, await login.json()
        token = (await login.json())["access_token"]
    me = await client.get("/api/auth/me", headers=auth(token))
    assert (await me.json())["coins"] == 10  # the welcome bonus, once
    assert await runtime.unit.db["users"].count_documents({"email": body["email"]}) == 1
    assert await verify(runtime.unit) == []
