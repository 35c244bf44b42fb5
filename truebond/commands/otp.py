"""One-time codes by email: login codes and email verification, audited per email.

Answers never depend on whether an email has an account: a code is issued, counted, stored
and audited the same way for every address; only the mail itself goes to real accounts.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

from truebond.adapters.email import EmailFailed, Mail
from truebond.adapters.otp_store import CODE_TTL_SECONDS
from truebond.commands import identity
from truebond.commands.bus import HandlerTable, ReactionTable
from truebond.commands.identity import Client, SessionTokens
from truebond.commands.unit import Unit, new_id
from truebond.errors import AlreadyVerified, DependencyDown, NotYourEmail, RateLimited
from truebond.events.account import EmailVerified
from truebond.events.base import Event, Meta
from truebond.events.otp import OtpExpired, OtpLocked, OtpSendFailed, OtpSent, OtpVerified, OtpVerifyFailed
from truebond.events.store import with_retry
from truebond.logging import get_logger
from truebond.projections import sessions as sessions_view
from truebond.projections import users as users_view
from truebond.projections.users import USERS

log = get_logger(__name__)

Purpose = Literal["login", "email_verify"]
LOGIN: Purpose = "login"
EMAIL_VERIFY: Purpose = "email_verify"
# Both OTP purposes share one send allowance per email (3 an hour, 60 s apart).
SEND_BUCKET = "otp"
EXPIRES_IN_MINUTES = CODE_TTL_SECONDS // 60
FORCE_LOGOUT = "force_logout"
ANONYMOUS = "anonymous"

_SUBJECTS = {LOGIN: "Your TrueBond login code", EMAIL_VERIFY: "Verify your TrueBond email"}
_INTROS = {LOGIN: "Use this code to log in to TrueBond", EMAIL_VERIFY: "Use this code to verify your email on TrueBond"}


class DeliveryTimer:
    """A running average of how long mail sends take, so answers that send nothing take as long.

    Without it an unknown email would answer faster than a known one (no provider call), and
    the response time would tell which addresses have accounts.
    """

    def __init__(self, initial_seconds: float = 0.05, weight: float = 0.2, cap_seconds: float = 2.0) -> None:
        self._average = initial_seconds
        self._weight = weight
        self._cap = cap_seconds

    def record(self, seconds: float) -> None:
        """Fold one measured send duration into the average."""
        self._average += self._weight * (min(seconds, self._cap) - self._average)

    async def wait_like_a_send(self) -> None:
        """Sleep about as long as a send takes (with jitter)."""
        await asyncio.sleep(self._average * random.uniform(0.8, 1.2))

    async def send(self, unit: Unit, mail: Mail) -> None:
        """Send through the unit's adapter, timing it (EmailFailed propagates)."""
        started = time.perf_counter()
        try:
            await unit.email.send(mail)
        finally:
            self.record(time.perf_counter() - started)


DELIVERY = DeliveryTimer()


class InvalidOtp(Exception):
    """The code was wrong, expired, already used or never issued (one answer for all)."""


@attrs.frozen
class OtpLogin:
    """A successful login with a code: the new session and the account."""

    tokens: SessionTokens
    user: dict[str, Any]
    logged_out_sessions: int


def new_code() -> str:
    """Six random digits from `secrets`."""
    return f"{secrets.randbelow(10**6):06d}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


async def _audit(unit: Unit, ehash: str, event: Event, event_id: str, meta: Meta) -> None:
    """Append to `otp-<ehash>`, the audit stream of a normalised email (`identity.digest`)."""
    stream = f"otp-{ehash}"

    async def attempt() -> None:
        head = await unit.store.head(stream)
        await unit.append(stream, head, event, event_id=event_id, meta=meta)

    await with_retry(attempt)


def _meta(client: Client, actor: str = ANONYMOUS) -> Meta:
    return Meta(actor=actor, request_id=client.request_id)


def _mail(purpose: Purpose, to: str, code: str) -> Mail:
    text = (
        f"{_INTROS[purpose]}: {code}\n\n"
        f"The code expires in {EXPIRES_IN_MINUTES} minutes and works once. "
        "If you did not ask for it, ignore this email; nobody can use it without access to your inbox."
    )
    return Mail(to=to, subject=_SUBJECTS[purpose], text=text)


