"""What command handlers work with: the store, the read models, Redis-backed adapters, the clock."""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from truebond.adapters.passwords import Passwords
from truebond.adapters.ratelimit import RateLimiter
from truebond.adapters.session_cache import SessionCache
from truebond.adapters.tokens import AccessTokens
from truebond.clock import Clock
from truebond.config import Settings
from truebond.events.base import Event, Head, Meta
from truebond.events.store import Appended, EventStore
from truebond.projections.runner import Projection, Projections


@attrs.define
class Unit:
    """Dependencies injected into every handler by bootstrap."""

    settings: Settings
    db: Any
    redis: Any
    store: EventStore
    projections: Projections
    limiter: RateLimiter
    sessions: SessionCache
    passwords: Passwords
    tokens: AccessTokens
    clock: Clock
    extras: dict[str, Any] = attrs.field(factory=dict)

    async def append(
        self,
        stream: str,
        head: Head,
        event: Event,
        *,
        event_id: str,
        meta: Meta,
        subject: str | None = None,
    ) -> Appended:
        """Append an event and apply the read models inline, so the caller reads its own write."""
        appended = await self.store.append(stream, head, event, event_id=event_id, meta=meta, subject=subject)
        await self.projections.apply(appended.recorded)
        return appended

    async def load(self, view: Projection, stream: str, doc_id: str) -> tuple[dict[str, Any] | None, Head]:
        """A stream's current state: its head, and its read-model document caught up to it."""
        head = await self.store.head(stream)
        coll = self.db[view.collection]
        doc: dict[str, Any] | None = await coll.find_one({"_id": doc_id})
        if head.version and (doc is None or int(doc.get("_v", 0)) < head.version):
            for rec in await self.store.load(stream, 0 if doc is None else int(doc.get("_v", 0))):
                await view.apply(coll, rec, self.store)
            doc = await coll.find_one({"_id": doc_id})
        return doc, head


def new_id() -> str:
    """A fresh random identifier (32 hex characters)."""
    return uuid.uuid4().hex
