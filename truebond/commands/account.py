"""Account safety: password reset by emailed link, GDPR-style deletion, referral rewards."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from urllib.parse import quote

from truebond.adapters.email import EmailFailed, Mail
from truebond.adapters.otp_store import RESET_TTL_SECONDS, email_hash
from truebond.adapters.storage import StorageUnavailable
from truebond.commands import identity, otp
from truebond.commands.identity import Client
from truebond.commands.ledger import LedgerResult, account_stream
from truebond.commands.unit import Unit, new_id
from truebond.errors import BadRequest, DependencyDown
from truebond.events.account import AccountDeleted, PasswordResetRequested
from truebond.events.base import Meta
from truebond.events.identity import PasswordChanged
from truebond.events.ledger import LedgerEvent, ReferralRewardGranted
from truebond.events.store import with_retry
from truebond.logging import get_logger
from truebond.projections import users as users_view
from truebond.projections.ledger import BALANCES
from truebond.projections.users import USERS

log = get_logger(__name__)

REFERRAL_REWARD = 50
RESET_BUCKET = "reset"
RESET_PURPOSE = "password_reset"
INVALID_RESET = "This reset link is invalid or has expired"


# -- password reset ------------------------------------------------------------------------


def reset_link(frontend_url: str, token: str) -> str:
    """The emailed link: always FRONTEND_URL + /reset-password, never a target from a request."""
    return f"{frontend_url.rstrip('/')}/reset-password?token={quote(token, safe='')}"


async def forgot_password(unit: Unit, email: str, client: Client, remote: str) -> None:
    """Mail a 15-minute, single-use reset link to an active account; one answer for any email.

    The send is counted for every email (3 an hour, 60 s apart; 10 an hour per IP); a failed
    mail raises DependencyDown and gives the allowance back.
    """
    email = identity.normalise_email(email)
    ehash = email_hash(email)
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
    """Whether a reset token is live (does not use it up)."""
    return await unit.otp.reset_token_user(token, consume=False) is not None


async def reset_password(unit: Unit, token: str, new_password: str, client: Client) -> int:
    """Use a reset token once: store the new password hash and revoke every session.

    Returns how many sessions were revoked; an unknown, used or expired token is BadRequest.
    """
    user_id = await unit.otp.reset_token_user(token, consume=True)
    if user_id is None:
        raise BadRequest(INVALID_RESET, code="invalid_reset_token")
    user = await users_view.by_id(unit.db, user_id)
    if user is None or user.get("status") != "active":
        raise BadRequest(INVALID_RESET, code="invalid_reset_token")
    meta = Meta(actor=f"user:{user_id}", request_id=client.request_id)
    password_hash = unit.passwords.hash(new_password)
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

    In order: the AccountDeleted event (the account stops working and the read model is
    anonymised), every session revoked (their sockets dropped), the email and phone released
    for new accounts, and the person's key destroyed so their data in past events is
    unreadable. The coin history stays (amounts only).
    """
    meta = Meta(actor=f"user:{user_id}", request_id=client.request_id)
    before = await users_view.by_id(unit.db, user_id)
    email = None if before is None else before.get("email")
    phone = None if before is None else before.get("phone")
    photos = [] if before is None else [str(u) for u in before.get("profile_pictures", [])]

    async def attempt() -> None:
        _, head = await unit.load(USERS, f"user-{user_id}", user_id)
        await unit.append(f"user-{user_id}", head, AccountDeleted(user_id=user_id), event_id=f"account-deleted:{user_id}", meta=meta)

    await with_retry(attempt)
    revoked = await identity.revoke_all(unit, user_id, "account_deleted", meta)
    # The claim streams are keyed by a hash of the value; releasing lets the value sign up again.
    if isinstance(email, str) and email:
        await identity._release(unit, "email", email, user_id, meta)
    if isinstance(phone, str) and phone:
        await identity._release(unit, "phone", phone, user_id, meta)
    await unit.store.keys.erase(user_id)
    for url in photos:
        try:
            await unit.storage.delete(url)
        except StorageUnavailable:
            # The read model no longer lists it; an operator sweep can remove the orphan later.
            log.warning("account.photo_delete_failed", user_id=user_id)
    log.info("account.deleted", user_id=user_id, sessions_revoked=revoked, photos_deleted=len(photos))
    return revoked


# -- referral ------------------------------------------------------------------------------


async def grant_referral_reward(unit: Unit, referrer_id: str, referred_id: str, meta: Meta) -> LedgerResult:
    """Credit the referrer 50 coins for `referred_id`'s signup, once (`referral:<referred>`)."""
    event_id = f"referral:{referred_id}"
    reward_meta = Meta(actor="system", request_id=meta.request_id, causation_id=f"signup:{referred_id}")

    async def attempt() -> LedgerResult:
        done = await unit.store.get(event_id)
        if done is not None:
            assert isinstance(done.event, LedgerEvent)
            return LedgerResult(done.event, created=False)
        doc, head = await unit.load(BALANCES, account_stream(referrer_id), referrer_id)
        coins = 0 if doc is None else int(doc.get("coins", 0))
        event = ReferralRewardGranted(
            user_id=referrer_id,
            amount=REFERRAL_REWARD,
            reason="referral",
            reference=f"user:{referred_id}",
            balance_after=coins + REFERRAL_REWARD,
            description="Referral reward",
        )
        appended = await unit.append(account_stream(referrer_id), head, event, event_id=event_id, meta=reward_meta)
        stored = appended.recorded.event
        assert isinstance(stored, LedgerEvent)
        return LedgerResult(stored, appended.created)

    return await with_retry(attempt)


async def after_signup(unit: Unit, user_id: str, referrer_id: str | None, meta: Meta) -> None:
    """The signup hook: reward the referrer of a valid referral code."""
    if referrer_id is not None and referrer_id != user_id:
        await grant_referral_reward(unit, referrer_id, user_id, meta)
