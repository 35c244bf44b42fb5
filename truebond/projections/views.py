"""What a read model is and how one event is applied to it idempotently."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
from pymongo.errors import DuplicateKeyError

from truebond.errors import InfrastructureError
from truebond.events.base import Event, Recorded
from truebond.events.store import EventStore

Update = dict[str, Any]
IndexSpec = tuple[list[tuple[str, int | str]], dict[str, Any]]  # a direction, or an index type such as "2dsphere"
APPLIED_KEEP = 200


class StreamGap(InfrastructureError):
    """Versions of a stream are missing from the store, so a stream view cannot catch up."""


class Projection(Protocol):
    """A read model: which events it takes, how each changes one document, its indexes."""

    @property
    def name(self) -> str:
        """The projection's name (for replay --projection)."""
        ...

    @property
    def collection(self) -> str:
        """The Mongo collection holding the read model."""
        ...

    @property
    def indexes(self) -> Sequence[IndexSpec]:
        """Indexes the read model's queries need."""
        ...

    def wants(self, rec: Recorded) -> bool:
        """Whether this projection reacts to `rec`."""
        ...

    async def apply(self, coll: Any, rec: Recorded, store: EventStore) -> None:
        """Apply `rec` to `coll` idempotently."""
        ...


def _lookup(table: Mapping[type[Event], Any], event: Event) -> Any:
    """The entry for the event's class or its nearest registered base class."""
    for cls in type(event).__mro__:
        if cls in table:
            return table[cls]
    return None


def _merge(update: Update, extra: Update) -> Update:
    merged = {op: dict(fields) for op, fields in update.items()}
    for op, fields in extra.items():
        merged.setdefault(op, {}).update(fields)
    return merged


@attrs.frozen
class StreamDocView:
    """One document per stream, guarded by the stream version stored in `_v`.

    Every event of a matching stream bumps `_v`; a gap is filled from the store first.
    """

    name: str
    collection: str
    stream_prefix: str
    updates: Mapping[type[Event], Callable[[Recorded], Update | None]]
    key: Callable[[Recorded], str] = attrs.field(default=lambda rec: rec.stream.split("-", 1)[1])
    indexes: Sequence[IndexSpec] = ()

    def wants(self, rec: Recorded) -> bool:
        """Every event of the streams this view covers."""
        return rec.stream.startswith(self.stream_prefix)

    async def apply(self, coll: Any, rec: Recorded, store: EventStore) -> None:
        """Apply after the events before it, exactly once per stream version."""
        doc_id = self.key(rec)
        for _ in range(50):
            doc = await coll.find_one({"_id": doc_id}, projection={"_v": 1})
            current = 0 if doc is None else int(doc.get("_v", 0))
            if current >= rec.version:
                return
            if current < rec.version - 1:
                missing = await store.load(rec.stream, current, rec.version - 1)
                if [m.version for m in missing] != list(range(current + 1, rec.version)):
                    raise StreamGap(f"projection {self.name}: {rec.stream} lacks versions {current + 1}..{rec.version - 1} before {rec.id}")
                for earlier in missing:
                    await self.apply(coll, earlier, store)
                continue
            fn = _lookup(self.updates, rec.event)
            base = (fn(rec) or {}) if fn is not None else {}
            update = _merge(base, {"$set": {"_v": rec.version}})
            # The first version inserts only where no document exists. A bare {"_id"} filter would
            # match one another writer created meanwhile (and overwrite its newer state), and a real
            # server even retries a duplicate-key upsert on it as such an update (SERVER-14322).
            guard: dict[str, Any] = {"_id": doc_id, "_v": current} if doc is not None else {"_id": doc_id, "_v": {"$exists": False}}
            try:
                result = await coll.update_one(guard, update, upsert=doc is None)
            except DuplicateKeyError:
                continue
            if result.matched_count or result.upserted_id is not None:
                return
        raise RuntimeError(f"projection {self.name} could not apply {rec.id}")


@attrs.frozen
class EventDocView:
    """Documents keyed by a function of the event, guarded by a bounded list of applied ids."""

    name: str
    collection: str
    docs: Mapping[type[Event], Callable[[Recorded], tuple[str, Update] | None]]
    indexes: Sequence[IndexSpec] = ()

    def wants(self, rec: Recorded) -> bool:
        """Only the event types this view lists."""
        return _lookup(self.docs, rec.event) is not None

    async def apply(self, coll: Any, rec: Recorded, store: EventStore) -> None:
        """Apply once: a redelivered event finds its id in `_applied` and changes nothing."""
        made = _lookup(self.docs, rec.event)(rec)
        if made is None:
            return
        doc_id, update = made
        update = _merge(update, {"$push": {"_applied": {"$each": [rec.id], "$slice": -APPLIED_KEEP}}})
        try:
            await coll.update_one({"_id": doc_id, "_applied": {"$ne": rec.id}}, update, upsert=True)
        except DuplicateKeyError:
            return


@attrs.frozen
class ErasingDocView:
    """An `EventDocView` whose documents also carry people's data copied out of events.

    The events' copy is unreadable once the person's key is destroyed; the read model's copy has
    to go too. On `erase_on` (an account erasure), `erasure(rec)` gives the (filter, update) pairs
    that blank that person's fields in every document (idempotent: erasing twice changes nothing).
    """

    inner: EventDocView
    erase_on: type[Event]
    erasure: Callable[[Recorded], list[tuple[dict[str, Any], Update]]]

    @property
    def name(self) -> str:
        """The inner view's name."""
        return self.inner.name

    @property
    def collection(self) -> str:
        """The inner view's collection."""
        return self.inner.collection

    @property
    def indexes(self) -> Sequence[IndexSpec]:
        """The inner view's indexes."""
        return self.inner.indexes

    def wants(self, rec: Recorded) -> bool:
        """The inner view's events and the erasure."""
        return isinstance(rec.event, self.erase_on) or self.inner.wants(rec)

    async def apply(self, coll: Any, rec: Recorded, store: EventStore) -> None:
        """Blank the erased person's fields everywhere, or apply as the inner view does."""
        if isinstance(rec.event, self.erase_on):
            for query, update in self.erasure(rec):
                await coll.update_many(query, update)
            return
        await self.inner.apply(coll, rec, store)
