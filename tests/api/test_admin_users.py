"""Admin users list and detail, shadow-ban invisibility, coin adjustments through the ledger."""

from __future__ import annotations

from typing import Any

from tests.support.accounts import auth, signup
from tests.support.admins import confirmed_post, make_admin
from truebond import bootstrap
from truebond.projections import blocks


async def test_users_list_pages_filters_and_searches_literally(client: Any, runtime: bootstrap.Runtime) -> None:
    admin = await make_admin(client, runtime)
    dotted = await signup(client, name="A.B Star")
    plain = await signup(client, name="Aab Plain")
    headers = admin["headers"]

    found = await (await client.get("/api/admin/users", params={"search": "A.B"}, headers=headers)).json()
    assert [u["id"] for u in found["users"]] == [dotted["user"]["id"]]
    # Metacharacters are literal: ".*" matches nobody, "a.b" does not match "Aab".
    assert (await (await client.get("/api/admin/users", params={"search": ".*"}, headers=headers)).json())["users"] == []
    assert (await (await client.get("/api/admin/users", params={"search": "(("}, headers=headers)).json())["users"] == []
    by_email = await (await client.get("/api/admin/users", params={"search": plain["user"]["email"][:8]}, headers=headers)).json()
    assert plain["user"]["id"] in [u["id"] for u in by_email["users"]]

    page = await (await client.get("/api/admin/users", params={"limit": 2, "page": 1}, headers=headers)).json()
    assert len(page["users"]) == 2 and page["total"] == 3 and page["pages"] == 2
    assert (await client.get("/api/admin/users", params={"limit": 101}, headers=headers)).status == 422
    assert (await client.get("/api/admin/users", params={"status": "weird"}, headers=headers)).status == 422

    await confirmed_post(client, f"/api/admin/users/{plain['user']['id']}/suspend", headers)
    suspended = await (await client.get("/api/admin/users", params={"status": "suspended"}, headers=headers)).json()
    assert [u["id"] for u in suspended["users"]] == [plain["user"]["id"]]
    row = suspended["users"][0]
    assert row["coins"] == 10 and row["status"] == "suspended"
    assert "password_hash" not in row


async def test_user_detail_shows_coins_and_ledger_never_hashes(client: Any, runtime: bootstrap.Runtime) -> None:
    admin = await make_admin(client, runtime)
    user = await signup(client)
    uid = user["user"]["id"]
    resp = await client.get(f"/api/admin/users/{uid}", headers=admin["headers"])
    body = await resp.json()
    assert resp.status == 200, body
    assert body["user"]["coins"] == 10
    assert [t["reason"] for t in body["user"]["recent_transactions"]] == ["signup_bonus"]
    text = await resp.text()
    assert "password_hash" not in text and "argon2" not in text and "fcm_tokens" not in text
    assert (await client.get("/api/admin/users/" + "0" * 32, headers=admin["headers"])).status == 404


async def test_shadow_ban_is_invisible_to_the_banned_user_and_hides_them_from_others(client: Any, runtime: bootstrap.Runtime) -> None:
    admin = await make_admin(client, runtime)
    banned, other = await signup(client), await signup(client)
    bid = banned["user"]["id"]
    before_me = await (await client.get("/api/auth/me", headers=auth(banned["access_token"]))).json()

    resp = await confirmed_post(client, f"/api/admin/users/{bid}/shadow-ban", admin["headers"], json={"reason": "spam bot"})
    assert resp.status == 200, await resp.text()

    # The banned user sees exactly what they saw before: their own account and profile, others' profiles.
    after_me = await (await client.get("/api/auth/me", headers=auth(banned["access_token"]))).json()
    assert after_me == before_me
    own = await client.get(f"/api/users/profile/{bid}", headers=auth(banned["access_token"]))
    assert own.status == 200 and "shadow" not in await own.text()
    assert (await client.get(f"/api/users/profile/{other['user']['id']}", headers=auth(banned["access_token"]))).status == 200
    assert "shadow" not in await (await client.get("/api/settings", headers=auth(banned["access_token"]))).text()
    # Everyone else no longer sees them; the hooks say so for chat, calls and discovery.
    assert (await client.get(f"/api/users/profile/{bid}", headers=auth(other["access_token"]))).status == 404
    db = runtime.unit.db
    assert await blocks.shadow_banned(db, bid)
    assert bid in await blocks.hidden_from(db, other["user"]["id"])
    assert bid not in await blocks.hidden_from(db, bid)

    lifted = await client.post(f"/api/admin/users/{bid}/unshadow-ban", headers=admin["headers"])
    assert lifted.status == 200
    assert (await client.get(f"/api/users/profile/{bid}", headers=auth(other["access_token"]))).status == 200
    assert not await blocks.shadow_banned(db, bid)
    actions = [d["action"] for d in await db["adminLogs"].find({"target_id": bid}).sort("createdAt", 1).to_list(None)]
    assert actions == ["shadow_ban", "unshadow_ban"]


async def test_adjust_credits_from_the_query_string_never_below_zero(client: Any, runtime: bootstrap.Runtime) -> None:
    boss, admin = await make_admin(client, runtime, "super_admin"), await make_admin(client, runtime)
    user = await signup(client)
    uid = user["user"]["id"]
    url = f"/api/admin/users/{uid}/adjust-credits"

    # A plain admin may not.
    assert (await client.post(url, params={"amount": "5", "reason": "goodwill"}, headers=admin["headers"])).status == 403
    # As the client sends it: ?amount=&reason=, no body.
    resp = await confirmed_post(client, url, boss["headers"], params={"amount": "25", "reason": "goodwill"})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["coins"] == 35
    # Withdrawing more than the balance is refused and changes nothing.
    resp = await confirmed_post(client, url, boss["headers"], params={"amount": "-36", "reason": "chargeback"})
    assert resp.status == 409 and (await resp.json())["code"] == "balance_below_zero"
    # In the body works too; down to exactly zero is fine.
    resp = await confirmed_post(client, url, boss["headers"], json={"amount": -35, "reason": "chargeback"})
    assert resp.status == 200 and (await resp.json())["coins"] == 0
    me = await (await client.get("/api/auth/me", headers=auth(user["access_token"]))).json()
    assert me["coins"] == 0
    history = await (await client.get("/api/credits/history", headers=auth(user["access_token"]))).json()
    assert [t["amount"] for t in history["transactions"]] == [-35, 25, 10]
    # No amount, zero, out of range or no reason: 422 before any token is issued.
    for params in ({"reason": "x"}, {"amount": "0", "reason": "x"}, {"amount": "100001", "reason": "x"}, {"amount": "5"}):
        assert (await client.post(url, params=params, headers=boss["headers"])).status == 422, params
    logs = await runtime.unit.db["adminLogs"].find({"action": "adjust_credits", "target_id": uid}).sort("createdAt", 1).to_list(None)
    assert [(d["before"]["coins"], d["after"]["coins"], d["reason"]) for d in logs] == [(10, 35, "goodwill"), (35, 0, "chargeback")]
    assert all(d["actor"] == f"admin:{boss['user_id']}" for d in logs)
