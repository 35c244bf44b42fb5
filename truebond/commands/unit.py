"""What command handlers work with: the store, the read models, Redis-backed adapters, the clock."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

import attrs

from truebond.adapters.auth_gate import AuthGate
from truebond.adapters.email import EmailSender
from truebond.adapters.notifier import Notifier, NullNotifier
from truebond.adapters.otp_store import OtpStore
from truebond.adapters.passwords import Passwords
from truebond.adapters.ratelimit import RateLimiter
from truebond.adapters.session_cache import SessionCache
from truebond.adapters.storage import Storage
from truebond.adapters.stripe_gateway import PaymentGateway
from truebond.adapters.tokens import AccessTokens
from truebond.clock import Clock
from truebond.commands.bus import collect
from truebond.config import Settings
from truebond.events.base import Event, Head, Meta
from truebond.events.store import Appended, EventStore
from truebond.projections.inline import Projections
from truebond.projections.views import Projection


class Database(Protocol):
    """A MongoDB database (motor's, or mongomock-motor's in dev and tests): collections by name."""

    def __getitem__(self, name: str) -> Any:
        """The collection `name`."""
        ...

    async def command(self, command: Any, **kwargs: Any) -> Any:
        """Run a database command (`ping` for readiness)."""
        ...


@attrs.define
class Unit:
    """The dependencies bootstrap injects into every handler (`handle(cmd, ctx, deps)`)."""

    settings: Settings
    db: Database
    redis: Any
    store: EventStore
    projections: Projections
    limiter: RateLimiter
    sessions: SessionCache
    passwords: Passwords
    tokens: AccessTokens
    clock: Clock
    storage: Storage
    otp: OtpStore
    email: EmailSender
    gate: AuthGate
    notifier: Notifier = attrs.field(factory=NullNotifier)
    stripe: PaymentGateway | None = None

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
        """Append an event and apply the read models inline, so the caller reads its own write.

        A new event is also handed to the bus, whose reactions run once the command is done.
        """
        appended = await self.store.append(stream, head, event, event_id=event_id, meta=meta, subject=subject)
        await self.projections.apply(appended.recorded)
        if appended.created:
            collect(appended.recorded)
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
