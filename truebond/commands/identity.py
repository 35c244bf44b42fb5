"""Identity commands: signup, logins, refresh rotation, logout, sessions, roles."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

import attrs
from redis.exceptions import RedisError

from truebond.clock import to_ms
from truebond.commands.bus import HandlerTable, ReactionTable
from truebond.commands.ledger import grant_signup_bonus
from truebond.commands.unit import Unit, new_id
from truebond.errors import DependencyDown, EmailTaken, MobileTaken, NotFound, RoleMismatch, Unauthorized
from truebond.events.base import Head, Meta
from truebond.events.identity import (
    EmailClaimed,
    EmailReleased,
    RoleGranted,
    SessionRefreshed,
    SessionRevoked,
    SessionStarted,
    UserRegistered,
)
from truebond.events.store import ConcurrencyError, with_retry
from truebond.projections import sessions as sessions_view
from truebond.projections import users as users_view
from truebond.projections.sessions import SESSIONS
from truebond.projections.users import USERS

REFRESH_TTL = timedelta(days=30)
ROLES = ("user", "admin", "super_admin")
ADMIN_ROLES = ("admin", "super_admin")
LOGIN_FAILED = "Invalid email or password"
CLAIM_TAKEOVER_AFTER = timedelta(seconds=60)
MAX_FAILURES_PER_ACCOUNT = 100
FAILURE_WINDOW = timedelta(hours=1)


def normalise_email(email: str) -> str:
    """The form an email is compared and stored in."""
    return email.strip().lower()


# 12 characters of Crockford base32: 60 random bits, so codes never collide in practice (a
# collision would break the unique index of the users read model).
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_referral_code() -> str:
    """A fresh, unguessable referral code that is easy to read aloud."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))


def digest(value: str) -> str:
    """SHA-256 hex of `value`: claim and OTP stream names (of a normalised email or phone), refresh secrets."""
    return hashlib.sha256(value.encode()).hexdigest()


@attrs.frozen
class Signup:
    """Open an account (fields already validated at the edge)."""

    name: str
    email: str
    mobile_number: str
    password: str
    age: int
    gender: str
    interested_in: str
    intent: str
    min_age: int
    max_age: int
    max_distance_km: int
    address_line: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    pincode: str | None = None
    device_id: str | None = None
    referral_code: str | None = None


@attrs.frozen
class Client:
    """Where a request came from: masked IP, user-agent summary, request id."""

    ip: str
    device: str
    request_id: str | None = None


@attrs.frozen
class SessionTokens:
    """A session's fresh tokens."""

    user_id: str
    session_id: str
    role: str
    access_token: str
    refresh_token: str


async def claim(unit: Unit, kind: str, value: str, user_id: str, meta: Meta) -> bool:
    """Take `value` (an email or phone) for `user_id`; False when another account holds it."""
    stream = f"{kind}-{digest(value)}"

    async def attempt() -> bool:
        events = await unit.store.load(stream)
        head = events[-1].head if events else Head()
        if events and isinstance(events[-1].event, EmailClaimed):
            holder = events[-1].event.user_id
            if holder == user_id:
                return True
            stale = unit.clock.now() - events[-1].at > CLAIM_TAKEOVER_AFTER
            if not stale or await unit.store.head(f"user-{holder}") != Head():
                return False
            # A claim whose signup never finished (crash between the two appends) is freed.
            released = await unit.append(stream, head, EmailReleased(user_id=holder), event_id=f"{kind}-release:{holder}", meta=meta)
            head = released.recorded.head
        await unit.append(stream, head, EmailClaimed(user_id=user_id), event_id=f"{kind}-claim:{user_id}", meta=meta)
        return True

    return await with_retry(attempt)


async def release(unit: Unit, kind: str, value: str, user_id: str, meta: Meta) -> None:
    """Give `value` up if `user_id` holds it, so another account can claim it."""
    stream = f"{kind}-{digest(value)}"

    async def attempt() -> None:
        events = await unit.store.load(stream)
        if events and isinstance(events[-1].event, EmailClaimed) and events[-1].event.user_id == user_id:
            await unit.append(stream, events[-1].head, EmailReleased(user_id=user_id), event_id=f"{kind}-release:{user_id}", meta=meta)

    await with_retry(attempt)


