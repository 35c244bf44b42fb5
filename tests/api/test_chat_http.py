"""Chat over HTTP: send with its coin, history and paging, conversations, read, and every refusal."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from tests.support import chat as chat_support
from tests.support.chat import coins, history, send, set_coins, two_users, uid
from truebond.bootstrap import Runtime
from truebond.projections import blocks

no_message_limit = chat_support.no_message_limit


async def test_a_message_costs_one_coin_and_shows_on_both_sides(client: Any) -> None:
    alice, bob = await two_users(client)
    status, body = await send(client, alice, bob, "hello bob")
    assert status == 200, body
    assert body["success"] is True and body["status"] == "sent"
    assert body["message"]["content"] == "hello bob" and body["message"]["is_mine"] is True
    assert await coins(client, alice) == 9
    assert await coins(client, bob) == 10

    mine = await history(client, alice, bob)
    theirs = await history(client, bob, alice)
    assert [m["id"] for m in mine["messages"]] == [body["message_id"]] == [m["id"] for m in theirs["messages"]]
    assert theirs["messages"][0]["is_mine"] is False and theirs["messages"][0]["sender_id"] == uid(alice)
    assert mine["messages"][0]["conversation_id"] == body["conversation_id"]

    ledger = await (await client.get("/api/credits/history", headers=chat_support.hdr(alice))).json()
    charge = ledger["transactions"][0]
    assert (charge["amount"], charge["reason"], charge["balance_after"]) == (-1, "MESSAGE", 9)


async def test_conversations_list_last_message_and_unread_until_read(client: Any) -> None:
    alice, bob = await two_users(client)
    for text in ("one", "two", "three"):
        assert (await send(client, alice, bob, text))[0] == 200
    listing = await (await client.get("/api/messages/conversations", headers=chat_support.hdr(bob))).json()
    assert listing["success"] is True and listing["count"] == 1
    item = listing["conversations"][0]
    assert (item["user_id"], item["name"], item["lastMessage"], item["unread"]) == (uid(alice), "Asha Rao", "three", 3)
    assert item["conversation_id"] == item["id"] and item["last_message_at"]

    resp = await client.post(f"/api/messages/read/{uid(alice)}", headers=chat_support.hdr(bob))
    assert (resp.status, await resp.json()) == (200, {"marked_read": 3})
    again = await client.post(f"/api/messages/read/{uid(alice)}", headers=chat_support.hdr(bob))
    assert await again.json() == {"marked_read": 0}
    listing = await (await client.get("/api/messages/conversations", headers=chat_support.hdr(bob))).json()
    assert listing["conversations"][0]["unread"] == 0
    seen_by_alice = await history(client, alice, bob)
    assert {(m["is_read"], m["status"]) for m in seen_by_alice["messages"]} == {(True, "read")}
    # The sender's own list counts nothing unread for her.
    mine = await (await client.get("/api/messages/conversations", headers=chat_support.hdr(alice))).json()
    assert mine["conversations"][0]["unread"] == 0


async def test_a_repeated_client_message_id_or_temp_id_answers_the_first_message_and_charges_once(client: Any) -> None:
    alice, bob = await two_users(client)
    first = await send(client, alice, bob, "hi", client_message_id="c-1")
    again = await send(client, alice, bob, "hi (retry)", client_message_id="c-1")
    assert first[0] == again[0] == 200
    assert first[1]["message_id"] == again[1]["message_id"] and again[1]["message"]["content"] == "hi"
    temp = await send(client, alice, bob, "yo", temp_id="t-9")
    temp_again = await send(client, alice, bob, "yo", temp_id="t-9")
    assert temp[1]["message_id"] == temp_again[1]["message_id"] != first[1]["message_id"]
    assert await coins(client, alice) == 8
    assert len((await history(client, bob, alice))["messages"]) == 2


async def test_short_balance_is_402_and_stores_nothing(client: Any, runtime: Runtime) -> None:
    alice, bob = await two_users(client)
    await set_coins(runtime, uid(alice), 0)
    status, body = await send(client, alice, bob)
    assert (status, body["code"]) == (402, "insufficient_coins")
    assert (await history(client, bob, alice))["messages"] == []
    assert await coins(client, alice) == 0


async def test_blocked_either_way_is_403(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = await two_users(client)
    pair = {uid(alice), uid(bob)}

    async def blocked(db: Any, a: str, b: str) -> bool:
        return {a, b} == pair

    monkeypatch.setattr(blocks, "blocked_either_way", blocked)
    for sender, receiver in ((alice, bob), (bob, alice)):
        status, body = await send(client, sender, receiver)
        assert (status, body["code"]) == (403, "forbidden")
    assert await coins(client, alice) == 10 and await coins(client, bob) == 10


async def test_a_conversation_id_that_is_not_the_pairs_is_403(client: Any) -> None:
    alice, bob = await two_users(client)
    carol = await chat_support.signup(client)
    _, theirs = await send(client, bob, carol, "private")
    status, body = await send(client, alice, bob, "sneak", conversation_id=theirs["conversation_id"])
    assert (status, body["code"]) == (403, "forbidden")
    _, ok = await send(client, alice, bob, "fine")
    status, body = await send(client, alice, bob, "fine again", conversation_id=ok["conversation_id"])
    assert status == 200 and body["conversation_id"] == ok["conversation_id"]
    assert await coins(client, alice) == 8


async def test_text_is_nfkc_normalised_masked_and_at_most_2000_characters(client: Any) -> None:
    alice, bob = await two_users(client)
    _, body = await send(client, alice, bob, "ｈｅｌｌｏ ① what the fuck")
    assert body["message"]["content"] == "hello 1 what the ****"
    # The limit counts characters after normalisation: one ligature is two letters.
    ligatures = "ﬀ" * 1001
    assert len(ligatures) <= 2000 < len(unicodedata.normalize("NFKC", ligatures))
    for content in ("x" * 2001, ligatures, "", "   ", "bad\x00byte"):
        status, body = await send(client, alice, bob, content)
        assert (status, body["code"]) == (422, "validation_error"), content[:10]
    assert (await send(client, alice, bob, "y" * 2000))[0] == 200
    assert await coins(client, alice) == 8


async def test_unknown_fields_and_bad_receivers_are_refused(client: Any) -> None:
    alice, bob = await two_users(client)
    status, _ = await send(client, alice, bob, "hi", coins=0)
    assert status == 422
    status, _ = await send(client, alice, alice, "me")
    assert status == 422
    resp = await client.post(chat_support.SEND, json={"receiver_id": "f" * 32, "content": "hi"}, headers=chat_support.hdr(alice))
    assert resp.status == 404
    assert await coins(client, alice) == 10


async def test_paging_with_before_loses_nothing_and_repeats_nothing(client: Any, no_message_limit: None) -> None:
    alice, bob = await two_users(client)
    sent = []
    for n in range(9):
        sender, receiver = (alice, bob) if n % 2 else (bob, alice)
        sent.append((await send(client, sender, receiver, f"m{n}"))[1]["message_id"])
    latest = await history(client, bob, alice, limit=4)
    assert latest["has_more"] is True
    seen = [m["id"] for m in latest["messages"]]
    before = seen[0]
    while True:
        page = await history(client, bob, alice, limit=4, before=before)
        seen = [m["id"] for m in page["messages"]] + seen
        if not page["has_more"]:
            break
        before = page["messages"][0]["id"]
    assert seen == sent


async def test_start_and_create_or_get_conversation(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = await two_users(client)
    resp = await client.post("/api/users/create-or-get-conversation", json={"user_id": uid(bob)}, headers=chat_support.hdr(alice))
    first = await resp.json()
    assert resp.status == 200 and first["existing"] is False and first["user"]["id"] == uid(bob)
    resp = await client.post("/api/users/create-or-get-conversation", json={"user_id": uid(bob)}, headers=chat_support.hdr(alice))
    assert (await resp.json())["existing"] is True
    resp = await client.post("/api/messages/start-conversation", json={"receiver_id": uid(alice)}, headers=chat_support.hdr(bob))
    started = await resp.json()
    assert started["conversation_id"] == first["conversation_id"] and started["user"]["id"] == uid(alice)
    assert "email" not in started["user"] and "coins" not in started["user"]
    listing = await (await client.get("/api/messages/conversations", headers=chat_support.hdr(alice))).json()
    assert [c["conversation_id"] for c in listing["conversations"]] == [first["conversation_id"]]

    async def blocked(db: Any, a: str, b: str) -> bool:
        return True

    monkeypatch.setattr(blocks, "blocked_either_way", blocked)
    carol = await chat_support.signup(client)
    resp = await client.post("/api/messages/start-conversation", json={"receiver_id": uid(carol)}, headers=chat_support.hdr(alice))
    assert resp.status == 403
