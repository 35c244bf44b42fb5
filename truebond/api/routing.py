"""The route table: every route declares its auth level, schemas, limits and body cap."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import attrs
import orjson
import voluptuous as vol
from aiohttp import web

from truebond.adapters.ratelimit import ADMIN_ACTIONS, DEFAULT_IP, DEFAULT_USER, Policy
from truebond.api.auth import Caller, authenticate, authenticate_request, authorise
from truebond.api.middlewares import REQUEST_ID
from truebond.api.validation import JSON_LIMIT, check, read_json
from truebond.clock import to_ms
from truebond.commands.bus import Bus, Context
from truebond.commands.unit import Unit
from truebond.errors import Unauthorized, ValidationFailed
from truebond.projections import users as users_view

__all__ = ["Caller", "Req", "Route", "authenticate", "authorise", "json_response", "wrap"]

Auth = Literal["public", "user", "admin", "super", "webhook"]
KeyBy = Literal["ip", "user"]
UNIT_KEY: web.AppKey[Unit] = web.AppKey("unit", Unit)
BUS_KEY: web.AppKey[Bus] = web.AppKey("bus", Bus)


@attrs.define
class Req:
    """What a handler receives: the request, the bus and its context, the caller and validated input."""

    request: web.Request
    unit: Unit
    bus: Bus
    ctx: Context
    caller: Caller | None = None
    body: Any = None
    query: Any = None

    @property
    def me(self) -> Caller:
        """The caller of a route that requires a login."""
        if self.caller is None:
            raise Unauthorized()
        return self.caller

    def param(self, name: str) -> str:
        """A path parameter."""
        return self.request.match_info[name]

    async def account(self) -> Mapping[str, Any]:
        """The caller's users document, read on the first call (only handlers that need it pay)."""
        me = self.me
        if me.user is None:
            user = await users_view.by_id(self.unit.db, me.user_id)
            if user is None:
                raise Unauthorized("Account unavailable")
            self.caller = me = attrs.evolve(me, user=user)
        assert me.user is not None
        return me.user


Handler = Callable[[Req], Awaitable[web.StreamResponse]]


@attrs.frozen
class Route:
    """One HTTP route and everything the edge enforces before its handler runs."""

    method: str
    path: str
    handler: Handler
    auth: Auth = "public"
    body: vol.Schema | None = None
    query: vol.Schema | None = None
    limits: Sequence[tuple[Policy, KeyBy]] = ()
    max_body: int = JSON_LIMIT
    raw_body: bool = False
    default_limit: bool = True
    summary: str = ""
    tag: str = "misc"
    # The document (api/openapi.py) and the tests' answer checks read these: status -> JSON
    # Schema of the body (api/shapes.py), the statuses the handler adds to those the edge
    # declarations above imply, the body of a raw_body route (media type -> schema), and the
    # headers or cookies the handler reads (OpenAPI parameter objects).
    responses: Mapping[int, Any] = attrs.field(factory=dict)
    errors: Sequence[int] = ()
    content: Mapping[str, Any] | None = None
    params: Sequence[Mapping[str, Any]] = ()


@lru_cache(maxsize=4096)
def mask_ip(raw: str | None) -> str:
    """An IP with its host part hidden: 203.0.113.x or 2001:db8:1::/48."""
    if not raw:
        return "unknown"
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        return "unknown"
    if addr.version == 4:
        return ".".join(str(addr).split(".")[:3]) + ".x"
    net = ipaddress.ip_network(f"{addr}/48", strict=False)
    return str(net)


_UA_PARTS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Chrome/", "Chrome"),
    ("Firefox/", "Firefox"),
    ("Safari/", "Safari"),
    ("okhttp", "Android app"),
    ("CFNetwork", "iOS app"),
)
_OS_PARTS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