async def send_code(
    unit: Unit, purpose: Purpose, email: str, client: Client, remote: str, *, deliver: bool, actor: str = ANONYMOUS
) -> None:
    """Issue a code for `purpose`: count the send, mail it when `deliver`, store its HMAC, audit.

    The same work happens whether or not the mail is sent. A failed mail raises DependencyDown
    and gives the send allowance back.
    """
    ehash = identity.digest(email)
    ticket = new_id()
    meta = _meta(client, actor)
    await unit.otp.reserve_send(SEND_BUCKET, purpose, ehash, remote, ticket)
    code = new_code()
    code_id = ticket
    if not deliver:
        await DELIVERY.wait_like_a_send()
    else:
        try:
            await DELIVERY.send(unit, _mail(purpose, email, code))
        except EmailFailed:
            await unit.otp.release_send(SEND_BUCKET, ehash, remote, ticket)
            await _audit(unit, ehash, OtpSendFailed(purpose=purpose, code_id=code_id, ip=client.ip), f"otp-send-failed:{code_id}", meta)
            raise DependencyDown("Email service unavailable") from None
    expires_at = unit.otp.expires_at()
    previous = await unit.otp.store_code(purpose, ehash, code, code_id)
    if previous is not None and previous.expired:
        await _audit(unit, ehash, OtpExpired(purpose=purpose, code_id=previous.code_id), f"otp-expired:{previous.code_id}", meta)
    sent = OtpSent(
        purpose=purpose,
        code_id=code_id,
        expires_at=_iso(expires_at),
        ip=client.ip,
        delivered=deliver,
        replaced_code_id=previous.code_id if previous is not None and not previous.expired else None,
    )
    await _audit(unit, ehash, sent, f"otp-sent:{code_id}", meta)


async def check_code(unit: Unit, purpose: Purpose, email: str, code: str, client: Client, remote: str, *, actor: str = ANONYMOUS) -> str:
    """Use up a code; returns its id. Raises InvalidOtp, or RateLimited while locked.

    Every outcome is audited on the email's OTP stream (the code itself never is).
    """
    ehash = identity.digest(email)
    meta = _meta(client, actor)
    attempt_id = new_id()
    outcome = await unit.otp.verify(purpose, ehash, code, remote, attempt_id)
    code_id = outcome.code_id
    if outcome.status == "ok" and code_id is not None:
        await _audit(unit, ehash, OtpVerified(purpose=purpose, code_id=code_id, ip=client.ip), f"otp-verified:{code_id}", meta)
        return code_id
    if outcome.status == "expired" and code_id is not None:
        await _audit(unit, ehash, OtpExpired(purpose=purpose, code_id=code_id), f"otp-expired:{code_id}", meta)
    reason = {"wrong": "wrong", "locked_now": "wrong", "expired": "expired", "missing": "no_code", "locked": "locked"}[outcome.status]
    failed = OtpVerifyFailed(purpose=purpose, reason=reason, code_id=code_id, tries=outcome.tries, ip=client.ip)
    failed_id = f"otp-failed:{code_id}:{outcome.tries}" if reason == "wrong" else f"otp-failed:{attempt_id}"
    await _audit(unit, ehash, failed, failed_id, meta)
    if outcome.status == "locked_now" and code_id is not None:
        until = _iso(unit.clock.time() + outcome.retry_after)
        await _audit(unit, ehash, OtpLocked(purpose=purpose, code_id=code_id, until=until, ip=client.ip), f"otp-locked:{code_id}", meta)
    if outcome.status in ("locked", "locked_now"):
        raise RateLimited(retry_after=outcome.retry_after, detail="Too many wrong codes; try again later")
    raise InvalidOtp()


async def record_expired_codes(unit: Unit, limit: int = 500) -> int:
    """Audit codes that ran out unused with nobody presenting them again; returns how many.

    Run by the maintenance sweep. The event id is the one a verification or a resend uses when
    it notices the same expiry first, so each code's expiry is recorded exactly once.
    """
    expired = await unit.otp.expired_codes(limit)
    meta = Meta(actor="system")
    for code in expired:
        event = OtpExpired(purpose=code.purpose, code_id=code.code_id)
        await _audit(unit, code.ehash, event, f"otp-expired:{code.code_id}", meta)
    await unit.otp.forget_expired(expired)
    return len(expired)