async def signup(unit: Unit, cmd: Signup, client: Client) -> SessionTokens:
    """Claim the email and phone, record the account, grant 10 coins, open a session."""
    user_id = new_id()
    email = normalise_email(cmd.email)
    meta = Meta(actor=f"user:{user_id}", request_id=client.request_id)
    if not await claim(unit, "email", email, user_id, meta):
        raise EmailTaken()
    if not await claim(unit, "phone", cmd.mobile_number, user_id, meta):
        await release(unit, "email", email, user_id, meta)
        raise MobileTaken()
    referrer = None
    if cmd.referral_code:
        owner = await users_view.by_referral_code(unit.db, cmd.referral_code)
        referrer = None if owner is None or owner.get("status") == "deleted" else str(owner["_id"])
    password_hash = await unit.passwords.hash_async(cmd.password)
    registered = UserRegistered(
        user_id=user_id,
        name=cmd.name,
        email=email,
        mobile_number=cmd.mobile_number,
        password_hash=password_hash,
        age=cmd.age,
        gender=cmd.gender,
        interested_in=cmd.interested_in,
        intent=cmd.intent,
        min_age=cmd.min_age,
        max_age=cmd.max_age,
        max_distance_km=cmd.max_distance_km,
        address_line=cmd.address_line,
        city=cmd.city,
        state=cmd.state,
        country=cmd.country,
        pincode=cmd.pincode,
        referral_code=new_referral_code(),
        referred_by=referrer,
    )
    await unit.append(f"user-{user_id}", Head(), registered, event_id=f"signup:{user_id}", meta=meta, subject=user_id)
    await grant_signup_bonus(unit, user_id, meta)
    if referrer is not None:  # TRANSITIONAL: becomes a reaction to UserRegistered
        from truebond.commands import account

        await account.after_signup(unit, user_id, referrer, meta)
    return await start_session(unit, user_id, "user", cmd.device_id, client, method="signup")


async def start_session(unit: Unit, user_id: str, role: str, device_id: str | None, client: Client, *, method: str) -> SessionTokens:
    """Open a session: a `session-<id>` stream, an allow-list entry, and tokens."""
    session_id = new_id()
    secret = secrets.token_urlsafe(32)
    now = unit.clock.now()
    started = SessionStarted(
        session_id=session_id,
        user_id=user_id,
        refresh_hash=digest(secret),
        expires_at=(now + REFRESH_TTL).isoformat(),
        device_id=device_id,
        device=client.device,
        ip=client.ip,
        method=method,
    )
    meta = Meta(actor=f"user:{user_id}", request_id=client.request_id)
    await unit.append(f"session-{session_id}", Head(), started, event_id=f"session:{session_id}", meta=meta)
    await unit.sessions.allow(session_id, user_id, int(REFRESH_TTL.total_seconds()))
    access = unit.tokens.issue(user_id, session_id, role, unit.clock.time())
    return SessionTokens(user_id, session_id, role, access, f"{session_id}.{secret}")


def _locked_key(user_id: str) -> str:
    return f"tb:loginlock:{user_id}"


async def password_login(
    unit: Unit, email: str, password: str, device_id: str | None, client: Client, *, admin: bool = False
) -> tuple[SessionTokens, dict[str, Any]]:
    """Check email and password (one generic failure), then open a session."""
    user = await users_view.by_email(unit.db, normalise_email(email))
    usable = user is not None and user.get("status") == "active"
    locked = usable and user is not None and await _locked(unit, str(user["_id"]))
    # A locked account costs the same password check as any other answer: a quick 401 would tell
    # an enumerator that the email has an account (which it can lock by failing 100 times).
    ok = await unit.passwords.verify_async(user.get("password_hash") if usable and user and not locked else None, password)
    if locked:
        raise Unauthorized(LOGIN_FAILED)
    if not ok or user is None or not usable:
        if user is not None:
            await _count_failure(unit, str(user["_id"]))
        raise Unauthorized(LOGIN_FAILED)
    role = str(user.get("role", "user"))
    if admin and role not in ADMIN_ROLES:
        raise Unauthorized(LOGIN_FAILED)
    tokens = await start_session(unit, str(user["_id"]), role, device_id, client, method="admin" if admin else "password")
    return tokens, user


async def _locked(unit: Unit, user_id: str) -> bool:
    """Whether the account's password login is locked; an unreachable Redis refuses (fail closed)."""
    try:
        return bool(await unit.redis.exists(_locked_key(user_id)))
    except RedisError as exc:
        raise DependencyDown() from exc


async def _count_failure(unit: Unit, user_id: str) -> None:
    """100 failures within an hour of the first lock the account's password login for an hour."""
    key = f"tb:loginfail:{user_id}"
    try:
        # The window starts with the key (SET NX EX) and INCR keeps its TTL, so a crash between
        # the two commands can never leave a counter that never expires.
        async with unit.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=int(FAILURE_WINDOW.total_seconds()), nx=True)
            pipe.incr(key)
            _, count = await pipe.execute()
        if int(count) >= MAX_FAILURES_PER_ACCOUNT:
            await unit.redis.set(_locked_key(user_id), "1", ex=int(FAILURE_WINDOW.total_seconds()))
    except RedisError as exc:
        raise DependencyDown() from exc


