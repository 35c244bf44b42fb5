"""Account safety: password reset by emailed link, GDPR-style deletion, referral rewards."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import attrs
from redis.exceptions import RedisError

from truebond.adapters.email import EmailFailed, Mail
from truebond.adapters.otp_store import RESET_TTL_SECONDS
from truebond.adapters.storage import StorageUnavailable
from truebond.commands import otp
from truebond.commands.bus import Bus, Command, Context, HandlerTable, Reaction, ReactionTable
from truebond.commands.decide import Decision, Loader, decide_and_append, head_only, read_model
from truebond.commands.identity import digest, drop_session, normalise_email, release, revoke_all, revoke_session
from truebond.commands.ledger import LedgerResult, credit
from truebond.commands.unit import Unit, new_id
from truebond.errors import DependencyDown, InvalidResetToken
from truebond.events.account import AccountDeleted, AccountErased, PasswordResetRequested
from truebond.events.base import Meta, Recorded
from truebond.events.crypto import ERASED
from truebond.events.identity import PasswordChanged, UserRegistered
from truebond.events.ledger import ReferralRewardGranted
from truebond.events.profile import PhotoAdded
from truebond.logging import get_logger
from truebond.projections import sessions as sessions_view
from truebond.projections import users as users_view
from truebond.projections.users import USERS

log = get_logger(__name__)

REFERRAL_REWARD = 50
RESET_BUCKET = "reset"
RESET_PURPOSE = "password_reset"
INVALID_RESET = "This reset link is invalid or has expired"


@attrs.frozen
class ForgotPassword(Command[None]):
    """Mail a reset link to the account of `email`, if it has an active one (one answer for any)."""

    email: str


@attrs.frozen
class ResetPassword(Command[int]):
    """Use a reset token once: a new password, and every session ends; returns how many."""

    token: str = attrs.field(repr=False)
    new_password: str = attrs.field(repr=False)


@attrs.frozen
class DeleteAccount(Command[None]):
    """Soft-delete an account; the erasure follows as a reaction to AccountDeleted."""

    user_id: str


@attrs.frozen
class FinishErasure(Command[int]):
    """Complete a recorded deletion (idempotent); returns the sessions it revoked."""

    user_id: str


@attrs.frozen
class GrantReferralReward(Command[LedgerResult]):
    """Credit the referrer 50 coins for `referred_id`'s signup, once."""

    referrer_id: str
    referred_id: str


# -- password reset ------------------------------------------------------------------------


def reset_link(frontend_url: str, token: str) -> str:
    """The emailed link: always FRONTEND_URL (stored without a trailing slash) + /reset-password."""
    return f"{frontend_url}/reset-password?token={quote(token, safe='')}"


def _user_stream(user_id: str) -> tuple[str, Loader[dict[str, Any] | None]]:
    """A user's stream and the loader of its read model (state caught up to the head)."""
    stream = f"user-{user_id}"
    return stream, read_model(USERS, stream, user_id)


async def send_reset_link(cmd: ForgotPassword, ctx: Context, deps: Unit) -> None:
    """Mail a 15-minute, single-use reset link to an active account; one answer for any email.

    The send is counted for every email (3 an hour, 60 s apart; 10 an hour per IP); a failed
    mail raises DependencyDown and gives the allowance back.
    """
    email = normalise_email(cmd.email)
    ehash = digest(email)
    ticket = new_id()
    await deps.otp.reserve_send(RESET_BUCKET, RESET_PURPOSE, ehash, ctx.remote, ticket)
    user = await users_view.by_email(deps.db, email)
    if user is None or user.get("status") != "active":
        await otp.DELIVERY.wait_like_a_send()
        return
    user_id = str(user["_id"])
    token = secrets.token_urlsafe(32)
    text = (
        "Someone asked to reset the password of your TrueBond account.\n\n"
        f"Open this link within {RESET_TTL_SECONDS // 60} minutes to choose a new password (it works once):\n"
        f"{reset_link(deps.settings.frontend_url, token)}\n\n"
        "If it was not you, ignore this email; your password stays as it is."
    )
    try:
        await otp.DELIVERY.send(deps, Mail(to=email, subject="Reset your TrueBond password", text=text))
    except EmailFailed:
        await deps.otp.release_send(RESET_BUCKET, ehash, ctx.remote, ticket)
        raise DependencyDown("Email service unavailable") from None
    await deps.otp.put_reset_token(token, user_id)
    expires_at = datetime.fromtimestamp(deps.clock.time() + RESET_TTL_SECONDS, UTC).isoformat()
    requested = Decision(PasswordResetRequested(expires_at=expires_at, ip=ctx.ip), f"reset-requested:{ticket}")
    await decide_and_append(deps, *_user_stream(user_id), lambda _: requested, ctx.meta())


