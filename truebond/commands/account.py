"""Account safety: password reset by emailed link, GDPR-style deletion, referral rewards."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from urllib.parse import quote

from redis.exceptions import RedisError

from truebond.adapters.email import EmailFailed, Mail
from truebond.adapters.otp_store import RESET_TTL_SECONDS
from truebond.adapters.storage import StorageUnavailable
from truebond.commands import identity, otp
from truebond.commands.bus import HandlerTable, ReactionTable
from truebond.commands.identity import Client
from truebond.commands.ledger import LedgerResult, credit
from truebond.commands.unit import Unit, new_id
from truebond.errors import DependencyDown, InvalidResetToken
from truebond.events.account import AccountDeleted, AccountErased, PasswordResetRequested
from truebond.events.base import Meta
from truebond.events.crypto import ERASED
from truebond.events.identity import PasswordChanged, UserRegistered
from truebond.events.ledger import ReferralRewardGranted
from truebond.events.profile import PhotoAdded
from truebond.events.store import with_retry
from truebond.logging import get_logger
from truebond.projections import sessions as sessions_view
from truebond.projections import users as users_view
from truebond.projections.users import USERS

log = get_logger(__name__)

REFERRAL_REWARD = 50
RESET_BUCKET = "reset"
RESET_PURPOSE = "password_reset"
INVALID_RESET = "This reset link is invalid or has expired"


# -- password reset ------------------------------------------------------------------------


def reset_link(frontend_url: str, token: str) -> str:
    """The emailed link: always FRONTEND_URL (stored without a trailing slash) + /reset-password."""
    return f"{frontend_url}/reset-password?token={quote(token, safe='')}"


async def forgot_password(unit: Unit, email: str, client: Client, remote: str) -> None:
    """Mail a 15-minute, single-use reset link to an active account; one answer for any email.

    The send is counted for every email (3 an hour, 60 s apart; 10 an hour per IP); a failed
    mail raises DependencyDown and gives the allowance back.
    """
    email = identity.normalise_email(email)
    ehash = identity.digest(email)
    ticket = new_id()
    await unit.otp.reserve_send(RESET_BUCKET, RESET_PURPOSE, ehash, remote, ticket)
    user = await users_view.by_email(unit.db, email)
    if user is None or user.get("status") != "active":
        await otp.DELIVERY.wait_like_a_send()
        return
    user_id = str(user["_id"])
    token = secrets.token_urlsafe(32)
    text = (
        "Someone asked to reset the password of your TrueBond account.\n\n"
        f"Open this link within {RESET_TTL_SECONDS // 60} minutes to choose a new password (it works once):\n"
        f"{reset_link(unit.settings.frontend_url, token)}\n\n"
        "If it was not you, ignore this email; your password stays as it is."
    )
    try:
        await otp.DELIVERY.send(unit, Mail(to=email, subject="Reset your TrueBond password", text=text))
    except EmailFailed:
        await unit.otp.release_send(RESET_BUCKET, ehash, remote, ticket)
        raise DependencyDown("Email service unavailable") from None
    await unit.otp.put_reset_token(token, user_id)
    expires_at = datetime.fromtimestamp(unit.clock.time() + RESET_TTL_SECONDS, UTC).isoformat()
    meta = Meta(actor="anonymous", request_id=client.request_id)

    async def attempt() -> None:
        _, head = await unit.load(USERS, f"user-{user_id}", user_id)
        event = PasswordResetRequested(expires_at=expires_at, ip=client.ip)
        await unit.append(f"user-{user_id}", head, event, event_id=f"reset-requested:{ticket}", meta=meta)

    await with_retry(attempt)


async def reset_token_valid(unit: Unit, token: str) -> bool:
    """Whether a reset token is live and its account can still use it (does not use it up)."""
    user_id = await unit.otp.reset_token_user(token, consume=False)
    if user_id is None:
        return False
    user = await users_view.by_id(unit.db, user_id)
    return user is not None and user.get("status") == "active"


async def reset_password(unit: Unit, token: str, new_password: str, client: Client) -> int:
    """Use a reset token once: store the new password hash and revoke every session.

    Returns how many sessions were revoked; an unknown, used or expired token is BadRequest.
    """
    user_id = await unit.otp.reset_token_user(token, consume=True)
    if user_id is None:
        raise InvalidResetToken(INVALID_RESET)
    user = await users_view.by_id(unit.db, user_id)
    if user is None or user.get("status") != "active":
        raise InvalidResetToken(INVALID_RESET)
    meta = Meta(actor=f"user:{user_id}", request_id=client.request_id)
    password_hash = await unit.passwords.hash_async(new_password)
    reset_id = unit.otp.token_hash(token)[:32]

    async def attempt() -> None:
        _, head = await unit.load(USERS, f"user-{user_id}", user_id)
        event = PasswordChanged(password_hash=password_hash)
        await unit.append(f"user-{user_id}", head, event, event_id=f"password-reset:{reset_id}", meta=meta, subject=user_id)

    await with_retry(attempt)
    revoked = await identity.revoke_all(unit, user_id, "password_reset", meta)
    log.info("password.reset", user_id=user_id, sessions_revoked=revoked)
    return revoked


# -- deletion ------------------------------------------------------------------------------


async def delete_account(unit: Unit, user_id: str, client: Client) -> int:
    """Soft-delete an account (GDPR-style); returns how many sessions were revoked.

    The AccountDeleted event comes first: from then on the account cannot log in, be seen or be
    used, and its read model is anonymised. `finish_deletion` does the rest. When one of its
    steps fails (Redis, photo storage or MongoDB unavailable) the deletion still stands: the
    answer is the same and the maintenance sweep finishes the erasure as soon as it can.
    """
    meta = Meta(actor=f"user:{user_id}", request_id=client.request_id)

    async def attempt() -> None:
        _, head = await unit.load(USERS, f"user-{user_id}", user_id)
        await unit.append(f"user-{user_id}", head, AccountDeleted(user_id=user_id), event_id=f"account-deleted:{user_id}", meta=meta)

    await with_retry(attempt)
    try:
        return await finish_deletion(unit, user_id, meta)
    except Exception as exc:  # the deletion is recorded; the sweep retries the erasure
        log.warning("account.erasure_deferred", user_id=user_id, error=type(exc).__name__, exc_info=True)
        return 0


async def finish_deletion(unit: Unit, user_id: str, meta: Meta) -> int:
    """Complete a recorded deletion; safe to run any number of times, also concurrently.

    Every step is idempotent: end every session and drop its sockets; release the email and
    phone for new accounts; delete the photos from storage; destroy the person's key (their
    data in past events becomes unreadable); record AccountErased. The key goes only after the
    steps that read the person's data from the events (email, phone, photo URLs). A failure
    raises, and AccountErased stays unrecorded so the sweep runs the erasure again; a Redis
    failure while ending sessions does not hold back the rest. Returns the sessions revoked.
    """
    stream = f"user-{user_id}"
    records = await unit.store.load(stream)
    if not any(isinstance(rec.event, AccountDeleted) for rec in records):
        return 0
    erased = next((rec for rec in records if isinstance(rec.event, AccountErased)), None)
    if erased is not None:
        await unit.projections.apply(erased)  # heals a read model that missed it
        return 0
    sessions_failed: Exception | None = None
    revoked = 0
    try:
        revoked = await _end_sessions(unit, user_id, meta)
    except Exception as exc:  # noqa: BLE001 - retried by the sweep; the key must not wait for Redis
        sessions_failed = exc
    registered = next((rec.event for rec in records if isinstance(rec.event, UserRegistered)), None)
    if registered is not None:
        # The claim streams are keyed by a hash of the value; releasing lets the value sign up again.
        for kind, value in (("email", registered.email), ("phone", registered.mobile_number)):
            if value and value != ERASED:
                await identity.release(unit, kind, value, user_id, meta)
    photos = sorted({rec.event.url for rec in records if isinstance(rec.event, PhotoAdded) and rec.event.url != ERASED})
    for url in photos:
        if not unit.storage.owns(url):
            # Stored under another provider or bucket: this process cannot remove it (the
            # sweep needs the CLOUD_STORAGE_* settings of the web process). Say so, go on.
            log.warning("account.photo_not_ours", user_id=user_id)
            continue
        try:
            await unit.storage.delete(url)
        except StorageUnavailable:
            raise DependencyDown("Photo storage unavailable") from None
    await unit.store.keys.erase(user_id)
    if sessions_failed is not None:
        raise sessions_failed

    async def record() -> None:
        head = await unit.store.head(stream)
        await unit.append(stream, head, AccountErased(user_id=user_id), event_id=f"account-erased:{user_id}", meta=meta)

    await with_retry(record)
    log.info("account.erased", user_id=user_id, sessions_revoked=revoked, photos_deleted=len(photos))
    return revoked


async def _end_sessions(unit: Unit, user_id: str, meta: Meta) -> int:
    """Revoke every live session and drop the sockets of every unexpired one; Redis must answer.

    Revocation tolerates Redis failures (its allow-list and socket registry are caches), which
    would leave sockets open on other servers: sessions revoked earlier are dropped again here,
    and the step counts as done only if Redis answers afterwards.
    """
    revoked = 0
    for session_id in await sessions_view.unexpired_ids(unit.db, user_id, unit.clock.now()):
        if await identity.revoke_session(unit, user_id, session_id, "account_deleted", meta):
            revoked += 1
        else:
            await unit.sessions.revoke(session_id)
            await unit.notifier.disconnect_session(session_id)
    try:
        await unit.redis.ping()
    except (RedisError, OSError) as exc:
        raise DependencyDown("Session store unavailable") from exc
    return revoked


async def complete_pending_deletions(unit: Unit, limit: int = 100) -> int:
    """The maintenance sweep's part: finish every deletion whose erasure is pending; returns how many finished."""
    finished = 0
    for user_id in await users_view.pending_erasures(unit.db, limit):
        try:
            await finish_deletion(unit, user_id, Meta(actor="system", causation_id=f"account-deleted:{user_id}"))
        except Exception as exc:  # one stuck erasure must not stop the others
            log.warning("account.erasure_deferred", user_id=user_id, error=type(exc).__name__, exc_info=True)
            continue
        finished += 1
    return finished


# -- referral ------------------------------------------------------------------------------


async def grant_referral_reward(unit: Unit, referrer_id: str, referred_id: str, meta: Meta) -> LedgerResult:
    """Credit the referrer 50 coins for `referred_id`'s signup, once (`referral:<referred>`)."""
    reward_meta = Meta(actor="system", request_id=meta.request_id, causation_id=f"signup:{referred_id}")
    return await credit(
        unit,
        referrer_id,
        REFERRAL_REWARD,
        event_class=ReferralRewardGranted,
        reason="referral",
        reference=f"user:{referred_id}",
        event_id=f"referral:{referred_id}",
        meta=reward_meta,
        description="Referral reward",
    )


async def after_signup(unit: Unit, user_id: str, referrer_id: str | None, meta: Meta) -> None:
    """The signup hook: reward the referrer of a valid referral code."""
    if referrer_id is not None and referrer_id != user_id:
        await grant_referral_reward(unit, referrer_id, user_id, meta)


HANDLERS: HandlerTable = {}
REACTIONS: ReactionTable = {}
