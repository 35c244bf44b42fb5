"""Sessions: password logins, refresh rotation, logouts and revocations reaching Redis and sockets."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import attrs
from redis.exceptions import RedisError

from truebond.clock import to_ms
from truebond.commands.bus import Bus, Command, Context
from truebond.commands.decide import Decided, Decision, decide_and_append, read_model
from truebond.commands.identity.common import ADMIN_ROLES, REFRESH_TTL, SessionTokens, digest, normalise_email
from truebond.commands.unit import Unit, new_id
from truebond.errors import DependencyDown, NotFound, Unauthorized
from truebond.events.base import Head, Meta, Recorded
from truebond.events.identity import SessionRefreshed, SessionRevoked, SessionStarted
from truebond.events.store import ConcurrencyError
from truebond.projections import sessions as sessions_view
from truebond.projections import users as users_view
from truebond.projections.sessions import SESSIONS

LOGIN_FAILED = "Invalid email or password"
INVALID_REFRESH = "Invalid refresh token"
MAX_FAILURES_PER_ACCOUNT = 100
FAILURE_WINDOW = timedelta(hours=1)
FORCE_LOGOUT = "force_logout"
# Revocations that tell the session's sockets why before they are dropped (OTP logins).
LOGOUT_NOTICES = {
    "new_device_login": "You logged in on another device",
    "email_verified": "Please log in again",
    "suspended": "Your account has been suspended",
    "banned": "Your account has been suspended",
}


@attrs.frozen
class LoggedIn:
    """A successful login: the new session and the account."""

    tokens: SessionTokens
    user: dict[str, Any]


@attrs.frozen
class PasswordLogin(Command[LoggedIn]):
    """Log in with email and password; `admin` logins are refused for accounts without an admin role."""

    email: str
    password: str = attrs.field(repr=False)
    device_id: str | None = None
    admin: bool = False


@attrs.frozen
class Refresh(Command[SessionTokens]):
    """Rotate a refresh token (`<session id>.<secret>`)."""

    token: str = attrs.field(repr=False)


@attrs.frozen
class Logout(Command[bool]):
    """End the caller's own session (False when it had ended already)."""

    user_id: str
    session_id: str


@attrs.frozen
class LogoutAll(Command[int]):
    """End every live session of the user; returns how many were ended."""

    user_id: str


@attrs.frozen
class RevokeSession(Command[None]):
    """End one of the caller's sessions by id; a session that is not theirs is NotFound."""

    user_id: str
    session_id: str


async def start_session(deps: Unit, ctx: Context, user_id: str, role: str, device_id: str | None, *, method: str) -> SessionTokens:
    """Open a session: a `session-<id>` stream, an allow-list entry, and tokens."""
    session_id = new_id()
    secret = secrets.token_urlsafe(32)
    started = SessionStarted(
        session_id=session_id,
        user_id=user_id,
        refresh_hash=digest(secret),
        expires_at=(deps.clock.now() + REFRESH_TTL).isoformat(),
        device_id=device_id,
        device=ctx.device,
        ip=ctx.ip,
        method=method,
    )
    meta = ctx.meta(actor=f"user:{user_id}")
    await deps.append(f"session-{session_id}", Head(), started, event_id=f"session:{session_id}", meta=meta)
    # The tokens work at once: the entry is written before they are handed out.
    await deps.sessions.allow(session_id, user_id, int(REFRESH_TTL.total_seconds()))
    access = deps.tokens.issue(user_id, session_id, role, deps.clock.time())
    return SessionTokens(user_id, session_id, role, access, f"{session_id}.{secret}")


def _locked_key(user_id: str) -> str:
    return f"tb:loginlock:{user_id}"


