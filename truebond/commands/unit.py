"""What command handlers work with: the store, the read models, Redis-backed adapters, the clock."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs

from truebond.adapters.email import EmailSender
from truebond.adapters.otp_store import OtpStore
from truebond.adapters.passwords import Passwords
from truebond.adapters.ratelimit import RateLimiter
from truebond.adapters.session_cache import SessionCache
from truebond.adapters.storage import Storage
from truebond.adapters.stripe_gateway import PaymentGateway
from truebond.adapters.tokens import AccessTokens
from truebond.clock import Clock
from truebond.config import Settings
from truebond.events.base import Event, Head, Meta
from truebond.events.store import Appended, EventStore
from truebond.projections.inline import Projections
from truebond.projections.views import Projection


class Notifier(Protocol):
    """Pushes to connected clients (Socket.IO); sessions' sockets can be dropped."""

    async def emit_to_user(self, user_id: str, event: str, data: Any) -> None:
        """Send `event` to every socket of a user (room `user:<id>`)."""
        ...

    async def emit_to_session(self, session_id: str, event: str, data: Any) -> None:
        """Send `event` to the sockets opened with one session's tokens."""
        ...

    async def disconnect_session(self, session_id: str) -> None:
        """Drop every socket of a session (it was revoked)."""
        ...

    async def close(self) -> None:
        """Stop background work and release connections."""
        ...


class NullNotifier:
    """No sockets in this process (operator commands): nothing to send or drop."""

    async def emit_to_user(self, user_id: str, event: str, data: Any) -> None:
        """Nothing is connected."""

    async def emit_to_session(self, session_id: str, event: str, data: Any) -> None:
        """Nothing is connected."""

    async def disconnect_session(self, session_id: str) -> None:
        """Nothing is connected."""

    async def close(self) -> None:
        """Nothing to release."""


# Called after a signup is recorded: (unit, new user id, referrer id or None, meta).
SignupHook = Callable[["Unit", str, "str | None", Meta], Awaitable[None]]


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
    storage: Storage
    otp: OtpStore
    email: EmailSender
    notifier: Notifier = attrs.field(factory=NullNotifier)
    after_signup: SignupHook | None = None
    stripe: PaymentGateway | None = None
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
