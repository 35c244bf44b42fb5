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
from truebond.commands.bus import Command, Context, HandlerTable, ReactionTable
from truebond.commands.decide import Decided, Decision, decide_and_append, head_only, read_model
from truebond.commands.identity import SessionTokens, clear_login_lock, digest, normalise_email, revoke_session, start_session
from truebond.commands.unit import Unit, new_id
from truebond.errors import AlreadyVerified, DependencyDown, DomainError, InvalidOtp, NotYourEmail, RateLimited, WrongVerificationCode
from truebond.events.account import EmailVerified
from truebond.events.base import Event, Meta
from truebond.events.otp import OtpExpired, OtpLocked, OtpSendFailed, OtpSent, OtpVerified, OtpVerifyFailed
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


@attrs.frozen
class OtpLogin:
    """A successful login with a code: the new session and the account."""

    tokens: SessionTokens
    user: dict[str, Any]
    logged_out_sessions: int


@attrs.frozen
class SendLoginOtp(Command[None]):
    """Mail a login code (the same work and answer for every email)."""

    email: str


@attrs.frozen
class LoginWithOtp(Command[OtpLogin]):
    """Log in with a mailed code; a `device_id` logs the account's other devices out."""

    email: str
    code: str = attrs.field(repr=False)
    device_id: str | None = None


@attrs.frozen
class SendEmailOtp(Command[None]):
    """Mail a verification code to the caller's own, unverified email."""

    user_id: str
    email: str


@attrs.frozen
class VerifyEmailOtp(Command[None]):
    """Mark the caller's email verified with a mailed code."""

    user_id: str
    email: str
    code: str = attrs.field(repr=False)


def new_code() -> str:
    """Six random digits from `secrets`."""
    return f"{secrets.randbelow(10**6):06d}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


async def audit(deps: Unit, ehash: str, event: Event, event_id: str, meta: Meta) -> None:
    """Append to `otp-<ehash>`, the audit stream of a normalised email (`identity.digest`)."""
    stream = f"otp-{ehash}"
    await decide_and_append(deps, stream, head_only(stream), lambda _: Decision(event, event_id), meta)


def _mail(purpose: Purpose, to: str, code: str) -> Mail:
    text = (
        f"{_INTROS[purpose]}: {code}\n\n"
        f"The code expires in {EXPIRES_IN_MINUTES} minutes and works once. "
        "If you did not ask for it, ignore this email; nobody can use it without access to your inbox."
    )
    return Mail(to=to, subject=_SUBJECTS[purpose], text=text)


async def send_code(deps: Unit, ctx: Context, purpose: Purpose, email: str, *, deliver: bool) -> None:
    """Issue a code for `purpose`: count the send, mail it when `deliver`, store its HMAC, audit.

    The same work happens whether or not the mail is sent. A failed mail raises DependencyDown
    and gives the send allowance back.
    """
    ehash = digest(email)
    ticket = new_id()
    meta = ctx.meta()
    await deps.otp.reserve_send(SEND_BUCKET, purpose, ehash, ctx.remote, ticket)
    code = new_code()
    code_id = ticket
    if not deliver:
        await DELIVERY.wait_like_a_send()
    else:
        try:
            await DELIVERY.send(deps, _mail(purpose, email, code))
        except EmailFailed:
            await deps.otp.release_send(SEND_BUCKET, ehash, ctx.remote, ticket)
            await audit(deps, ehash, OtpSendFailed(purpose=purpose, code_id=code_id, ip=ctx.ip), f"otp-send-failed:{code_id}", meta)
            raise DependencyDown("Email service unavailable") from None
    expires_at = deps.otp.expires_at()
    previous = await deps.otp.store_code(purpose, ehash, code, code_id)
    if previous is not None and previous.expired:
        await audit(deps, ehash, OtpExpired(purpose=purpose, code_id=previous.code_id), f"otp-expired:{previous.code_id}", meta)
    sent = OtpSent(
        purpose=purpose,
        code_id=code_id,
        expires_at=_iso(expires_at),
        ip=ctx.ip,
        delivered=deliver,
        replaced_code_id=previous.code_id if previous is not None and not previous.expired else None,
    )
    await audit(deps, ehash, sent, f"otp-sent:{code_id}", meta)


async def check_code(deps: Unit, ctx: Context, purpose: Purpose, email: str, code: str, refusal: type[DomainError]) -> str:
    """Use up a code; returns its id. Raises `refusal` for a wrong, expired or missing code, RateLimited while locked.

    Every outcome is audited on the email's OTP stream (the code itself never is).
    """
    ehash = digest(email)
    meta = ctx.meta()
    attempt_id = new_id()
    outcome = await deps.otp.verify(purpose, ehash, code, ctx.remote, attempt_id)
    code_id = outcome.code_id
    if outcome.status == "ok" and code_id is not None:
        await audit(deps, ehash, OtpVerified(purpose=purpose, code_id=code_id, ip=ctx.ip), f"otp-verified:{code_id}", meta)
        return code_id
    if outcome.status == "expired" and code_id is not None:
        await audit(deps, ehash, OtpExpired(purpose=purpose, code_id=code_id), f"otp-expired:{code_id}", meta)
    reason = {"wrong": "wrong", "locked_now": "wrong", "expired": "expired", "missing": "no_code", "locked": "locked"}[outcome.status]
    failed = OtpVerifyFailed(purpose=purpose, reason=reason, code_id=code_id, tries=outcome.tries, ip=ctx.ip)
    failed_id = f"otp-failed:{code_id}:{outcome.tries}" if reason == "wrong" else f"otp-failed:{attempt_id}"
    await audit(deps, ehash, failed, failed_id, meta)
    if outcome.status == "locked_now" and code_id is not None:
        until = _iso(deps.clock.time() + outcome.retry_after)
        await audit(deps, ehash, OtpLocked(purpose=purpose, code_id=code_id, until=until, ip=ctx.ip), f"otp-locked:{code_id}", meta)
    if outcome.status in ("locked", "locked_now"):
        raise RateLimited(retry_after=outcome.retry_after, detail="Too many wrong codes; try again later")
    raise refusal()