async def log_in_with_password(cmd: PasswordLogin, ctx: Context, deps: Unit) -> LoggedIn:
    """Check email and password (one generic failure), then open a session."""
    user = await users_view.by_email(deps.db, normalise_email(cmd.email))
    usable = user is not None and user.get("status") == "active"
    locked = usable and user is not None and await _locked(deps, str(user["_id"]))
    # A locked account costs the same password check as any other answer: a quick 401 would tell
    # an enumerator that the email has an account (which it can lock by failing 100 times).
    ok = await deps.passwords.verify_async(user.get("password_hash") if usable and user and not locked else None, cmd.password)
    if locked:
        raise Unauthorized(LOGIN_FAILED)
    if not ok or user is None or not usable:
        if user is not None:
            await _count_failure(deps, str(user["_id"]))
        raise Unauthorized(LOGIN_FAILED)
    role = str(user.get("role", "user"))
    if cmd.admin and role not in ADMIN_ROLES:
        raise Unauthorized(LOGIN_FAILED)
    tokens = await start_session(deps, ctx, str(user["_id"]), role, cmd.device_id, method="admin" if cmd.admin else "password")
    return LoggedIn(tokens, user)


async def _locked(deps: Unit, user_id: str) -> bool:
    """Whether the account's password login is locked; an unreachable Redis refuses (fail closed)."""
    try:
        return bool(await deps.redis.exists(_locked_key(user_id)))
    except RedisError as exc:
        raise DependencyDown() from exc


async def clear_login_lock(deps: Unit, user_id: str) -> None:
    """Forget the account's password failures and lift its lock (the owner proved their inbox by OTP)."""
    try:
        await deps.redis.delete(_locked_key(user_id), f"tb:loginfail:{user_id}")
    except RedisError as exc:
        raise DependencyDown() from exc


async def _count_failure(deps: Unit, user_id: str) -> None:
    """100 failures within an hour of the first lock the account's password login for an hour."""
    key = f"tb:loginfail:{user_id}"
    try:
        # The window starts with the key (SET NX EX) and INCR keeps its TTL, so a crash between
        # the two commands can never leave a counter that never expires.
        async with deps.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=int(FAILURE_WINDOW.total_seconds()), nx=True)
            pipe.incr(key)
            _, count = await pipe.execute()
        if int(count) >= MAX_FAILURES_PER_ACCOUNT:
            await deps.redis.set(_locked_key(user_id), "1", ex=int(FAILURE_WINDOW.total_seconds()))
    except RedisError as exc:
        raise DependencyDown() from exc


async def refresh(cmd: Refresh, ctx: Context, deps: Unit) -> SessionTokens:
    """Rotate a refresh token; a token already rotated away revokes the whole session.

    Two concurrent uses of one token count as a reuse: the loser finds the rotation already
    stored (`existing_is_conflict`), decides again on fresh state and revokes the session.
    """
    session_id, _, secret = cmd.token.partition(".")
    if not session_id or not secret or len(session_id) > 64:
        raise Unauthorized(INVALID_REFRESH)
    stream = f"session-{session_id}"
    known, _ = await deps.load(SESSIONS, stream, session_id)
    if known is None:
        raise Unauthorized(INVALID_REFRESH)
    user_id = str(known["user_id"])  # a session's owner never changes
    presented = digest(secret)
    new_secret = secrets.token_urlsafe(32)

    def decide(doc: dict[str, Any] | None) -> Decided:
        if doc is None or doc.get("revoked_at") is not None or _expired(deps, doc):
            raise Unauthorized(INVALID_REFRESH)
        if presented == doc.get("refresh_hash"):
            rotated = SessionRefreshed(refresh_hash=digest(new_secret), previous_hash=presented, ip=ctx.ip)
            return Decision(rotated, f"refresh:{session_id}:{presented[:32]}")
        if presented in doc.get("old_hashes", []):
            return Decision(SessionRevoked(reason="refresh_reuse"), f"revoke:{session_id}")
        raise Unauthorized(INVALID_REFRESH)

    meta = ctx.meta(actor=f"user:{user_id}")
    done = await decide_and_append(deps, stream, read_model(SESSIONS, stream, session_id), decide, meta, existing_is_conflict=True)
    if isinstance(done[0].recorded.event, SessionRevoked):
        raise Unauthorized(INVALID_REFRESH)
    user = await users_view.by_id(deps.db, user_id)
    if user is None or user.get("status") != "active":
        raise Unauthorized(INVALID_REFRESH)
    role = str(user.get("role", "user"))
    access = deps.tokens.issue(user_id, session_id, role, deps.clock.time())
    return SessionTokens(user_id, session_id, role, access, f"{session_id}.{new_secret}")


