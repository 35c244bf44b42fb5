"""Where mongomock and a real MongoDB 7 differ, pinned down so the local suite fails like CI would.

The rules themselves live in tests/support/mongo_parity.py and check every call of every test (conftest's
autouse `mongo_rules`); here they are tested, and every read model's update functions are run
over every event they take, including the shredded ("[erased]") forms a replay meets.
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from tests.support.mongo_parity import Checker, MongoRuleBroken, document_problems, projection_problems, update_problems
from truebond import bootstrap
from truebond.events.base import REGISTRY, Event, Head, Meta, Recorded, personal_fields
from truebond.events.crypto import ERASED
from truebond.events.identity import PasswordChanged, UserRegistered
from truebond.events.store import EventStore
from truebond.projections.catalog import ALL_VIEWS
from truebond.projections.users import USERS
from truebond.projections.views import APPLIED_KEEP, ErasingDocView, EventDocView, StreamDocView, _lookup, _merge

# --------------------------------------------------------------------------- the rules


def test_conflicting_paths_are_refused_like_a_real_server() -> None:
    assert update_problems({"$set": {"a": 1}, "$push": {"a": 2}})
    assert update_problems({"$set": {"a": {"b": 1}, "a.b": 2}})
    assert update_problems({"$set": {"a.b": 1}, "$unset": {"a": ""}})
    assert update_problems({"$setOnInsert": {"a": 1}, "$set": {"a": 2}})
    assert update_problems({"$set": {"ab": 1, "a.c": 2, "a.b": 3}}) == []
    assert update_problems({"$set": {"a": 1}, "$unset": {"b": ""}, "$push": {"c": {"$each": [1], "$slice": -5}}}) == []


def test_updates_must_be_operators_and_never_write_the_id() -> None:
    assert update_problems({})
    assert update_problems({"a": 1})
    assert update_problems({"$set": 1})
    assert update_problems({"$set": {"_id": "x"}})
    assert update_problems({"$push": {"a": {"$each": 1}}})
    assert update_problems({"$set": {"a.$bad": 1}})


def test_stored_field_names_may_not_be_paths_or_operators() -> None:
    assert update_problems({"$set": {"settings": {"a.b": True}}})
    assert update_problems({"$set": {"meta": {"$where": 1}}})
    assert update_problems({"$push": {"list": {"$each": [{"x.y": 1}]}}})
    assert document_problems({"_id": "1", "metadata": {"user.id": "u"}})
    assert document_problems({"_id": "1", "data": [{"$ref": 1}]})
    assert document_problems({"_id": "1", "data": {"ok": [1, {"fine": True}]}}) == []


def test_null_under_a_sparse_unique_index_is_refused() -> None:
    # A real server skips only a missing field: every explicit null is indexed, and two collide.
    assert update_problems({"$set": {"email": None}}, collection="users")
    assert update_problems({"$set": {"phone": None}}, collection="users__replay")
    assert update_problems({"$set": {"name": "x"}}, collection="users", upsert_filter={"_id": "u", "referral_code": None})
    assert document_problems({"_id": "u", "email": None}, collection="users")
    assert update_problems({"$unset": {"email": "", "phone": ""}}, collection="users") == []
    assert update_problems({"$set": {"email": None}}, collection="sessions") == []


def test_projections_do_not_mix_inclusion_and_exclusion() -> None:
    assert projection_problems({"a": 1, "b": 0})
    assert projection_problems({"_id": 0, "coins": 1, "_v": 1}) == []
    assert projection_problems({"_applied": 0}) == []


async def test_every_call_of_the_suite_is_checked(db: Any, mongo_rules: Checker) -> None:
    with pytest.raises(MongoRuleBroken, match="conflict"):
        await db["users"].update_one({"_id": "u"}, {"$set": {"a": 1}, "$unset": {"a": ""}}, upsert=True)
    with pytest.raises(MongoRuleBroken, match="sparse unique"):
        await db["users"].insert_one({"_id": "u", "email": None})
    with pytest.raises(MongoRuleBroken, match="inclusion"):
        await db["users"].find_one({}, {"a": 1, "b": 0})
    assert await db["users"].count_documents({}) == 0  # refused before it reached the database
    assert len(mongo_rules.broken) == 3
    mongo_rules.broken.clear()


async def test_to_list_returns_at_most_length_documents_like_motor(db: Any) -> None:
    await db["things"].insert_many([{"_id": n} for n in range(5)])
    cursor = db["things"].find({}).sort("_id", 1)

    assert [d["_id"] for d in await cursor.to_list(2)] == [0, 1]
    assert [d["_id"] for d in await cursor.to_list(2)] == [2, 3]
    assert [d["_id"] for d in await cursor.to_list(None)] == [4]


async def test_datetimes_come_back_timezone_aware_as_from_the_service_client(db: Any) -> None:
    at = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
    await db["things"].insert_one({"_id": "t", "at": at})
    # tz_aware=True in bootstrap and in the CI fixture: aware UTC back (a naive one cannot be compared).
    stored = (await db["things"].find_one({"_id": "t"}))["at"]
    assert stored == at and stored.utcoffset() is not None
    mock = bootstrap.mongo_database("mongomock://parity_tz")
    await mock["things"].insert_one({"_id": "t", "at": at})
    assert (await mock["things"].find_one({"_id": "t"}))["at"].utcoffset() is not None
    bootstrap._MOCK_CLIENTS.pop("parity_tz", None)


# --------------------------------------------------------------------------- every read model update


def _sample(cls: type[Event], name: str, kind: Any, *, erased: bool, empty: bool) -> Any:
    if name in ("expires_at", "until"):
        return datetime(2030, 1, 1, tzinfo=UTC).isoformat()
    if erased and name in personal_fields(cls):
        return ERASED
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) else ()
    if type(None) in options:
        if empty:
            return None
        kind = next(o for o in options if o is not type(None))
    if kind is bool:
        return True
    if kind is int:
        return 7
    if typing.get_origin(kind) is dict:
        return {} if empty else {"notifications": {"push": False, "email": True}, "dark_mode": True}
    return f"{name}-value"


def _events(cls: type[Event]) -> list[Event]:
    """The event filled in, with its optional fields empty, and with its personal fields shredded."""
    hints = typing.get_type_hints(cls)
    made = []
    for erased, empty in ((False, False), (False, True), (True, False)):
        values = {f.name: _sample(cls, f.name, hints[f.name], erased=erased, empty=empty) for f in attrs.fields(cls)}
        made.append(cls(**values))
    return made


def _recorded(event: Event, version: int) -> Recorded:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    return Recorded(id=f"evt-{version}", stream="x-owner", version=version, event=event, meta=Meta(actor="test"), at=at, prev="", hash="")


@pytest.mark.parametrize("view", ALL_VIEWS, ids=lambda v: v.name)
def test_every_update_a_read_model_builds_is_one_a_real_server_accepts(view: Any) -> None:
    checked = 0
    for cls in sorted(set(REGISTRY.values()), key=lambda c: c.type_name):
        for event in _events(cls):
            rec = _recorded(event, 2)
            if isinstance(view, StreamDocView):
                fn = _lookup(view.updates, event)
                if fn is None or not view.wants(attrs.evolve(rec, stream=view.stream_prefix + "owner")):
                    continue
                # As StreamDocView.apply sends it: the first version as an upsert, later ones guarded by _v.
                update = _merge(fn(rec) or {}, {"$set": {"_v": rec.version}})
                problems = update_problems(update, collection=view.collection, upsert_filter={"_id": "owner"})
            elif isinstance(view, ErasingDocView) and isinstance(event, view.erase_on):
                # As ErasingDocView.apply sends them: plain update_many calls, no upsert.
                problems = [p for query, update in view.erasure(rec) for p in update_problems(update, collection=view.collection)]
            else:
                docs = view.inner if isinstance(view, ErasingDocView) else view
                assert isinstance(docs, EventDocView)
                made = _lookup(docs.docs, event)
                if made is None or made(rec) is None:
                    continue
                doc_id, base = made(rec)
                update = _merge(base, {"$push": {"_applied": {"$each": [rec.id], "$slice": -APPLIED_KEEP}}})
                problems = update_problems(update, collection=view.collection, upsert_filter={"_id": doc_id, "_applied": {"$ne": rec.id}})
            assert problems == [], f"{view.name} <- {cls.type_name} {event!r}"
            checked += 1
    assert checked


# --------------------------------------------------------------------------- races mongomock cannot show


class _StaleOnce:
    """A collection whose first read misses a document another writer has just created."""

    def __init__(self, coll: Any) -> None:
        self._coll = coll
        self._stale = True

    async def find_one(self, *args: Any, **kwargs: Any) -> Any:
        if self._stale:
            self._stale = False
            return None
        return await self._coll.find_one(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._coll, name)


async def test_a_first_version_applied_late_never_overwrites_a_newer_document(runtime: bootstrap.Runtime) -> None:
    """Two appliers read "no document" (inline apply and the projector, on a real server); one
    inserts version 1 and goes on to version 2. The other's upsert of version 1 must not land on
    that document: with a bare {_id} filter it matched it (and a real server also retries a
    duplicate-key upsert as that update), putting the read model back to version 1."""
    unit = runtime.unit
    store: EventStore = unit.store
    stream, meta = "user-late1", Meta(actor="user:late1")
    registered = UserRegistered(
        user_id="late1", name="Late", email="late@example.com", mobile_number="9000000001", password_hash="h1", referral_code="LATE1"
    )
    r1 = await store.append(stream, Head(), registered, event_id="late:1", meta=meta, subject="late1")
    r2 = await store.append(stream, r1.recorded.head, PasswordChanged(password_hash="h2"), event_id="late:2", meta=meta, subject="late1")
    await unit.projections.apply(r1.recorded)
    await unit.projections.apply(r2.recorded)

    await USERS.apply(_StaleOnce(unit.db["users"]), r1.recorded, store)

    doc = await unit.db["users"].find_one({"_id": "late1"})
    assert doc is not None and (doc["_v"], doc["password_hash"]) == (2, "h2")
