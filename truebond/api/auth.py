"""Who calls: the access token, its live session, the account's standing, and the request's limits.

An HTTP request is authenticated and counted in one Redis round trip (`AuthGate.check`): the
session's allow-list entry, the user's cached status and role, the session touch and every
rate limit of the route. Only a cache miss reads MongoDB (the sessions or users read model),
and fills the cache for the next request. A socket connection (`authenticate`) still reads the
users read model itself: it is rare, and its answer lives as long as the socket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from redis.exceptions import RedisError

from truebond.adapters.auth_gate import Verdict
from truebond.adapters.ratelimit import Policy
from truebond.adapters.tokens import AccessClaims as Claims
from truebond.adapters.tokens import InvalidToken
from truebond.clock import to_ms
from truebond.commands.identity import ADMIN_ROLES
from truebond.commands.unit import Unit
from truebond.errors import DependencyDown, Forbidden, RateLimited, Unauthorized
from truebond.projections import sessions as sessions_view
from truebond.projections.users import by_id as user_by_id

SEEN_SECONDS = 30 * 24 * 3600
# A miss fills the cache and asks again; a third miss in a row means entries vanish as they
# are written (a flush storm): refuse rather than loop.
_ATTEMPTS = 3


@attrs.frozen
class Caller:
    """The authenticated caller of a request; `user` is its users document when it was read."""

    user_id: str
    session_id: str
    role: str
    token_role: str
    user: Mapping[str, Any] | None = None


def _claims(unit: Unit, token: str) -> Claims:
    try:
        return unit.tokens.verify(token, unit.clock.time())
    except InvalidToken:
        raise Unauthorized("Invalid or expired token") from None


async def _restore_session(unit: Unit, claims: Claims) -> str:
    """The owner of a session the allow-list missed, from the sessions read model (and re-allowed)."""
    doc = await sessions_view.get(unit.db, claims.session_id)
    if doc is None or doc.get("revoked_at") is not None or to_ms(doc["expires_at"]) <= unit.clock.now():
        raise Unauthorized("Session revoked")
    owner = str(doc["user_id"])
    ttl = int((to_ms(doc["expires_at"]) - unit.clock.now()).total_seconds())
    await unit.sessions.allow(claims.session_id, owner, ttl)
    # A revocation between the read above and this write deleted nothing, and the entry just
    # written would vouch for a revoked session: look again now that the entry exists.
    again = await sessions_view.get(unit.db, claims.session_id)
    if again is None or again.get("revoked_at") is not None:
        await unit.sessions.revoke(claims.session_id)
        raise Unauthorized("Session revoked")
    return owner


async def _restore_standing(unit: Unit, user_id: str) -> None:
    """Cache the standing of a user the cache missed, from the users read model.

    A change projected between the read and the write would have dropped nothing: read again
    once the entry exists, and drop it if the two reads differ (the next attempt misses again).
    """
    user = await user_by_id(unit.db, user_id)
    if user is None or user.get("status") != "active":
        raise Unauthorized("Account unavailable")
    standing = (str(user["status"]), str(user.get("role", "user")))
    await unit.gate.fill_standing(user_id, *standing)
    again = await user_by_id(unit.db, user_id)
    if again is None or (again.get("status"), str(again.get("role", "user"))) != standing:
        await unit.gate.drop_standing(user_id)


async def authenticate_request(unit: Unit, token: str, auth: str, limits_for: Callable[[str], Sequence[tuple[Policy, str]]]) -> Caller:
    """Verify a token, its session and its account's standing, and count `limits`: one Redis call.

    `limits_for(user_id)` gives the (policy, key) pairs, in the order they are counted; the first refusal raises
    RateLimited. A Redis failure raises DependencyDown (503): nothing is let through unchecked.
    Then `authorise(auth, ...)`; a token that cannot pass it counts nothing, as before.
    """
    claims = _claims(unit, token)
    limits = limits_for(claims.user_id) if auth not in ("admin", "super") or claims.role in ADMIN_ROLES else ()
    in_redis = unit.limiter.in_redis
    try:
        for _ in range(_ATTEMPTS):
            verdict = await unit.gate.check(
                claims.session_id,
                claims.user_id,
                seen_at=unit.clock.time(),
                seen_ttl=SEEN_SECONDS,
                now=time.time(),  # the wall clock, as `limits` counts
                limits=limits if in_redis else (),
            )
            if verdict.kind == "session_miss":
                if await _restore_session(unit, claims) != claims.user_id:
                    raise Unauthorized("Session revoked")
            elif verdict.kind == "standing_miss":
                await _restore_standing(unit, claims.user_id)
            else:
                break
        else:
            raise DependencyDown("Session store unavailable")
    except (RedisError, OSError) as exc:
        raise DependencyDown("Session store unavailable") from exc
    _judge(verdict)
    caller = Caller(claims.user_id, claims.session_id, verdict.role, claims.role)
    authorise(auth, caller)
    if not in_redis:
        # `truebond dev`'s limiter counts in process memory (see README, deviations).
        for policy, key in limits:
            await unit.limiter.hit(policy, key)
    return caller


def _judge(verdict: Verdict) -> None:
    if verdict.kind == "revoked":
        raise Unauthorized("Session revoked")
    if verdict.kind == "inactive":
        raise Unauthorized("Account unavailable")
    if verdict.kind == "limited":
        raise RateLimited(retry_after=verdict.retry_after)


async def authenticate(unit: Unit, token: str) -> Caller:
    """Verify an access token and its live session; status and role read from the users read model."""
    claims = _claims(unit, token)
    owner = await unit.sessions.owner(claims.session_id)
    if owner is None:
        owner = await _restore_session(unit, claims)
    if owner != claims.user_id:
        raise Unauthorized("Session revoked")
    user = await user_by_id(unit.db, claims.user_id)
    if user is None or user.get("status") != "active":
        raise Unauthorized("Account unavailable")
    await unit.sessions.touch(claims.session_id, unit.clock.time(), SEEN_SECONDS)
    return Caller(claims.user_id, claims.session_id, str(user.get("role", "user")), claims.role, user)


def authorise(auth: str, caller: Caller) -> None:
    """Admin levels need the user's current role, and the token's role must still match it."""
    if auth in ("admin", "super"):
        if caller.role not in ADMIN_ROLES or caller.token_role != caller.role:
            raise Forbidden("Admin access required")
        if auth == "super" and caller.role != "super_admin":
            raise Forbidden("Super admin access required")