async def reset_token_valid(deps: Unit, token: str) -> bool:
    """Whether a reset token is live and its account can still use it (a read: the token stays usable)."""
    user_id = await deps.otp.reset_token_user(token, consume=False)
    if user_id is None:
        return False
    user = await users_view.by_id(deps.db, user_id)
    return user is not None and user.get("status") == "active"


async def reset_password(cmd: ResetPassword, ctx: Context, deps: Unit) -> int:
    """Use a reset token once: store the new password hash and revoke every session.

    Returns how many sessions were revoked; an unknown, used or expired token is BadRequest.
    """
    user_id = await deps.otp.reset_token_user(cmd.token, consume=True)
    if user_id is None:
        raise InvalidResetToken(INVALID_RESET)
    user = await users_view.by_id(deps.db, user_id)
    if user is None or user.get("status") != "active":
        raise InvalidResetToken(INVALID_RESET)
    meta = ctx.meta(actor=f"user:{user_id}")
    password_hash = await deps.passwords.hash_async(cmd.new_password)
    reset_id = deps.otp.token_hash(cmd.token)[:32]
    changed = Decision(PasswordChanged(password_hash=password_hash), f"password-reset:{reset_id}", subject=user_id)
    await decide_and_append(deps, *_user_stream(user_id), lambda _: changed, meta)
    revoked = await revoke_all(deps, meta, user_id, "password_reset")
    log.info("password.reset", user_id=user_id, sessions_revoked=revoked)
    return revoked


# -- deletion ------------------------------------------------------------------------------


async def delete_account(cmd: DeleteAccount, ctx: Context, deps: Unit) -> None:
    """Soft-delete an account (GDPR-style).

    The AccountDeleted event comes first: from then on the account cannot log in, be seen or be
    used, and its read model is anonymised. Its reaction `erase_deleted_account` does the rest
    before the answer; when one of the steps fails (Redis, photo storage or MongoDB unavailable)
    the deletion still stands: the answer is the same and the maintenance sweep finishes the
    erasure as soon as it can.
    """
    deleted = Decision(AccountDeleted(user_id=cmd.user_id), f"account-deleted:{cmd.user_id}")
    await decide_and_append(deps, *_user_stream(cmd.user_id), lambda _: deleted, ctx.meta())


async def finish_erasure(cmd: FinishErasure, ctx: Context, deps: Unit) -> int:
    """Complete a recorded deletion (see `erase`); its events are caused by the deletion."""
    return await erase(deps, ctx.meta(causation_id=f"account-deleted:{cmd.user_id}"), cmd.user_id)


async def erase(deps: Unit, meta: Meta, user_id: str) -> int:
    """Complete a recorded deletion; safe to run any number of times, also concurrently.

    Every step is idempotent: end every session and drop its sockets; release the email and
    phone for new accounts; delete the photos from storage; destroy the person's key (their
    data in past events becomes unreadable); record AccountErased. The key goes only after the
    steps that read the person's data from the events (email, phone, photo URLs). A failure
    raises, and AccountErased stays unrecorded so the sweep runs the erasure again; a Redis
    failure while ending sessions does not hold back the rest. Returns the sessions revoked.
    """
    stream = f"user-{user_id}"
    records = await deps.store.load(stream)
    if not any(isinstance(rec.event, AccountDeleted) for rec in records):
        return 0
    erased = next((rec for rec in records if isinstance(rec.event, AccountErased)), None)
    if erased is not None:
        await deps.projections.apply(erased)  # heals a read model that missed it
        return 0
    sessions_failed: Exception | None = None
    revoked = 0
    try:
        revoked = await _end_sessions(deps, user_id, meta)
    except Exception as exc:  # noqa: BLE001 - retried by the sweep; the key must not wait for Redis
        sessions_failed = exc
    registered = next((rec.event for rec in records if isinstance(rec.event, UserRegistered)), None)
    if registered is not None:
        # The claim streams are keyed by a hash of the value; releasing lets the value sign up again.
        for kind, value in (("email", registered.email), ("phone", registered.mobile_number)):
            if value and value != ERASED:
                await release(deps, kind, value, user_id, meta)
    photos = sorted({rec.event.url for rec in records if isinstance(rec.event, PhotoAdded) and rec.event.url != ERASED})
    for url in photos:
        if not deps.storage.owns(url):
            # Stored under another provider or bucket: this process cannot remove it (the
            # sweep needs the CLOUD_STORAGE_* settings of the web process). Say so, go on.
            log.warning("account.photo_not_ours", user_id=user_id)
            continue
        try:
            await deps.storage.delete(url)
        except StorageUnavailable:
            raise DependencyDown("Photo storage unavailable") from None
    await deps.store.keys.erase(user_id)
    if sessions_failed is not None:
        raise sessions_failed
    done = Decision(AccountErased(user_id=user_id), f"account-erased:{user_id}")
    await decide_and_append(deps, stream, head_only(stream), lambda _: done, meta)
    log.info("account.erased", user_id=user_id, sessions_revoked=revoked, photos_deleted=len(photos))
    return revoked


