"""The inline runner: applies new events to every read model, replays and diffs them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import timedelta
from typing import Any

from truebond.events.base import Recorded
from truebond.events.store import EventStore
from truebond.projections.views import Projection

REPLAY_CATCH_UP_OVERLAP = timedelta(seconds=10)


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