def _expired(deps: Unit, doc: dict[str, Any]) -> bool:
    expires = doc.get("expires_at")
    if expires is None:
        return True
    return bool(to_ms(expires) <= deps.clock.now())


async def revoke_session(deps: Unit, meta: Meta, user_id: str, session_id: str, reason: str) -> bool:
    """Append SessionRevoked to one of `user_id`'s sessions; False when it is not theirs or already ended.

    What follows (the allow-list entry and the sockets go) is the reaction `end_revoked_session`.
    """

    def decide(doc: dict[str, Any] | None) -> Decided:
        if doc is None or doc.get("user_id") != user_id or doc.get("revoked_at") is not None:
            return None
        return Decision(SessionRevoked(reason=reason), f"revoke:{session_id}")

    stream = f"session-{session_id}"
    try:
        done = await decide_and_append(deps, stream, read_model(SESSIONS, stream, session_id), decide, meta)
    except ConcurrencyError:
        return False
    return bool(done) and done[0].created


async def revoke_all(deps: Unit, meta: Meta, user_id: str, reason: str) -> int:
    """End every live session of a user; returns how many were ended."""
    count = 0
    # Every live session, not the newest page of them: an old session buried under many newer
    # ones would otherwise survive a logout-all or a password reset.
    for session_id in await sessions_view.live_ids(deps.db, user_id, deps.clock.now()):
        if await revoke_session(deps, meta, user_id, session_id, reason):
            count += 1
    return count


async def log_out(cmd: Logout, ctx: Context, deps: Unit) -> bool:
    """POST /api/auth/logout: this session's tokens stop working at once (the reaction runs before the answer)."""
    return await revoke_session(deps, ctx.meta(), cmd.user_id, cmd.session_id, "logout")


async def log_out_everywhere(cmd: LogoutAll, ctx: Context, deps: Unit) -> int:
    """POST /api/auth/logout-all."""
    return await revoke_all(deps, ctx.meta(), cmd.user_id, "logout_all")


async def revoke_own_session(cmd: RevokeSession, ctx: Context, deps: Unit) -> None:
    """DELETE /api/auth/sessions/{id}: another user's session (or none) answers NotFound."""
    doc = await sessions_view.get(deps.db, cmd.session_id)
    if doc is None or doc.get("user_id") != cmd.user_id:
        raise NotFound("Session not found")
    await revoke_session(deps, ctx.meta(), cmd.user_id, cmd.session_id, "revoked_by_user")


async def drop_session(deps: Unit, session_id: str) -> None:
    """Remove a session from the Redis allow-list and drop its sockets (idempotent)."""
    await deps.sessions.revoke(session_id)
    await deps.notifier.disconnect_session(session_id)


async def end_revoked_session(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Reaction to SessionRevoked: tell the sockets why when the reason has a notice, then drop them.

    Re-driven from the store, it finds nothing left to drop and changes nothing.
    """
    event = rec.event
    assert isinstance(event, SessionRevoked)
    session_id = rec.stream.removeprefix("session-")
    notice = LOGOUT_NOTICES.get(event.reason)
    if notice is not None:
        await bus.deps.notifier.emit_to_session(session_id, FORCE_LOGOUT, {"reason": event.reason, "message": notice})
    await drop_session(bus.deps, session_id)
