"""Chat commands through the bus: one event per message with its coin, idempotency, receipts by the receiver."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.accounts import signup_body
from truebond.bootstrap import Runtime
from truebond.commands.bus import Context
from truebond.commands.chat import MarkDelivered, MarkRead, SendMessage, StartConversation
from truebond.commands.identity import Signup
from truebond.errors import NotFound, PaymentRequired
from truebond.events.chat import MessageDelivered, MessageSent, MessagesRead, conversation_id_of, conversation_stream
from truebond.projections import blocks
from truebond.projections import conversations as conversations_view
from truebond.projections.ledger import coins


async def _user(runtime: Runtime, n: int) -> str:
    result = await runtime.bus.handle(Signup(**signup_body()), Context(actor="anonymous"))
    return str(result.user_id)


def _as(user_id: str) -> Context:
    return Context(actor=f"user:{user_id}")


async def test_one_event_holds_the_message_and_its_coin_and_a_repeat_changes_nothing(runtime: Runtime) -> None:
    alice, bob = await _user(runtime, 1), await _user(runtime, 2)
    bus, unit = runtime.bus, runtime.unit
    first = await bus.handle(SendMessage(alice, bob, "hello", client_message_id="k1"), _as(alice))
    again = await bus.handle(SendMessage(alice, bob, "hello again", client_message_id="k1"), _as(alice))
    assert first.message_id == again.message_id and again.message["content"] == "hello"

    rec = await unit.store.get(f"msg:{alice}:k1")
    assert rec is not None and rec.stream == f"account-{alice}"
    event = rec.event
    assert isinstance(event, MessageSent)
    assert (event.amount, event.reason, event.balance_after, event.receiver_id) == (-1, "MESSAGE", 9, bob)
    assert await coins(unit.db, alice) == 9
    # The text is the sender's personal data: encrypted at rest.
    raw = await unit.db["events"].find_one({"_id": rec.id})
    assert raw["data"]["content"].startswith("enc:v1:")


async def test_short_balance_refuses_and_appends_nothing(runtime: Runtime) -> None:
    alice, bob = await _user(runtime, 1), await _user(runtime, 2)
    for n in range(10):
        await runtime.bus.handle(SendMessage(alice, bob, f"m{n}"), _as(alice))
    before = await runtime.unit.store.head(f"account-{alice}")
    with pytest.raises(PaymentRequired):
        await runtime.bus.handle(SendMessage(alice, bob, "one more"), _as(alice))
    assert await runtime.unit.store.head(f"account-{alice}") == before
    assert await coins(runtime.unit.db, alice) == 0


async def test_a_shadow_banned_senders_message_is_stored_hidden(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = await _user(runtime, 1), await _user(runtime, 2)

    async def banned(db: Any, user_id: str) -> bool:
        return user_id == alice

    monkeypatch.setattr(blocks, "shadow_banned", banned)
    sent = await runtime.bus.handle(SendMessage(alice, bob, "psst", client_message_id="h"), _as(alice))
    rec = await runtime.unit.store.get(f"msg:{alice}:h")
    assert rec is not None and isinstance(rec.event, MessageSent) and rec.event.hidden is True
    assert sent.status == "sent"
    doc = await conversations_view.get(runtime.unit.db, sent.conversation_id)
    assert doc is not None and doc["visible_to"] == [alice]


async def test_receipts_only_by_the_receiver_once_each(runtime: Runtime) -> None:
    alice, bob, carol = await _user(runtime, 1), await _user(runtime, 2), await _user(runtime, 3)
    bus, store = runtime.bus, runtime.unit.store
    sent = await bus.handle(SendMessage(alice, bob, "hi"), _as(alice))
    stream = conversation_stream(sent.conversation_id)
    for who in (alice, carol):
        with pytest.raises(NotFound):
            await bus.handle(MarkDelivered(who, sent.message_id), _as(who))
    with pytest.raises(NotFound):
        await bus.handle(MarkRead(carol, alice), _as(carol))
    assert [r.event for r in await store.load(stream)] == []

    await bus.handle(MarkDelivered(bob, sent.message_id, alice), _as(bob))
    await bus.handle(MarkDelivered(bob, sent.message_id, alice), _as(bob))
    assert await bus.handle(MarkRead(bob, alice), _as(bob)) == 1
    assert await bus.handle(MarkRead(bob, alice), _as(bob)) == 0
    kinds = [type(r.event) for r in await store.load(stream)]
    assert kinds == [MessageDelivered, MessagesRead]


async def test_start_conversation_is_create_or_get_per_participant(runtime: Runtime) -> None:
    alice, bob = await _user(runtime, 1), await _user(runtime, 2)
    bus = runtime.bus
    first = await bus.handle(StartConversation(alice, bob), _as(alice))
    again = await bus.handle(StartConversation(alice, bob), _as(alice))
    theirs = await bus.handle(StartConversation(bob, alice), _as(bob))
    assert (first.existing, again.existing, theirs.existing) == (False, True, False)
    assert first.conversation_id == theirs.conversation_id == conversation_id_of(bob, alice)
    assert len(await runtime.unit.store.load(conversation_stream(first.conversation_id))) == 2
