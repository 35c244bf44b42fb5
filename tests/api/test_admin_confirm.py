"""Two-step confirmation of destructive admin actions: 409 with a token, then done exactly once."""

from __future__ import annotations

from typing import Any

from tests.support.accounts import auth, signup
from tests.support.admins import make_admin
from truebond import bootstrap
from truebond.clock import OffsetClock


async def _status(runtime: bootstrap.Runtime, user_id: str) -> str:
    doc = await runtime.unit.db["users"].find_one({"_id": user_id})
    return str(doc["status"])


async def test_suspend_without_a_token_changes_nothing_then_the_token_does_it_once(client: Any, runtime: bootstrap.Runtime) -> None:
    admin = await make_admin(client, runtime)
    user = await signup(client)
    uid = user["user"]["id"]
    url = f"/api/admin/users/{uid}/suspend"

    # The client sends suspend with no body at all.
    first = await client.post(url, headers=admin["headers"])
    body = await first.json()
    assert first.status == 409, body
    assert body["code"] == "confirmation_required"
    assert (body["expires_in"], body["action"], body["target_id"]) == (300, "suspend", uid)
    assert isinstance(body["confirm_token"], str) and len(body["confirm_token"]) >= 20
    assert await _status(runtime, uid) == "active"

    done = await client.post(url, json={"confirm_token": body["confirm_token"], "reason": "spam"}, headers=admin["headers"])
    assert done.status == 200, await done.text()
    assert await _status(runtime, uid) == "suspended"

    # Single use: the same token again is refused with a fresh one, and nothing more happens.
    again = await client.post(url, headers={**admin["headers"], "X-Confirm-Token": body["confirm_token"]})
    again_body = await again.json()
    assert again.status == 409 and again_body["confirm_token"] != body["confirm_token"]
    events = await runtime.unit.db["events"].find({"stream": f"user-{uid}", "type": "UserSuspended"}).to_list(None)
    assert len(events) == 1
    logs = await runtime.unit.db["adminLogs"].find({"action": "suspend", "target_id": uid}).to_list(None)
    assert len(logs) == 1
    assert (logs[0]["actor"], logs[0]["reason"], logs[0]["before"], logs[0]["after"]) == (
        f"admin:{admin['user_id']}",
        "spam",
        {"status": "active"},
        {"status": "suspended"},
    )
    assert logs[0]["request_id"]


async def test_foreign_admin_other_action_other_target_and_expired_tokens_are_refused(
    client: Any, runtime: bootstrap.Runtime, clock: OffsetClock
) -> None:
    admin, other_admin = await make_admin(client, runtime), await make_admin(client, runtime)
    victim, bystander = await signup(client), await signup(client)
    vid, bid = victim["user"]["id"], bystander["user"]["id"]

    async def token_for(url: str) -> str:
        resp = await client.post(url, headers=admin["headers"])
        assert resp.status == 409
        return str((await resp.json())["confirm_token"])

    suspend = f"/api/admin/users/{vid}/suspend"
    token = await token_for(suspend)
    # Another admin cannot use it.
    resp = await client.post(suspend, json={"confirm_token": token}, headers=other_admin["headers"])
    assert resp.status == 409
    # Nor for another action on the same target, nor the same action on another target.
    resp = await client.post(
        f"/api/admin/users/{vid}/shadow-ban", json={"confirm_token": await token_for(suspend)}, headers=admin["headers"]
    )
    assert resp.status == 409
    resp = await client.post(f"/api/admin/users/{bid}/suspend", json={"confirm_token": await token_for(suspend)}, headers=admin["headers"])
    assert resp.status == 409
    # An expired token (5 minutes) does nothing.
    late = await token_for(suspend)
    clock.advance(301)
    resp = await client.post(suspend, json={"confirm_token": late}, headers=admin["headers"])
    assert resp.status == 409
    assert await _status(runtime, vid) == "active" and await _status(runtime, bid) == "active"
    assert await runtime.unit.db["users"].find_one({"_id": vid, "shadow_banned": True}) is None
    assert await runtime.unit.db["adminLogs"].count_documents({"action": {"$in": ["suspend", "shadow_ban"]}}) == 0
    # The right token still works: an earlier, unexpired one was never used.
    fresh = await token_for(suspend)
    assert (await client.post(suspend, json={"confirm_token": fresh}, headers=admin["headers"])).status == 200
    assert await _status(runtime, vid) == "suspended"


async def test_reactivate_needs_no_token_and_is_audited(client: Any, runtime: bootstrap.Runtime) -> None:
    from tests.support.admins import confirmed_post

    admin = await make_admin(client, runtime)
    user = await signup(client)
    uid = user["user"]["id"]
    assert (await confirmed_post(client, f"/api/admin/users/{uid}/suspend", admin["headers"])).status == 200
    resp = await client.post(f"/api/admin/users/{uid}/reactivate", headers=admin["headers"])
    assert resp.status == 200, await resp.text()
    assert await _status(runtime, uid) == "active"
    relogin = await client.post("/api/auth/login", json={"email": user["user"]["email"], "password": "correct-horse-1"})
    assert relogin.status == 200
    actions = [d["action"] for d in await runtime.unit.db["adminLogs"].find({"target_id": uid}).sort("createdAt", 1).to_list(None)]
    assert actions == ["suspend", "reactivate"]


async def test_admins_cannot_act_on_themselves_or_a_plain_admin_on_admins(client: Any, runtime: bootstrap.Runtime) -> None:
    from tests.support.admins import confirmed_post

    admin, peer = await make_admin(client, runtime), await make_admin(client, runtime)
    own = await confirmed_post(client, f"/api/admin/users/{admin['user_id']}/suspend", admin["headers"])
    assert own.status == 403
    peer_resp = await confirmed_post(client, f"/api/admin/users/{peer['user_id']}/suspend", admin["headers"])
    assert peer_resp.status == 403
    assert (await client.get("/api/admin/me", headers=peer["headers"])).status == 200
    user = await signup(client)
    assert (await client.get("/api/auth/me", headers=auth(user["access_token"]))).status == 200
