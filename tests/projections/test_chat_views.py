"""The conversations and messages read models: who shares a conversation, redelivery, replay equals live."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.accounts import signup_body
from truebond.bootstrap import Runtime
from truebond.commands.bus import Context
from truebond.commands.chat import MarkDelivered, MarkRead, SendMessage, StartConversation
from truebond.commands.identity import Signup
from truebond.projections import blocks
from truebond.projections import conversations as conversations_view
from truebond.projections.catalog import ALL_VIEWS


async def _user(runtime: Runtime) -> str:
    return str((await runtime.bus.handle(Signup(**signup_body()), Context(actor="anonymous"))).user_id)


def _as(user_id: str) -> Context:
    return Context(actor=f"user:{user_id}")


async def _chatter(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str, str]:
    alice, bob, carol, dan = [await _user(runtime) for _ in range(4)]
    bus = runtime.bus
    for n in range(3):
        await bus.handle(SendMessage(alice, bob, f"a{n}"), _as(alice))
        sent = await bus.handle(SendMessage(bob, alice, f"b{n}"), _as(bob))
    await bus.handle(MarkDelivered(alice, sent.message_id, bob), _as(alice))
    await bus.handle(MarkRead(alice, bob), _as(alice))
    await bus.handle(StartConversation(carol, alice), _as(carol))

    async def banned(db: Any, user_id: str) -> bool:
        return user_id == dan

    monkeypatch.setattr(blocks, "shadow_banned", banned)
    await bus.handle(SendMessage(dan, alice, "hidden"), _as(dan))
    return alice, bob, carol, dan


async def test_partner_ids_are_the_users_who_see_a_conversation_with_that_user(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob, carol, dan = await _chatter(runtime, monkeypatch)
    db = runtime.unit.db
    assert await conversations_view.partner_ids(db, alice) == sorted([bob, carol, dan])
    assert await conversations_view.partner_ids(db, bob) == [alice]
    # Alice never saw Carol's opened conversation nor Dan's hidden message.
    assert await conversations_view.partner_ids(db, carol) == []
    assert await conversations_view.partner_ids(db, dan) == []


async def test_redelivered_and_reordered_events_leave_the_read_models_as_replay_builds_them(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _chatter(runtime, monkeypatch)
    unit = runtime.unit
    events = [rec async for rec in unit.store.all_events()]
    chat_views = [v for v in ALL_VIEWS if v.name in ("messages", "conversations")]
    # The projector delivers at least once, and its overlap window can deliver out of order.
    for rec in [*reversed(events), *events]:
        for view in chat_views:
            if view.wants(rec):
                await view.apply(unit.db[view.collection], rec, unit.store)
    assert await unit.projections.diff(["messages", "conversations"]) == []
    assert await unit.projections.diff() == []
