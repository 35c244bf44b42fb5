"""`truebond payments reconcile`: succeeded intents that never got their webhook are credited, once."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import time
import uuid
from typing import Any

import pytest

from tests.fakes.stripe_api import FAKE_SECRET_KEY, FakeStripe, event
from tests.support import payments_support
from tests.support.accounts import signup
from tests.support.payments_support import coins, deliver, place_order
from tests.support.secrets import TEST_JWT_SECRET, WEBHOOK_SECRET
from truebond import __main__ as cli
from truebond import bootstrap
from truebond.adapters import stripe_gateway
from truebond.bootstrap import Runtime
from truebond.commands import payments
from truebond.commands.bus import Context
from truebond.commands.identity import Signup
from truebond.config import load_settings
from truebond.errors import DependencyDown
from truebond.logging import configure_logging
from truebond.projections import ledger as ledger_view

# The fake Stripe, and this module's settings pointing the app at it (fixtures).
stripe_fake = payments_support.stripe_fake
settings = payments_support.settings

RECONCILE = Context.system("reconcile")


async def test_reconcile_credits_missing_ones_once_and_refuses_what_disagrees(
    client: Any, runtime: Runtime, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe_gateway, "LIST_PAGE_SIZE", 2)  # several pages from the fake
    delivered, missed, tampered, unpaid = [await signup(client) for _ in range(4)]
    orders = {}
    for name, user in (("delivered", delivered), ("missed", missed), ("tampered", tampered), ("unpaid", unpaid)):
        orders[name] = await place_order(client, user["access_token"], "popular")
    for name in ("delivered", "missed", "tampered"):
        stripe_fake.succeed(orders[name]["payment_intent_id"])
    stripe_fake.intents[orders["tampered"]["payment_intent_id"]]["amount"] = 100
    # The webhook of `delivered` arrived; the one of `missed` never did.
    evt = event("payment_intent.succeeded", stripe_fake.intents[orders["delivered"]["payment_intent_id"]])
    assert await deliver(client, evt, WEBHOOK_SECRET) == 200
    # Other things on the same Stripe account: not ours, and one claiming to be ours.
    stripe_fake.add_intent(99900, metadata={"shop_order": "A-17"})
    forged = stripe_fake.add_intent(45000, metadata={"user_id": missed["user"]["id"], "package_id": "popular", "payment_id": "f" * 32})
    old = stripe_fake.add_intent(45000, metadata={"user_id": "x", "package_id": "popular", "payment_id": "o" * 32})
    stripe_fake.intents[old["id"]]["created"] = int(time.time()) - 10 * 86400

    report = await runtime.bus.handle(payments.Reconcile(since_days=7), RECONCILE)

    assert (report.checked, report.credited, report.already_credited, report.foreign) == (5, 1, 1, 1)
    assert sorted(report.rejected) == sorted(
        [(orders["tampered"]["payment_intent_id"], "amount_mismatch"), (forged["id"], "unknown_intent")]
    )
    assert await coins(client, missed["access_token"]) == 510
    assert await coins(client, delivered["access_token"]) == 510
    assert await coins(client, tampered["access_token"]) == 10
    assert await coins(client, unpaid["access_token"]) == 10
    missed_doc = await runtime.unit.db["payments"].find_one({"_id": orders["missed"]["payment_intent_id"]})
    assert missed_doc["status"] == "completed"
    tampered_doc = await runtime.unit.db["payments"].find_one({"_id": orders["tampered"]["payment_intent_id"]})
    assert tampered_doc["status"] == "rejected"
    list_calls = [r for r in stripe_fake.requests if r["method"] == "GET"]
    assert len(list_calls) >= 3 and all(int(r["query"]["created[gte]"]) <= int(time.time()) - 7 * 86400 + 5 for r in list_calls)

    # Running it again (or the late webhook arriving) credits nothing more.
    again = await runtime.bus.handle(payments.Reconcile(since_days=7), RECONCILE)
    assert (again.credited, again.already_credited) == (0, 2)
    late = event("payment_intent.succeeded", stripe_fake.intents[orders["missed"]["payment_intent_id"]])
    assert await deliver(client, late, WEBHOOK_SECRET) == 200
    assert await coins(client, missed["access_token"]) == 510
    assert await runtime.unit.db["events"].count_documents({"type": "CreditsPurchased"}) == 2


async def test_reconcile_reports_stripe_being_down(runtime: Runtime, stripe_fake: FakeStripe) -> None:
    stripe_fake.fail_next = 100
    with pytest.raises(DependencyDown):
        await runtime.bus.handle(payments.Reconcile(since_days=1), RECONCILE)


# -- the command line ------------------------------------------------------------------------------


def _run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(args))
    return code, out.getvalue()


async def test_reconcile_command_credits_through_the_gateway(
    redis_url: str, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"reconcile{uuid.uuid4().hex[:10]}"
    env = {"MONGO_URL": f"mongomock://{name}", "REDIS_URL": redis_url, "STRIPE_SECRET_KEY": FAKE_SECRET_KEY}
    settings = load_settings("test", {**env, "JWT_SECRET": TEST_JWT_SECRET}, stripe_api_base=stripe_fake.url)
    runtime = await bootstrap.build(settings, fast_hashing=True)
    try:
        await bootstrap.ensure_indexes(runtime.unit)
        signup_cmd = Signup(
            name="Ravi Kumar",
            email="ravi@example.com",
            mobile_number="9876500011",
            password="correct-horse-1",
            age=31,
            gender="male",
            interested_in="female",
            intent="dating",
            min_age=25,
            max_age=35,
            max_distance_km=30,
        )
        tokens = await runtime.bus.handle(signup_cmd, Context(actor="anonymous", ip="127.0.0.x", device="pytest"))
        order = await runtime.bus.handle(
            payments.PlaceOrder(user_id=tokens.user_id, package_id="premium"), Context(actor=f"user:{tokens.user_id}")
        )
        stripe_fake.succeed(order.intent_id)

        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(cli, "configure_logging", functools.partial(configure_logging, stream=io.StringIO()))
        args = ("payments", "reconcile", "--since", "2", "--stripe-api-base", stripe_fake.url)

        code, out = await asyncio.to_thread(_run_cli, *args)
        assert code == 0, out
        assert "1 credited" in out and order.intent_id not in out
        assert await ledger_view.coins(runtime.unit.db, tokens.user_id) == 1010

        code, out = await asyncio.to_thread(_run_cli, *args)
        assert code == 0 and "0 credited, 1 already credited" in out
        assert await ledger_view.coins(runtime.unit.db, tokens.user_id) == 1010

        stripe_fake.fail_next = 100
        code, out = await asyncio.to_thread(_run_cli, *args)
        assert code == 1 and "unavailable" in out

        monkeypatch.delenv("STRIPE_SECRET_KEY")
        code, out = await asyncio.to_thread(_run_cli, *args)
        assert code == 2 and "STRIPE_SECRET_KEY" in out
    finally:
        await runtime.close()
        bootstrap._MOCK_CLIENTS.pop(name, None)
        configure_logging(json=True)