def _active(user: dict[str, Any] | None) -> bool:
    return user is not None and user.get("status") == "active"


async def send_login_otp(cmd: SendLoginOtp, ctx: Context, deps: Unit) -> None:
    """POST /api/auth/otp/send-for-login: the same work and answer for every email."""
    email = normalise_email(cmd.email)
    user = await users_view.by_email(deps.db, email)
    await send_code(deps, ctx, LOGIN, email, deliver=_active(user))


async def mark_verified(deps: Unit, user_id: str, method: str, event_id: str, meta: Meta) -> None:
    """Append EmailVerified to the user's stream unless the account is verified already."""

    def decide(doc: dict[str, Any] | None) -> Decided:
        if doc is None or doc.get("is_verified"):
            return None
        return Decision(EmailVerified(method=method), event_id)

    stream = f"user-{user_id}"
    await decide_and_append(deps, stream, read_model(USERS, stream, user_id), decide, meta)


def _logout_reason(doc: dict[str, Any], device_id: str | None, first_proof: bool) -> str | None:
    """Why a code login ends an earlier session, or None when that session stays."""
    other = doc.get("device_id")
    if device_id and other and other != device_id:
        return "new_device_login"
    return "email_verified" if first_proof else None


async def log_in_with_otp(cmd: LoginWithOtp, ctx: Context, deps: Unit) -> OtpLogin:
    """POST /api/auth/login-with-otp: use the code, open a session, log the previous device out.

    A login naming a device_id ends every live session of the account on another device; each
    gets `force_logout` before its sockets drop (the reaction to SessionRevoked, by its reason).

    The first login with a code is also the first proof that someone reads the account's inbox:
    every session opened before it ends too. Those sessions were opened by whoever knew the
    password of an unproven address, perhaps someone who signed up with another person's email
    to wait until that person took the account over (a pre-account takeover).
    """
    email = normalise_email(cmd.email)
    code_id = await check_code(deps, ctx, LOGIN, email, cmd.code, InvalidOtp)
    user = await users_view.by_email(deps.db, email)
    if user is None or not _active(user):
        # A code can only be right for an unknown email by chance: same answer as a wrong one.
        raise InvalidOtp()
    user_id = str(user["_id"])
    meta = ctx.meta(actor=f"user:{user_id}")
    first_proof = not user.get("is_verified")
    # Password failures from anywhere (an attacker's many IPs) must not lock the owner out: a
    # right code proves the inbox, so it lifts the password lock too.
    await clear_login_lock(deps, user_id)
    await mark_verified(deps, user_id, "otp_login", f"email-verified:{user_id}:{code_id}", meta)
    previous = await sessions_view.live_for_user(deps.db, user_id, deps.clock.now(), limit=None)
    tokens = await start_session(deps, ctx, user_id, str(user.get("role", "user")), cmd.device_id, method="otp")
    logged_out = 0
    for doc in previous:
        reason = _logout_reason(doc, cmd.device_id, first_proof)
        if reason is not None and await revoke_session(deps, meta, user_id, str(doc["_id"]), reason):
            logged_out += 1
    fresh = await users_view.by_id(deps.db, user_id)
    return OtpLogin(tokens=tokens, user=fresh or user, logged_out_sessions=logged_out)


async def _own_email(deps: Unit, user_id: str, email: str) -> tuple[str, dict[str, Any]]:
    """The caller's account and the normalised email, which must be the account's own."""
    user = await users_view.by_id(deps.db, user_id) or {}
    email = normalise_email(email)
    if email != user.get("email"):
        raise NotYourEmail()
    return email, user


async def send_email_otp(cmd: SendEmailOtp, ctx: Context, deps: Unit) -> None:
    """POST /api/auth/email/send-otp: a code to the caller's own, unverified email."""
    email, user = await _own_email(deps, cmd.user_id, cmd.email)
    if user.get("is_verified"):
        raise AlreadyVerified()
    await send_code(deps, ctx, EMAIL_VERIFY, email, deliver=True)


async def verify_email_otp(cmd: VerifyEmailOtp, ctx: Context, deps: Unit) -> None:
    """POST /api/auth/email/verify-otp: a right code marks the account verified (an event).

    A wrong code is a 400, not a 401: the caller's login is fine, only the code is not.
    """
    email, _ = await _own_email(deps, cmd.user_id, cmd.email)
    code_id = await check_code(deps, ctx, EMAIL_VERIFY, email, cmd.code, WrongVerificationCode)
    await mark_verified(deps, cmd.user_id, "email_otp", f"email-verified:{cmd.user_id}:{code_id}", ctx.meta())
    log.info("email.verified", user_id=cmd.user_id)


HANDLERS: HandlerTable = {
    SendLoginOtp: send_login_otp,
    LoginWithOtp: log_in_with_otp,
    SendEmailOtp: send_email_otp,
    VerifyEmailOtp: verify_email_otp,
}
REACTIONS: ReactionTable = {}