@lru_cache(maxsize=1024)
def summarise_user_agent(ua: str | None) -> str:
    """A short device description such as 'Chrome on Android' (never the raw header)."""
    if not ua:
        return "unknown"
    browser = next((name for marker, name in _UA_PARTS if marker in ua), "")
    system = next((name for marker, name in _OS_PARTS if marker in ua), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or re.sub(r"[^A-Za-z0-9 ./_-]", "", ua.split(" ")[0])[:40] or "unknown"


def context_of(request: web.Request, actor: str) -> Context:
    """The command context of a request: actor, request id, masked IP, device summary, limit key."""
    return Context(
        actor=actor,
        request_id=request.get(REQUEST_ID),
        ip=mask_ip(request.remote),
        device=summarise_user_agent(request.headers.get("User-Agent")),
        remote=remote_key(request),
    )


def actor_of(auth: Auth, caller: Caller | None) -> str:
    """Who a request acts as: `admin:<id>` on admin routes, `user:<id>`, `stripe`, or `anonymous`."""
    if caller is not None:
        return f"admin:{caller.user_id}" if auth in ("admin", "super") else f"user:{caller.user_id}"
    return "stripe" if auth == "webhook" else "anonymous"


def limit_key(*parts: str | None) -> str:
    """A rate-limit key that does not store personal data (emails, IPs) in Redis as-is."""
    return hashlib.sha256("|".join(p or "" for p in parts).encode()).hexdigest()[:32]


@lru_cache(maxsize=4096)
def ip_key(remote: str | None) -> str:
    """The rate-limit key of a client address, hashed: an IPv6 client by its /64, since one
    subscriber holds a whole /64 and could otherwise escape every per-IP limit by rotating the
    host part; an IPv4-mapped IPv6 address as its IPv4 address."""
    try:
        addr = ipaddress.ip_address(remote or "")
    except ValueError:
        return limit_key("ip", "unknown")
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped
        value = str(mapped) if mapped is not None else str(ipaddress.ip_network(f"{addr.exploded}/64", strict=False))
    else:
        value = str(addr)
    return limit_key("ip", value)


def remote_key(request: web.Request) -> str:
    """`ip_key` of the request's peer address (never of a client-supplied header)."""
    return ip_key(request.remote)


def bearer(request: web.Request) -> str | None:
    """The bearer token of the Authorization header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _limits_of(route: Route, user_id: str, remote: str) -> list[tuple[Policy, str]]:
    """Every limit an authenticated request counts, in order: admin actions, the user's, the route's."""
    limits: list[tuple[Policy, str]] = []
    if route.auth in ("admin", "super") and route.method != "GET":
        limits.append((ADMIN_ACTIONS, user_id))
    limits.append((DEFAULT_USER, user_id))
    limits += [(policy, user_id if key_by == "user" else remote) for policy, key_by in route.limits]
    return limits


def wrap(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler that enforces the route's declarations, then calls its handler."""

    async def handle(request: web.Request) -> web.StreamResponse:
        unit = request.app[UNIT_KEY]
        caller: Caller | None = None
        remote = remote_key(request)
        if route.auth in ("user", "admin", "super"):
            token = bearer(request)
            if token is None:
                raise Unauthorized()
            caller = await authenticate_request(unit, token, route.auth, lambda user_id: _limits_of(route, user_id, remote))
        elif route.auth == "public" and route.default_limit:
            await unit.limiter.hit(DEFAULT_IP, remote)
        req = Req(
            request=request, unit=unit, bus=request.app[BUS_KEY], ctx=context_of(request, actor_of(route.auth, caller)), caller=caller
        )
        if caller is None:
            for policy, _ in route.limits:
                await unit.limiter.hit(policy, remote)
        if route.query is not None:
            try:
                req.query = route.query(dict(request.query))
            except vol.Invalid as exc:
                path = [str(p) for p in getattr(exc, "path", [])]
                raise ValidationFailed([{"loc": ["query", *path], "msg": str(exc.msg)[:200]}]) from None
        if route.body is not None:
            req.body = check(route.body, await read_json(request, route.max_body))
        elif route.method in ("POST", "PUT", "PATCH", "DELETE") and not route.raw_body:
            # Routes without a body schema take no body at all (nothing can be smuggled in).
            if await read_json(request, route.max_body) not in ({}, None):
                raise ValidationFailed([{"loc": ["body"], "msg": "this route takes no body"}])
        return await route.handler(req)

    handle.__name__ = route.handler.__name__
    return handle


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer (datetimes as ISO strings), serialised by orjson (UTF-8, compact)."""
    return web.Response(body=_dumps(data), status=status, content_type="application/json", charset="utf-8")


def _dumps(data: Any) -> bytes:
    # Datetimes go through `_json_default`, so they read as they always did (milliseconds, Z).
    return orjson.dumps(data, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_ms(value).isoformat().replace("+00:00", "Z")
    raise TypeError(type(value).__name__)