def _active(user: dict[str, Any] | None) -> bool:
    return user is not None and user.get("status") == "active"


async def send_login_code(unit: Unit, email: str, client: Client, remote: str) -> None:
    """POST /api/auth/otp/send-for-login: the same work and answer for every email."""
    email = identity.normalise_email(email)
    user = await users_view.by_email(unit.db, email)
    await send_code(unit, LOGIN, email, client, remote, deliver=_active(user))


async def mark_verified(unit: Unit, user_id: str, method: str, event_id: str, meta: Meta) -> None:
    """Append EmailVerified to the user's stream unless the account is verified already."""

    async def attempt() -> None:
        doc, head = await unit.load(USERS, f"user-{user_id}", user_id)
        if doc is None or doc.get("is_verified"):
            return
        await unit.append(f"user-{user_id}", head, EmailVerified(method=method), event_id=event_id, meta=meta)

    await with_retry(attempt)


async def login_with_code(unit: Unit, email: str, code: str, device_id: str | None, client: Client, remote: str) -> OtpLogin:
    """POST /api/auth/login-with-otp: use the code, open a session, log the previous device out.

    A login naming a device_id sends `force_logout` to every live session of the account on
    another device, then revokes those sessions (one device at a time for OTP logins).

    The first login with a code is also the first proof that someone reads the account's inbox:
    every session opened before it ends too. Those sessions were opened by whoever knew the
    password of an unproven address, perhaps someone who signed up with another person's email
    to wait until that person took the account over (a pre-account takeover).
    """
    email = identity.normalise_email(email)
    code_id = await check_code(unit, LOGIN, email, code, client, remote)
    user = await users_view.by_email(unit.db, email)
    if user is None or not _active(user):
        # A code can only be right for an unknown email by chance: same answer as a wrong one.
        raise InvalidOtp()
    user_id = str(user["_id"])
    meta = _meta(client, f"user:{user_id}")
    first_proof = not user.get("is_verified")
    await mark_verified(unit, user_id, "otp_login", f"email-verified:{user_id}:{code_id}", meta)
    previous = await sessions_view.live_for_user(unit.db, user_id, unit.clock.now(), limit=None)
    tokens = await identity.start_session(unit, user_id, str(user.get("role", "user")), device_id, client, method="otp")
    logged_out = 0
    for doc in previous:
        other = doc.get("device_id")
        if device_id and other and other != device_id:
            reason, message = "new_device_login", "You logged in on another device"
        elif first_proof:
            reason, message = "email_verified", "Please log in again"
        else:
            continue
        session_id = str(doc["_id"])
        await unit.notifier.emit_to_session(session_id, FORCE_LOGOUT, {"reason": reason, "message": message})
        if await identity.revoke_session(unit, user_id, session_id, reason, meta):
            logged_out += 1
    fresh = await users_view.by_id(unit.db, user_id)
    return OtpLogin(tokens=tokens, user=fresh or user, logged_out_sessions=logged_out)


def _own_email(caller_user: dict[str, Any], email: str) -> str:
    email = identity.normalise_email(email)
    if email != caller_user.get("email"):
        raise NotYourEmail()
    return email


async def send_verification_code(unit: Unit, user_id: str, caller_user: dict[str, Any], email: str, client: Client, remote: str) -> None:
    """POST /api/auth/email/send-otp: a code to the caller's own, unverified email."""
    email = _own_email(caller_user, email)
    if caller_user.get("is_verified"):
        raise AlreadyVerified()
    await send_code(unit, EMAIL_VERIFY, email, client, remote, deliver=True, actor=f"user:{user_id}")


async def verify_email(unit: Unit, user_id: str, caller_user: dict[str, Any], email: str, code: str, client: Client, remote: str) -> None:
    """POST /api/auth/email/verify-otp: a right code marks the account verified (an event)."""
    email = _own_email(caller_user, email)
    actor = f"user:{user_id}"
    code_id = await check_code(unit, EMAIL_VERIFY, email, code, client, remote, actor=actor)
    await mark_verified(unit, user_id, "email_otp", f"email-verified:{user_id}:{code_id}", _meta(client, actor))
    log.info("email.verified", user_id=user_id)


HANDLERS: HandlerTable = {}
REACTIONS: ReactionTable = {}
