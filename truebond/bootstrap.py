"""The one composition root: builds clients, the store, read models, adapters and the app."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import attrs
from aiohttp import web

from truebond.adapters.auth_gate import AuthGate
from truebond.adapters.email import build_email_sender
from truebond.adapters.notifier import Notifier, NullNotifier
from truebond.adapters.otp_store import OtpStore, derive_key
from truebond.adapters.passwords import Passwords
from truebond.adapters.presence import Presence
from truebond.adapters.ratelimit import RateLimiter
from truebond.adapters.redis_client import EmbeddedRedis, connect
from truebond.adapters.session_cache import SessionCache
from truebond.adapters.socket_emitter import SocketEmitter
from truebond.adapters.storage import from_settings as storage_from_settings
from truebond.adapters.stripe_gateway import StripeGateway
from truebond.adapters.tokens import AccessTokens
from truebond.api import socket_calls, socket_chat, socket_rooms
from truebond.api.call_sockets import CallSockets
from truebond.api.socket_presence import PresenceFollower
from truebond.api.socket_routing import SocketRoute
from truebond.api.socket_session_watch import SessionWatch
from truebond.api.sockets import SocketLifecycle, SocketServer
from truebond.clock import Clock, SystemClock
from truebond.commands import (
    account,
    admin,
    calls,
    chat,
    dev_admins,
    identity,
    location,
    maintenance,
    notifications,
    otp,
    payments,
    profile,
    safety,
    standing,
)
from truebond.commands.bus import Bus, merge_handlers, merge_reactions
from truebond.commands.unit import Unit
from truebond.config import Settings
from truebond.events.crypto import SubjectKeys
from truebond.events.store import EventStore
from truebond.lifecycle import bounded
from truebond.logging import get_logger
from truebond.projections import conversations
from truebond.projections.catalog import ALL_VIEWS
from truebond.projections.inline import Projections

log = get_logger(__name__)

_MOCK_CLIENTS: dict[str, Any] = {}


def mongo_database(url: str) -> Any:
    """The database named by a mongodb:// URL (default `truebond`), or an in-memory one."""
    if url.startswith("mongomock://"):
        from mongomock_motor import AsyncMongoMockClient

        name = urlsplit(url).netloc or "truebond"
        client = _MOCK_CLIENTS.setdefault(name, AsyncMongoMockClient(tz_aware=True))
        return client[name]
    from motor.motor_asyncio import AsyncIOMotorClient

    client = AsyncIOMotorClient(url, tz_aware=True, serverSelectionTimeoutMS=3000, uuidRepresentation="standard")
    name = urlsplit(url).path.lstrip("/").split("?")[0] or "truebond"
    return client[name]


# Every area's command handlers and event reactions, merged into the one bus.
AREAS = (identity, otp, account, payments, profile, maintenance, safety, admin, dev_admins, chat, location, notifications, calls, standing)


@attrs.define
class Runtime:
    """What bootstrap built, and how to close it."""

    unit: Unit
    bus: Bus
    embedded_redis: EmbeddedRedis | None = None

    async def close(self) -> None:
        """Close network clients (and the embedded Redis); each step is bounded and logged if it hangs."""
        unit = self.unit
        await bounded(unit.notifier.close(), name="notifier.close")
        await bounded(unit.email.close(), name="email.close")
        await bounded(unit.redis.aclose(), name="redis.close")
        await bounded(unit.storage.close(), name="storage.close")
        if unit.stripe is not None:
            await bounded(unit.stripe.close(), name="stripe.close")
        if self.embedded_redis is not None:
            self.embedded_redis.stop()


# Every area's socket events (SocketRoute tables), served by the web process.
SOCKET_TABLES: list[list[SocketRoute]] = [socket_rooms.SOCKET_ROUTES, socket_chat.SOCKET_ROUTES, socket_calls.SOCKET_ROUTES]


def _socket_lifecycle(redis: Any, clock: Clock) -> list[SocketLifecycle]:
    """What follows sockets coming and going in a web process."""
    return [PresenceFollower(Presence(redis, clock), partners=conversations.partner_ids), SessionWatch(), CallSockets(redis)]


def _notifier(redis: Any, redis_url: str, settings: Settings, clock: Clock, *, sockets: bool, embedded: bool) -> Notifier:
    """The web process serves the sockets; a worker pushes through the Redis channel."""
    if sockets:
        # Dev's in-process Redis: sockets live in this one process, so the in-memory manager.
        return SocketServer(
            redis,
            manager_url=None if embedded else redis_url,
            cors_origin=settings.frontend_origin,
            routes=[route for table in SOCKET_TABLES for route in table],
            lifecycle=_socket_lifecycle(redis, clock),
        )
    return NullNotifier() if embedded else SocketEmitter(redis, redis_url)


async def build(
    settings: Settings, *, db: Any = None, clock: Clock | None = None, fast_hashing: bool = False, sockets: bool = True
) -> Runtime:
    """Assemble the Unit and the bus from settings; `db` overrides the database (tests).

    `sockets=False` builds a worker (projector, operator commands): no Socket.IO server, pushes
    go to the web processes through Redis.
    """
    embedded = None
    redis_url = settings.redis_url
    if redis_url.startswith("embedded://"):
        embedded = EmbeddedRedis()
        redis_url = embedded.start()
        settings = attrs.evolve(settings, redis_url=redis_url)
    database = db if db is not None else mongo_database(settings.mongo_url)
    clock = clock or SystemClock()
    store = EventStore(database, SubjectKeys(database["subject_keys"]), clock)
    redis = connect(redis_url)
    unit = Unit(
        settings=settings,
        db=database,
        redis=redis,
        store=store,
        projections=Projections(database, store, ALL_VIEWS),
        limiter=RateLimiter(None if embedded is not None else redis_url),
        sessions=SessionCache(redis),
        passwords=Passwords(time_cost=1, memory_cost=8192) if fast_hashing else Passwords(),
        tokens=AccessTokens(settings.jwt_secret),
        clock=clock,
        storage=storage_from_settings(settings),
        otp=OtpStore(redis, derive_key(settings.jwt_secret), clock),
        email=build_email_sender(settings),
        gate=AuthGate(redis),
        notifier=_notifier(redis, redis_url, settings, clock, sockets=sockets, embedded=embedded is not None),
        stripe=StripeGateway(settings.stripe_secret_key, settings.stripe_api_base),
    )
    bus = Bus(unit, merge_handlers(a.HANDLERS for a in AREAS), merge_reactions(a.REACTIONS for a in AREAS))
    return Runtime(unit=unit, bus=bus, embedded_redis=embedded)


async def ensure_indexes(unit: Unit) -> list[str]:
    """Create every index the store and the read models need; returns their names."""
    await unit.store.ensure_indexes()
    await unit.projections.ensure_indexes()
    names: list[str] = []
    for coll in ["events", *sorted({v.collection for v in unit.projections.views})]:
        info = await unit.db[coll].index_information()
        names.extend(f"{coll}.{name}" for name in sorted(info))
    return names


def web_app(runtime: Runtime) -> web.Application:
    """The HTTP application for a runtime."""
    from truebond.api.app import create_app

    return create_app(runtime.unit, runtime.bus)
