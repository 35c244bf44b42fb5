"""The event store as an auditor sees it: idempotent appends, optimistic concurrency, chains, upcasting."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from truebond.clock import OffsetClock, to_ms
from truebond.events import codec
from truebond.events.base import Event, Head, Meta, event
from truebond.events.crypto import SubjectKeys
from truebond.events.ledger import CoinsDeducted
from truebond.events.store import ConcurrencyError, EventStore, UndecodableEvent, chain_hash, verify_chain, with_retry

SYSTEM = Meta(actor="system")


# A test-only event whose shape changed: schema 1 had `qty`, schema 2 calls it `quantity`
# and added `unit`. Registered once, under a name no production code uses.
@event("TestOnlyWidgetCounted", schema=2)
@attrs.frozen
class WidgetCounted(Event):
    """Schema 2 of a test-only event."""

    quantity: int
    unit: str


@codec.upcaster("TestOnlyWidgetCounted", 1)
def _widget_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    data["quantity"] = data.pop("qty")
    data["unit"] = "piece"
    return data


@pytest.fixture
async def store(db: Any) -> AsyncIterator[EventStore]:
    """A store with its indexes on the test database."""
    s = EventStore(db, SubjectKeys(db["subject_keys"]), OffsetClock())
    await s.ensure_indexes()
    yield s


def _deduction(n: int, balance_after: int = 0) -> CoinsDeducted:
    return CoinsDeducted(user_id="u1", amount=-n, reason="test", reference=f"ref:{n}", balance_after=balance_after)


async def _raw_stream(store: EventStore, stream: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = await store.events.find({"stream": stream}).sort("version", 1).to_list(None)
    return docs


def _raw_doc(stream: str, version: int, prev: str, type_name: str, schema: int, data: dict[str, Any], event_id: str) -> dict[str, Any]:
    """A stored document built by hand (as an older release would have written it), chained correctly."""
    doc: dict[str, Any] = {
        "_id": event_id,
        "stream": stream,
        "version": version,
        "type": type_name,
        "schema": schema,
        "data": data,
        "meta": {"actor": "system", "request_id": None, "causation_id": None},
        "subject": None,
        "at": to_ms(datetime.now(UTC)),
        "prev": prev,
    }
    doc["hash"] = chain_hash(doc)
    return doc


async def test_fifty_concurrent_appends_of_one_id_store_one_event(store: EventStore) -> None:
    results = await asyncio.gather(
        *(store.append("account-u1", Head(), _deduction(n), event_id="charge:once", meta=SYSTEM) for n in range(1, 51))
    )

    assert await store.events.count_documents({}) == 1
    assert sum(r.created for r in results) == 1
    stored = await store.get("charge:once")
    assert stored is not None
    # Every caller sees the one recorded event (the winner's payload), not its own attempt.
    assert all(r.recorded == stored for r in results)
    assert {r.recorded.version for r in results} == {1}
    assert verify_chain(await _raw_stream(store, "account-u1")) == []


async def test_repeated_id_after_later_events_returns_the_original(store: EventStore) -> None:
    first = await store.append("account-u1", Head(), _deduction(1), event_id="e1", meta=SYSTEM)
    second = await store.append("account-u1", first.recorded.head, _deduction(2), event_id="e2", meta=SYSTEM)

    # A late retry of e1 carrying the current head must not become version 3.
    again = await store.append("account-u1", second.recorded.head, _deduction(99), event_id="e1", meta=SYSTEM)

    assert again.created is False
    assert again.recorded == first.recorded
    assert await store.events.count_documents({"stream": "account-u1"}) == 2


async def test_twenty_racing_writers_get_versions_one_to_twenty(store: EventStore) -> None:
    stream = "account-race"
    conflicts = 0

    async def writer(i: int) -> int:
        async def attempt() -> int:
            nonlocal conflicts
            head = await store.head(stream)
            await asyncio.sleep(0)  # let every other writer read the same head
            try:
                appended = await store.append(stream, head, _deduction(i + 1), event_id=f"w{i}", meta=SYSTEM)
            except ConcurrencyError:
                conflicts += 1
                raise
            return appended.recorded.version

        return await with_retry(attempt, attempts=40)

    versions = await asyncio.gather(*(writer(i) for i in range(20)))

    assert sorted(versions) == list(range(1, 21))
    docs = await _raw_stream(store, stream)
    assert [d["version"] for d in docs] == list(range(1, 21))
    assert sorted(d["_id"] for d in docs) == sorted(f"w{i}" for i in range(20))
    assert verify_chain(docs) == []
    # The race really happened: writers lost on the (stream, version) index and retried.
    assert conflicts > 0


async def test_stale_head_raises_concurrency_error_and_stores_nothing(store: EventStore) -> None:
    first = await store.append("account-u1", Head(), _deduction(1), event_id="e1", meta=SYSTEM)
    await store.append("account-u1", first.recorded.head, _deduction(2), event_id="e2", meta=SYSTEM)

    with pytest.raises(ConcurrencyError):
        await store.append("account-u1", first.recorded.head, _deduction(3), event_id="e3", meta=SYSTEM)
    with pytest.raises(ConcurrencyError):
        await store.append("account-u1", Head(), _deduction(4), event_id="e4", meta=SYSTEM)

    assert await store.get("e3") is None
    assert await store.get("e4") is None
    assert await store.events.count_documents({"stream": "account-u1"}) == 2


async def test_old_schema_is_upcast_on_read_and_never_rewritten(store: EventStore) -> None:
    raw = _raw_doc("widget-1", 1, "0" * 64, "TestOnlyWidgetCounted", 1, {"qty": 7}, "widget:1")
    await store.events.insert_one(copy.deepcopy(raw))
    before = await store.events.find_one({"_id": "widget:1"})

    rec = await store.get("widget:1")
    loaded = await store.load("widget-1")

    assert rec is not None
    assert rec.event == WidgetCounted(quantity=7, unit="piece")
    assert [r.event for r in loaded] == [WidgetCounted(quantity=7, unit="piece")]
    after = await store.events.find_one({"_id": "widget:1"})
    assert after == before
    assert after is not None and after["schema"] == 1 and after["data"] == {"qty": 7}
    # The old event still verifies: the chain covers what was stored, not the upcast view.
    assert verify_chain([after]) == []


async def test_new_event_appended_after_an_old_one_is_written_in_the_current_schema(store: EventStore) -> None:
    raw = _raw_doc("widget-2", 1, "0" * 64, "TestOnlyWidgetCounted", 1, {"qty": 1}, "widget:2:1")
    await store.events.insert_one(raw)

    head = await store.head("widget-2")
    await store.append("widget-2", head, WidgetCounted(quantity=2, unit="box"), event_id="widget:2:2", meta=SYSTEM)

    docs = await _raw_stream(store, "widget-2")
    assert [(d["schema"], d["data"]) for d in docs] == [(1, {"qty": 1}), (2, {"quantity": 2, "unit": "box"})]
    assert verify_chain(docs) == []


async def test_a_stored_event_with_an_unknown_field_fails_loudly_naming_it(store: EventStore) -> None:
    good = await store.append("account-u1", Head(), _deduction(1), event_id="e1", meta=SYSTEM)
    await store.append("account-u1", good.recorded.head, _deduction(2), event_id="e2", meta=SYSTEM)
    await store.events.update_one({"_id": "e2"}, {"$set": {"data.bonus_coins": 500}})

    # The store refuses to guess: reading it raises an error naming the event and the field.
    with pytest.raises(UndecodableEvent, match=r"e2 \(account-u1@2\).*bonus_coins"):
        await store.get("e2")
    with pytest.raises(UndecodableEvent, match="e2"):
        await store.load("account-u1")
    with pytest.raises(UndecodableEvent, match="e2"):
        _ = [r async for r in store.all_events()]
    # The event before it is still readable, and the chain shows the edit.
    assert await store.get("e1") == good.recorded
    problems = verify_chain(await _raw_stream(store, "account-u1"))
    assert any("account-u1@2 (e2)" in p and "hash mismatch" in p for p in problems)


async def test_a_stored_event_of_an_unknown_type_fails_loudly(store: EventStore) -> None:
    await store.events.insert_one(_raw_doc("misc-1", 1, "0" * 64, "NoSuchEventType", 1, {}, "misc:1"))

    with pytest.raises(UndecodableEvent, match=r"misc:1 .*NoSuchEventType"):
        await store.get("misc:1")


async def test_ensure_indexes_creates_the_unique_stream_version_index(store: EventStore) -> None:
    await store.ensure_indexes()  # a second run is harmless

    info = await store.events.index_information()

    assert info["stream_version"]["key"] == [("stream", 1), ("version", 1)]
    assert info["stream_version"].get("unique") is True
    assert info["at_id"]["key"] == [("at", 1), ("_id", 1)]


async def test_the_unique_index_is_what_stops_a_second_version_one(store: EventStore) -> None:
    await store.append("account-u1", Head(), _deduction(1), event_id="e1", meta=SYSTEM)

    with pytest.raises(ConcurrencyError):
        await store.append("account-u1", Head(), _deduction(2), event_id="e2", meta=SYSTEM)

    assert [d["_id"] for d in await _raw_stream(store, "account-u1")] == ["e1"]