async def _end_sessions(deps: Unit, user_id: str, meta: Meta) -> int:
    """Revoke every live session and drop the sockets of every unexpired one; Redis must answer.

    A live session gets SessionRevoked: its reaction drops the allow-list entry and the sockets
    as soon as this command is done (re-driven from the store if that is lost). Dropping
    tolerates Redis failures (the allow-list and the socket registry are caches), which would
    leave sockets open on other servers: sessions revoked earlier are dropped again here, and
    the step counts as done only if Redis answers afterwards.
    """
    revoked = 0
    for session_id in await sessions_view.unexpired_ids(deps.db, user_id, deps.clock.now()):
        if await revoke_session(deps, meta, user_id, session_id, "account_deleted"):
            revoked += 1
        else:
            await drop_session(deps, session_id)
    try:
        await deps.redis.ping()
    except (RedisError, OSError) as exc:
        raise DependencyDown("Session store unavailable") from exc
    return revoked


async def erase_deleted_account(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Reaction to AccountDeleted: FinishErasure. A failure leaves the erasure pending (logged);
    the deletion stands, and the maintenance sweep or the reactions follower finishes it."""
    event = rec.event
    assert isinstance(event, AccountDeleted)
    try:
        await bus.handle(FinishErasure(user_id=event.user_id), ctx)
    except Exception as exc:  # the deletion is recorded; the sweep retries the erasure
        log.warning("account.erasure_deferred", user_id=event.user_id, error=type(exc).__name__, exc_info=True)


# -- referral ------------------------------------------------------------------------------


async def grant_referral_reward(cmd: GrantReferralReward, ctx: Context, deps: Unit) -> LedgerResult:
    """Credit the referrer 50 coins for the referred signup, once (`referral:<referred>`)."""
    meta = ctx.meta(actor="system", causation_id=f"signup:{cmd.referred_id}")
    return await credit(
        deps,
        cmd.referrer_id,
        REFERRAL_REWARD,
        event_class=ReferralRewardGranted,
        reason="referral",
        reference=f"user:{cmd.referred_id}",
        event_id=f"referral:{cmd.referred_id}",
        meta=meta,
        description="Referral reward",
    )


async def reward_referrer(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Reaction to UserRegistered: a signup with a valid referral code rewards its referrer."""
    event = rec.event
    assert isinstance(event, UserRegistered)
    if event.referred_by is not None and event.referred_by != event.user_id:
        await bus.handle(GrantReferralReward(referrer_id=event.referred_by, referred_id=event.user_id), ctx)


HANDLERS: HandlerTable = {
    ForgotPassword: send_reset_link,
    ResetPassword: reset_password,
    DeleteAccount: delete_account,
    FinishErasure: finish_erasure,
    GrantReferralReward: grant_referral_reward,
}
# Both are idempotent (`referral:<referred>`, an erasure that already finished does nothing),
# and losing either would lose coins or leave personal data readable: re-driven from the store.
REACTIONS: ReactionTable = {
    AccountDeleted: [Reaction(erase_deleted_account, redrive=True)],
    UserRegistered: [Reaction(reward_referrer, redrive=True)],
}