async def refresh(unit: Unit, token: str, client: Client) -> SessionTokens:
    """Rotate a refresh token; a token already rotated away revokes the whole session."""
    session_id, _, secret = token.partition(".")
    if not session_id or not secret or len(session_id) > 64:
        raise Unauthorized("Invalid refresh token")
    presented = digest(secret)

    async def attempt() -> SessionTokens:
        doc, head = await unit.load(SESSIONS, f"session-{session_id}", session_id)
        if doc is None or doc.get("revoked_at") is not None or _expired(unit, doc):
            raise Unauthorized("Invalid refresh token")
        user_id = str(doc["user_id"])
        if presented != doc.get("refresh_hash"):
            if presented in doc.get("old_hashes", []):
                await _revoke(unit, session_id, head, "refresh_reuse", Meta(actor=f"user:{user_id}", request_id=client.request_id))
            raise Unauthorized("Invalid refresh token")
        new_secret = secrets.token_urlsafe(32)
        event = SessionRefreshed(refresh_hash=digest(new_secret), previous_hash=presented, ip=client.ip)
        meta = Meta(actor=f"user:{user_id}", request_id=client.request_id)
        appended = await unit.append(f"session-{session_id}", head, event, event_id=f"refresh:{session_id}:{presented[:32]}", meta=meta)
        if not appended.created:
            # A concurrent request rotated this very token first: this use is a reuse. Retrying
            # from fresh state finds the token among the old hashes and revokes the session.
            raise ConcurrencyError(f"session-{session_id}")
        user = await users_view.by_id(unit.db, user_id)
        if user is None or user.get("status") != "active":
            raise Unauthorized("Invalid refresh token")
        role = str(user.get("role", "user"))
        access = unit.tokens.issue(user_id, session_id, role, unit.clock.time())
        return SessionTokens(user_id, session_id, role, access, f"{session_id}.{new_secret}")

    return await with_retry(attempt)


def _expired(unit: Unit, doc: dict[str, Any]) -> bool:
    expires = doc.get("expires_at")
    if expires is None:
        return True
    return bool(to_ms(expires) <= unit.clock.now())


async def _revoke(unit: Unit, session_id: str, head: Head, reason: str, meta: Meta) -> None:
    await unit.append(f"session-{session_id}", head, SessionRevoked(reason=reason), event_id=f"revoke:{session_id}", meta=meta)
    await unit.sessions.revoke(session_id)
    await unit.notifier.disconnect_session(session_id)


async def revoke_session(unit: Unit, user_id: str, session_id: str, reason: str, meta: Meta) -> bool:
    """End one of `user_id`'s sessions; False when it is not theirs or already ended."""

    async def attempt() -> bool:
        doc, head = await unit.load(SESSIONS, f"session-{session_id}", session_id)
        if doc is None or doc.get("user_id") != user_id:
            return False
        if doc.get("revoked_at") is not None:
            return False
        await _revoke(unit, session_id, head, reason, meta)
        return True

    try:
        return await with_retry(attempt)
    except ConcurrencyError:
        return False


async def revoke_all(unit: Unit, user_id: str, reason: str, meta: Meta) -> int:
    """End every live session of a user; returns how many were ended."""
    count = 0
    # Every live session, not the newest page of them: an old session buried under many newer
    # ones would otherwise survive a logout-all or a password reset.
    for session_id in await sessions_view.live_ids(unit.db, user_id, unit.clock.now()):
        if await revoke_session(unit, user_id, session_id, reason, meta):
            count += 1
    return count


async def delete_session(unit: Unit, user_id: str, session_id: str, meta: Meta) -> None:
    """Revoke one of the caller's sessions; another user's answers NotFound."""
    doc = await sessions_view.get(unit.db, session_id)
    if doc is None or doc.get("user_id") != user_id:
        raise NotFound("Session not found")
    await revoke_session(unit, user_id, session_id, "revoked_by_user", meta)


async def set_role(unit: Unit, email: str, role: str, reason: str, actor: str, *, expected: str | None = None) -> tuple[str, str]:
    """Give the account `role` (audited); returns (user id, previous role).

    With `expected` (a revoke), the change happens only while the account holds that role;
    otherwise Conflict is raised and nothing is appended.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role}")
    user = await users_view.by_email(unit.db, normalise_email(email))
    if user is None:
        raise NotFound("No account with that email")
    user_id = str(user["_id"])

    async def attempt() -> tuple[str, str]:
        doc, head = await unit.load(USERS, f"user-{user_id}", user_id)
        previous = str((doc or {}).get("role", "user"))
        if expected is not None and previous != expected:
            raise RoleMismatch(f"The account's role is {previous}, not {expected}")
        event = RoleGranted(role=role, previous_role=previous, reason=reason)
        await unit.append(f"user-{user_id}", head, event, event_id=f"role:{user_id}:{head.version + 1}", meta=Meta(actor=actor))
        return user_id, previous

    return await with_retry(attempt)


HANDLERS: HandlerTable = {}
REACTIONS: ReactionTable = {}
