"""The field names the unchanged web client reads (API.md, last section), with its exact requests."""

from __future__ import annotations

from typing import Any

from tests.support.accounts import auth, signup, signup_body
from truebond import bootstrap
from truebond.commands.bus import Context
from truebond.commands.ledger import deduct
from truebond.projections import presence as presence_view


async def test_every_user_object_carries_credits_balance_equal_to_coins(client: Any) -> None:
    body = signup_body()
    created = await signup(client, **body)
    assert created["user"]["credits_balance"] == created["user"]["coins"] == 10

    login = await client.post("/api/auth/login", json={"email": created["user"]["email"], "password": body["password"]})
    logged = await login.json()
    assert login.status == 200, logged
    assert logged["user"]["credits_balance"] == logged["user"]["coins"] == 10

    refreshed = await client.post("/api/auth/refresh", json={"refresh_token": logged["refresh_token"]})
    fresh = await refreshed.json()
    assert refreshed.status == 200, fresh
    assert fresh["user"]["id"] == created["user"]["id"]
    assert fresh["user"]["credits_balance"] == fresh["user"]["coins"] == 10

    me = await (await client.get("/api/auth/me", headers=auth(fresh["access_token"]))).json()
    assert me["credits_balance"] == me["coins"] == 10


async def test_credits_balance_follows_spending(client: Any, runtime: bootstrap.Runtime) -> None:
    user = await signup(client)
    uid = user["user"]["id"]
    await deduct(
        runtime.unit, uid, 3, reason="message", reference="msg:1", event_id=f"msg:{uid}:1", meta=Context(actor=f"user:{uid}").meta()
    )
    me = await (await client.get("/api/auth/me", headers=auth(user["access_token"]))).json()
    assert me["credits_balance"] == me["coins"] == 7


async def test_packages_are_listed_starter_popular_premium(client: Any) -> None:
    body = await (await client.get("/api/payments/packages")).json()
    assert [p["id"] for p in body["packages"]] == ["starter", "popular", "premium"]


async def test_credit_history_reasons_are_the_clients_upper_case_codes(client: Any, runtime: bootstrap.Runtime) -> None:
    user = await signup(client)
    uid = user["user"]["id"]
    await deduct(
        runtime.unit, uid, 1, reason="message", reference="msg:1", event_id=f"msg:{uid}:1", meta=Context(actor=f"user:{uid}").meta()
    )
    resp = await client.get("/api/credits/history", headers=auth(user["access_token"]))
    reasons = [t["reason"] for t in (await resp.json())["transactions"]]
    assert reasons == ["MESSAGE", "SIGNUP_BONUS"]


async def test_public_profile_carries_profile_pictures(client: Any) -> None:
    alice, bob = await signup(client), await signup(client)
    resp = await client.get(f"/api/users/profile/{bob['user']['id']}", headers=auth(alice["access_token"]))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["profile_pictures"] == body["photos"] == []


async def test_settings_answer_and_take_the_clients_keys_one_section_at_a_time(client: Any) -> None:
    user = await signup(client)
    token = user["access_token"]
    settings = (await (await client.get("/api/settings", headers=auth(token))).json())["settings"]
    assert set(settings["notifications"]) == {"messages", "matches", "nearby", "marketing"}
    assert set(settings["privacy"]) == {"show_online", "show_last_seen", "show_distance"}
    assert set(settings["safety"]) == {"block_screenshots", "require_verified_matches", "hide_from_search"}
    assert {"dark_mode", "language"} <= set(settings)
    for section in (
        {"notifications": {"messages": False, "matches": False, "nearby": False, "marketing": True}},
        {"privacy": {"show_online": False, "show_last_seen": False, "show_distance": False}},
        {"safety": {"block_screenshots": True, "require_verified_matches": True, "hide_from_search": True}},
        {"dark_mode": True},
        {"language": "hi"},
    ):
        resp = await client.post("/api/settings", json=section, headers=auth(token))
        assert resp.status == 200, await resp.text()
    final = (await (await client.get("/api/settings", headers=auth(token))).json())["settings"]
    assert final == {
        "notifications": {"messages": False, "matches": False, "nearby": False, "marketing": True},
        "privacy": {"show_online": False, "show_last_seen": False, "show_distance": False},
        "safety": {"block_screenshots": True, "require_verified_matches": True, "hide_from_search": True},
        "dark_mode": True,
        "language": "hi",
    }


async def test_show_online_off_hides_presence_on_the_public_profile(client: Any, runtime: bootstrap.Runtime) -> None:
    alice, bob = await signup(client), await signup(client)
    bob_id = bob["user"]["id"]
    # Bob is online: a lease of one live connection, as his socket's connect opens it.
    await presence_view.presence_of(runtime.unit).open(bob_id, "sid-of-bob")
    url = f"/api/users/profile/{bob_id}"
    assert (await (await client.get(url, headers=auth(alice["access_token"]))).json())["is_online"] is True
    await client.post("/api/settings", json={"privacy": {"show_online": False}}, headers=auth(bob["access_token"]))
    assert (await (await client.get(url, headers=auth(alice["access_token"]))).json())["is_online"] is False
