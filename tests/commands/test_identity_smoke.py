"""The signup bonus as a ledger event, and /api/auth/me exactly as API.md lists it."""

from __future__ import annotations

from typing import Any

from tests.support.accounts import auth, signup
from truebond import bootstrap
from truebond.events.ledger import SignupBonusGranted

ME_FIELDS = {
    "id",
    "name",
    "email",
    "age",
    "gender",
    "bio",
    "profile_picture",
    "profile_pictures",
    "preferences",
    "intent",
    "location",
    "is_online",
    "is_verified",
    "coins",
    "credits_balance",
    "role",
}


async def test_signup_gives_ten_coins_and_me_shows_them(client: Any) -> None:
    body = await signup(client)
    assert body["user"]["coins"] == 10
    assert body["token_type"] == "bearer"
    resp = await client.get("/api/auth/me", headers=auth(body["access_token"]))
    me = await resp.json()
    assert resp.status == 200, me
    assert me["coins"] == 10
    assert me["role"] == "user"


async def test_the_signup_bonus_is_one_event_on_the_new_accounts_ledger_stream(client: Any, runtime: bootstrap.Runtime) -> None:
    body = await signup(client)
    user_id = body["user"]["id"]

    ledger = await runtime.unit.store.load(f"account-{user_id}")

    assert [(r.id, r.version, type(r.event)) for r in ledger] == [(f"signup-bonus:{user_id}", 1, SignupBonusGranted)]
    bonus = ledger[0].event
    assert isinstance(bonus, SignupBonusGranted)
    assert (bonus.user_id, bonus.amount, bonus.balance_after, bonus.reason) == (user_id, 10, 10, "signup_bonus")
    assert ledger[0].meta.actor == f"user:{user_id}"
    # The coins the client sees come from that event (the balance read model), nowhere else.
    assert await runtime.unit.db["balances"].find_one({"_id": user_id}, projection={"_id": 0, "coins": 1, "_v": 1}) == {
        "coins": 10,
        "_v": 1,
    }


async def test_me_answers_exactly_the_fields_of_api_md(client: Any) -> None:
    body = await signup(client, city="Pune", address_line="12 MG Road")
    resp = await client.get("/api/auth/me", headers=auth(body["access_token"]))
    me = await resp.json()
    assert resp.status == 200, me
    assert set(me) == ME_FIELDS
    assert (me["id"], me["email"], me["name"], me["coins"], me["role"]) == (
        body["user"]["id"],
        body["user"]["email"],
        "Asha Rao",
        10,
        "user",
    )
    assert me["location"] is None and me["profile_picture"] is None and me["profile_pictures"] == []
    assert me["is_verified"] is False and me["is_online"] is False
    assert me["preferences"] == {"interested_in": "male", "min_age": 24, "max_age": 35, "max_distance_km": 25}
