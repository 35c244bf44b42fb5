"""Block, unblock, list blocked and report, seen from both users' side."""

from __future__ import annotations

from typing import Any

from tests.support.accounts import auth, signup
from truebond import bootstrap
from truebond.projections import blocks


async def test_block_hides_the_pair_from_each_other_and_unblock_restores(client: Any, runtime: bootstrap.Runtime) -> None:
    alice, bob, carol = await signup(client), await signup(client), await signup(client)
    a, b = alice["user"]["id"], bob["user"]["id"]
    resp = await client.post(f"/api/users/block/{b}", json={"reason": "rude"}, headers=auth(alice["access_token"]))
    assert resp.status == 200, await resp.text()
    # Blocking again changes nothing.
    assert (await client.post(f"/api/users/block/{b}", headers=auth(alice["access_token"]))).status == 200

    # Neither sees the other's profile; a third user still sees both.
    assert (await client.get(f"/api/users/profile/{b}", headers=auth(alice["access_token"]))).status == 404
    assert (await client.get(f"/api/users/profile/{a}", headers=auth(bob["access_token"]))).status == 404
    assert (await client.get(f"/api/users/profile/{a}", headers=auth(carol["access_token"]))).status == 200

    listed = await (await client.get("/api/users/blocked", headers=auth(alice["access_token"]))).json()
    assert [u["id"] for u in listed["blocked_users"]] == [b]
    assert listed["blocked_users"][0]["name"] == "Asha Rao" and "email" not in listed["blocked_users"][0]
    assert (await (await client.get("/api/users/blocked", headers=auth(bob["access_token"]))).json())["blocked_users"] == []

    # The hooks chat, calls and discovery use answer the same, both ways.
    db = runtime.unit.db
    assert await blocks.blocked_either_way(db, a, b) and await blocks.blocked_either_way(db, b, a)
    assert not await blocks.blocked_either_way(db, a, carol["user"]["id"])
    assert await blocks.hidden_from(db, a) == {b} and await blocks.hidden_from(db, b) == {a}

    resp = await client.delete(f"/api/users/block/{b}", headers=auth(alice["access_token"]))
    assert resp.status == 200
    assert (await client.get(f"/api/users/profile/{b}", headers=auth(alice["access_token"]))).status == 200
    assert (await client.get(f"/api/users/profile/{a}", headers=auth(bob["access_token"]))).status == 200
    assert not await blocks.blocked_either_way(db, a, b)
    assert await blocks.hidden_from(db, b) == set()
    types = [e["type"] for e in await db["events"].find({"stream": f"safety-{a}"}).sort("version", 1).to_list(None)]
    assert types == ["UserBlocked", "UserUnblocked"]


async def test_block_refuses_self_and_unknown_users(client: Any) -> None:
    alice = await signup(client)
    me = alice["user"]["id"]
    assert (await client.post(f"/api/users/block/{me}", headers=auth(alice["access_token"]))).status == 422
    assert (await client.post("/api/users/block/" + "0" * 32, headers=auth(alice["access_token"]))).status == 404
    assert (await client.post(f"/api/users/block/{me}", json={"bogus": 1}, headers=auth(alice["access_token"]))).status == 422


async def test_report_is_validated_and_queued(client: Any, runtime: bootstrap.Runtime) -> None:
    alice, bob = await signup(client), await signup(client)
    b = bob["user"]["id"]
    url = f"/api/users/report/{b}"
    headers = auth(alice["access_token"])
    assert (await client.post(url, json={"reason": "too short", "report_type": "profile"}, headers=headers)).status == 422
    assert (await client.post(url, json={"reason": "a long enough reason", "report_type": "spam"}, headers=headers)).status == 422
    assert (await client.post(url, json={"reason": "x" * 501, "report_type": "photo"}, headers=headers)).status == 422
    resp = await client.post(url, json={"reason": "fake photos on this profile", "report_type": "photo"}, headers=headers)
    body = await resp.json()
    assert resp.status == 201, body
    doc = await runtime.unit.db["reports"].find_one({"_id": body["report_id"]})
    assert doc is not None
    assert (doc["status"], doc["reported_id"], doc["reporter_id"], doc["report_type"]) == ("pending", b, alice["user"]["id"], "photo")
    assert doc["reason"] == "fake photos on this profile"
    # The reason is personal text: encrypted in the event store.
    stored = await runtime.unit.db["events"].find_one({"_id": f"report:{body['report_id']}"})
    assert "fake photos" not in str(stored["data"]["reason"])
    assert (
        await client.post(
            f"/api/users/report/{alice['user']['id']}", json={"reason": "reporting myself now", "report_type": "other"}, headers=headers
        )
    ).status == 422
