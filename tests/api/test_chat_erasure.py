"""Deleting an account shreds the text of the messages it sent, in the read model as in the events."""

from __future__ import annotations

from typing import Any

from tests.support.chat import hdr, history, send, two_users, uid
from truebond import bootstrap
from truebond.events.crypto import ERASED
from truebond.projections import messages as messages_view


async def _sent_by(runtime: bootstrap.Runtime, user_id: str) -> list[dict[str, Any]]:
    return [doc async for doc in runtime.unit.db[messages_view.MESSAGES.collection].find({"sender_id": user_id})]


async def test_a_deleted_senders_messages_keep_no_readable_text(client: Any, runtime: bootstrap.Runtime) -> None:
    alice, bob = await two_users(client)
    assert (await send(client, alice, bob, "meet me at the old mill at 9"))[0] == 200
    assert (await send(client, bob, alice, "see you there"))[0] == 200
    before = await history(client, bob, alice)
    assert "meet me at the old mill at 9" in [m["content"] for m in before["messages"]]

    resp = await client.delete("/api/users/account", headers=hdr(alice))
    assert resp.status == 200, await resp.json()

    docs = await _sent_by(runtime, uid(alice))
    assert docs and all(doc["content"] == ERASED for doc in docs)
    # The receiver's own message is theirs: it stays.
    assert [doc["content"] for doc in await _sent_by(runtime, uid(bob))] == ["see you there"]


async def test_the_read_model_after_erasure_equals_a_replay(client: Any, runtime: bootstrap.Runtime) -> None:
    alice, bob = await two_users(client)
    assert (await send(client, alice, bob, "a secret only alice wrote"))[0] == 200
    assert (await client.delete("/api/users/account", headers=hdr(alice))).status == 200
    live = {doc["_id"]: doc["content"] for doc in await _sent_by(runtime, uid(alice))}

    await runtime.unit.projections.replay(["messages"])

    replayed = {doc["_id"]: doc["content"] for doc in await _sent_by(runtime, uid(alice))}
    assert live == replayed == dict.fromkeys(live, ERASED)
