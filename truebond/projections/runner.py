"""Projection machinery: idempotent applies, the tailing projector, replay and verification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import attrs
from pymongo.errors import DuplicateKeyError

from truebond.events.base import Event, Recorded
from truebond.events.store import EventStore
from truebond.logging import get_logger

log = get_logger(__name__)

Update = dict[str, Any]
IndexSpec = tuple[list[tuple[str, int]], dict[str, Any]]
APPLIED_KEEP = 200
REPLAY_CATCH_UP_OVERLAP = timedelta(seconds=10)


class StreamGap(RuntimeError):
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


class Projections:
    """The set of read models and the inline runner that applies new events to them."""

    def __init__(self, db: Any, store: EventStore, views: Iterable[Projection]) -> None:
        self.db = db
        self.store = store
        self.views = list(views)

    def named(self, names: Iterable[str] | None) -> list[Projection]:
        """The views with these names (all when None); unknown names raise KeyError."""
        if names is None:
            return list(self.views)
        by_name = {v.name: v for v in self.views}
        return [by_name[n] for n in names]

    async def apply(self, rec: Recorded) -> None:
        """Apply one event to every view that wants it."""
        for view in self.views:
            if view.wants(rec):
                await view.apply(self.db[view.collection], rec, self.store)

    async def ensure_indexes(self, suffix: str = "") -> None:
        """Create every view's indexes (on `collection + suffix`)."""
        for view in self.views:
            for keys, options in view.indexes:
                await self.db[view.collection + suffix].create_index(keys, **options)

    async def rebuild_into(self, views: Sequence[Projection], suffix: str) -> int:
        """Rebuild `views` from all events into `collection + suffix`; returns events read."""
        for view in views:
            await self.db.drop_collection(view.collection + suffix)
            for keys, options in view.indexes:
                await self.db[view.collection + suffix].create_index(keys, **options)
        return await self._apply_all(views, self.store.all_events(), suffix)

    async def _apply_all(self, views: Sequence[Projection], events: AsyncIterator[Recorded], suffix: str = "") -> int:
        """Apply every event to the views that want it (in `collection + suffix`); returns events read."""
        count = 0
        async for rec in events:
            count += 1
            for view in views:
                if view.wants(rec):
                    await view.apply(self.db[view.collection + suffix], rec, self.store)
        return count

    async def replay(self, names: Iterable[str] | None = None) -> int:
        """Rebuild read models into fresh collections and swap them in.

        Events appended while the rebuild ran are applied again after the swap (applies are
        idempotent), so a replay next to live writers loses nothing.
        """
        views = self.named(names)
        started = self.store.clock.now() - REPLAY_CATCH_UP_OVERLAP
        count = await self.rebuild_into(views, "__replay")
        for view in views:
            fresh = self.db[view.collection + "__replay"]
            if await fresh.count_documents({}) == 0:
                await self.db.drop_collection(view.collection)
                await self.db.drop_collection(view.collection + "__replay")
                for keys, options in view.indexes:
                    await self.db[view.collection].create_index(keys, **options)
                continue
            await fresh.rename(view.collection, dropTarget=True)
        await self._apply_all(views, self.store.all_events(since=started))
        return count

    async def diff(self, names: Iterable[str] | None = None, limit: int = 50) -> list[str]:
        """Differences between live read models and ones re-derived from the events."""
        views = self.named(names)
        await self.rebuild_into(views, "__verify")
        problems: list[str] = []
        try:
            for view in views:
                live = {d["_id"]: d async for d in self.db[view.collection].find({})}
                derived = {d["_id"]: d async for d in self.db[view.collection + "__verify"].find({})}
                for doc_id in sorted(set(live) | set(derived), key=str):
                    a, b = _comparable(live.get(doc_id)), _comparable(derived.get(doc_id))
                    if a != b:
                        problems.append(f"{view.name}/{doc_id}: live {_summary(a)} != derived {_summary(b)}")
                        if len(problems) >= limit:
                            return problems
        finally:
            for view in views:
                await self.db.drop_collection(view.collection + "__verify")
        return problems


def _comparable(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k != "_applied"}


def _summary(doc: dict[str, Any] | None) -> str:
    if doc is None:
        return "missing"
    return "{" + ", ".join(f"{k}={doc[k]!r}" for k in sorted(doc) if k not in ("_id",))[:300] + "}"


class Projector:
    """Tails the store from a stored checkpoint and applies everything at least once."""

    CHECKPOINT_ID = "projector"

    def __init__(self, projections: Projections, overlap: timedelta = timedelta(seconds=10), batch: int = 500) -> None:
        self.projections = projections
        self.store = projections.store
        self.checkpoints = projections.db["projection_checkpoints"]
        self.overlap = overlap
        self.batch = batch
        self._recent: dict[str, datetime] = {}

    async def checkpoint(self) -> datetime | None:
        """The stored position: events before it minus the overlap are done."""
        doc = await self.checkpoints.find_one({"_id": self.CHECKPOINT_ID})
        return None if doc is None else doc["at"]

    async def run_once(self) -> int:
        """Apply every event from the checkpoint (less the overlap) to now; returns how many.

        Events this projector already applied inside the overlap window are left out of the
        query, so a quiet poll reads, decodes and writes nothing.
        """
        mark = await self.checkpoint()
        since = None if mark is None else mark - self.overlap
        applied = 0
        page = await self.store.read_since(since, self.batch, exclude=self._recent)
        while page:
            for rec in page:
                await self.projections.apply(rec)
                self._recent[rec.id] = rec.at
                applied += 1
            last = page[-1]
            # A late event can sort before the checkpoint; the checkpoint never moves back.
            if mark is None or last.at > mark:
                mark = last.at
                await self.checkpoints.update_one({"_id": self.CHECKPOINT_ID}, {"$set": {"at": last.at, "event_id": last.id}}, upsert=True)
            floor = mark - self.overlap
            self._recent = {k: v for k, v in self._recent.items() if v >= floor}
            if len(page) < self.batch:
                break
            page = await self.store.read_after(last.at, last.id, self.batch, exclude=self._recent)
        return applied

    async def run(self, stop: asyncio.Event, poll_seconds: float = 0.5) -> None:
        """Poll until `stop` is set; errors are logged and the batch retried on the next poll."""
        log.info("projector.started")
        while not stop.is_set():
            try:
                n = await self.run_once()
                if n:
                    log.info("projector.applied", events=n)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("projector.failed")
            try:
                await asyncio.wait_for(stop.wait(), poll_seconds)
            except TimeoutError:
                pass
        log.info("projector.stopped")
