"""Referral: a signup with a valid code credits the referrer 50 coins, once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.accounts import auth, signup
from truebond import bootstrap
from truebond.commands.account import GrantReferralReward
from truebond.commands.bus import Context
from truebond.workers.reactions import reactions_follower


async def coins(client: Any, token: str) -> int:
    """The caller's coins as /api/auth/me shows them."""
    me = await (await client.get("/api/auth/me", headers=auth(token))).json()
    return int(me["coins"])


async def referral_code(runtime: bootstrap.Runtime, user_id: str) -> str:
    """A user's referral code from the read model."""
    doc = await runtime.unit.db["users"].find_one({"_id": user_id})
    return str(doc["referral_code"])


async def test_referrer_gets_fifty_coins_once(client: Any, runtime: bootstrap.Runtime) -> None:
    referrer = await signup(client)
    code = await referral_code(runtime, referrer["user"]["id"])
    referred = await signup(client, referral_code=code)
    assert referred["user"]["coins"] == 10  # the new user gets nothing extra
    assert await coins(client, referrer["access_token"]) == 60

    # Redelivery and races add nothing.
    grant = GrantReferralReward(referrer_id=referrer["user"]["id"], referred_id=referred["user"]["id"])
    results = await asyncio.gather(*(runtime.bus.handle(grant, Context.system("reactions")) for _ in range(5)))
    assert not any(r.created for r in results)
    assert await coins(client, referrer["access_token"]) == 60
    history = [d async for d in runtime.unit.db["credit_transactions"].find({"user_id": referrer["user"]["id"]})]
    assert sorted((h["reason"], h["amount"]) for h in history) == [("referral", 50), ("signup_bonus", 10)]
    assert await runtime.unit.store.get(f"referral:{referred['user']['id']}") is not None


async def test_two_referrals_credit_twice(client: Any, runtime: bootstrap.Runtime) -> None:
    referrer = await signup(client)
    code = await referral_code(runtime, referrer["user"]["id"])
    await asyncio.gather(signup(client, referral_code=code), signup(client, referral_code=code))
    assert await coins(client, referrer["access_token"]) == 110


async def test_unknown_or_deleted_referral_codes_credit_nobody(client: Any, runtime: bootstrap.Runtime) -> None:
    unknown = await signup(client, referral_code="NOSUCHCODE")
    assert unknown["user"]["coins"] == 10

    referrer = await signup(client)
    code = await referral_code(runtime, referrer["user"]["id"])
    assert (await client.delete("/api/users/account", headers=auth(referrer["access_token"]))).status == 200
    await signup(client, referral_code=code)
    balance = await runtime.unit.db["balances"].find_one({"_id": referrer["user"]["id"]})
    assert balance["coins"] == 10


async def test_a_lost_referral_reward_is_redriven_from_the_store_once(
    client: Any, runtime: bootstrap.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reward is a reaction to UserRegistered: lost in-process, the reactions follower pays it."""
    referrer = await signup(client)
    code = await referral_code(runtime, referrer["user"]["id"])

    async def credit_down(*args: Any) -> None:
        raise ConnectionError("mongodb unavailable")

    with monkeypatch.context() as patched:
        patched.setitem(runtime.bus.handlers, GrantReferralReward, credit_down)
        referred = await signup(client, referral_code=code)
    assert referred["user"]["coins"] == 10  # the signup itself is unaffected
    assert await coins(client, referrer["access_token"]) == 10

    follower = reactions_follower(runtime.bus)
    assert await follower.run_once() > 0
    assert await coins(client, referrer["access_token"]) == 60
    await reactions_follower(runtime.bus).run_once()  # a restarted follower re-reads its overlap: still once
    assert await coins(client, referrer["access_token"]) == 60
    reward = await runtime.unit.store.get(f"referral:{referred['user']['id']}")
    assert reward is not None and (reward.meta.actor, reward.meta.causation_id) == ("system", f"signup:{referred['user']['id']}")
