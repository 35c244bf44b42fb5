"""Signup: claim the email and the phone, record the account, grant the bonus, open a session."""

from __future__ import annotations

import contextlib
import secrets
from datetime import timedelta

import attrs

from truebond.commands.bus import Bus, Command, Context
from truebond.commands.decide import Decided, Decision, Loader, decide_and_append, history
from truebond.commands.identity.common import SessionTokens, digest, normalise_email
from truebond.commands.identity.sessions import start_session
from truebond.commands.ledger import grant_signup_bonus
from truebond.commands.unit import Unit, new_id
from truebond.errors import Conflict, EmailTaken, MobileTaken, RegistrationsClosed, TrueBondError
from truebond.events.base import Head, Meta, Recorded
from truebond.events.identity import EmailClaimed, EmailReleased, UserRegistered
from truebond.projections import platform_settings
from truebond.projections import users as users_view

CLAIM_TAKEOVER_AFTER = timedelta(seconds=60)
TAKEN: dict[str, type[Conflict]] = {"email": EmailTaken, "phone": MobileTaken}

# 12 characters of Crockford base32: 60 random bits, so codes never collide in practice (a
# collision would break the unique index of the users read model).
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_referral_code() -> str:
    """A fresh, unguessable referral code that is easy to read aloud."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))


@attrs.frozen
class GrantSignupBonus(Command[None]):
    """Grant a registered account its welcome coins if it has not had them (a re-driven reaction)."""

    user_id: str


@attrs.frozen
class Signup(Command[SessionTokens]):
    """Open an account (fields already validated at the edge)."""

    name: str
    email: str
    mobile_number: str
    password: str = attrs.field(repr=False)
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
class _ClaimState:
    """A claim stream's events, and whether its holder's signup never finished."""

    events: list[Recorded]
    abandoned: bool


def _claim_state(stream: str) -> Loader[_ClaimState]:
    """The claim stream's history, plus whether its current claim is an abandoned one: older than
    CLAIM_TAKEOVER_AFTER and its holder has no account (a crash between the two appends)."""

    async def load(unit: Unit) -> tuple[_ClaimState, Head]:
        events, head = await history(stream)(unit)
        last = events[-1] if events else None
        abandoned = (
            last is not None
            and isinstance(last.event, EmailClaimed)
            and unit.clock.now() - last.at > CLAIM_TAKEOVER_AFTER
            and await unit.store.head(f"user-{last.event.user_id}") == Head()
        )
        return _ClaimState(events, abandoned), head

    return load


async def claim(deps: Unit, kind: str, value: str, user_id: str, meta: Meta) -> None:
    """Take `value` (an email or phone) for `user_id`; EmailTaken / MobileTaken when another account holds it."""

    def decide(state: _ClaimState) -> Decided:
        last = state.events[-1].event if state.events else None
        take = Decision(EmailClaimed(user_id=user_id), f"{kind}-claim:{user_id}")
        if not isinstance(last, EmailClaimed):
            return take
        if last.user_id == user_id:
            return None
        if not state.abandoned:
            raise TAKEN[kind]()
        # A claim whose signup never finished is freed, then taken.
        return [Decision(EmailReleased(user_id=last.user_id), f"{kind}-release:{last.user_id}"), take]

    stream = f"{kind}-{digest(value)}"
    await decide_and_append(deps, stream, _claim_state(stream), decide, meta)


async def release(deps: Unit, kind: str, value: str, user_id: str, meta: Meta) -> None:
    """Give `value` up if `user_id` holds it, so another account can claim it."""

    def decide(events: list[Recorded]) -> Decided:
        last = events[-1].event if events else None
        if isinstance(last, EmailClaimed) and last.user_id == user_id:
            return Decision(EmailReleased(user_id=user_id), f"{kind}-release:{user_id}")
        return None

    stream = f"{kind}-{digest(value)}"
    await decide_and_append(deps, stream, history(stream), decide, meta)


async def sign_up(cmd: Signup, ctx: Context, deps: Unit) -> SessionTokens:
    """Claim the email and phone, record the account, grant 10 coins, open a session.

    The referrer's reward follows as a reaction to UserRegistered (commands/account.py).
    """
    if not (await platform_settings.current(deps.db))["registrations_open"]:
        raise RegistrationsClosed()
    user_id = new_id()
    email = normalise_email(cmd.email)
    meta = ctx.meta(actor=f"user:{user_id}")
    await claim(deps, "email", email, user_id, meta)
    try:
        await claim(deps, "phone", cmd.mobile_number, user_id, meta)
    except MobileTaken:
        await release(deps, "email", email, user_id, meta)
        raise
    try:
        await _register(cmd, deps, user_id, email, meta)
    except Exception:
        await _release_unregistered(deps, email, cmd.mobile_number, user_id, meta)
        raise
    await grant_signup_bonus(deps, user_id, meta)
    return await start_session(deps, ctx, user_id, "user", cmd.device_id, method="signup")


async def _register(cmd: Signup, deps: Unit, user_id: str, email: str, meta: Meta) -> None:
    """Record the account (`UserRegistered`, id `signup:<user>`) once its email and phone are claimed."""
    referrer = None
    if cmd.referral_code:
        owner = await users_view.by_referral_code(deps.db, cmd.referral_code)
        referrer = None if owner is None or owner.get("status") == "deleted" else str(owner["_id"])
    password_hash = await deps.passwords.hash_async(cmd.password)
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
    await deps.append(f"user-{user_id}", Head(), registered, event_id=f"signup:{user_id}", meta=meta, subject=user_id)


async def _release_unregistered(deps: Unit, email: str, mobile_number: str, user_id: str, meta: Meta) -> None:
    """A signup that failed before its account was stored gives its claims back, so a retry succeeds.

    Best effort: when MongoDB cannot even say whether the account was stored, the claims stay and
    the takeover of abandoned claims (CLAIM_TAKEOVER_AFTER) frees them later.
    """
    with contextlib.suppress(TrueBondError):
        if await deps.store.get(f"signup:{user_id}") is not None:
            return  # stored, only its answer was lost: the account exists
        await release(deps, "email", email, user_id, meta)
        await release(deps, "phone", mobile_number, user_id, meta)


async def grant_bonus(cmd: GrantSignupBonus, ctx: Context, deps: Unit) -> None:
    """The welcome coins of a registered account, once (`signup-bonus:<user>`)."""
    await grant_signup_bonus(deps, cmd.user_id, ctx.meta(actor=f"user:{cmd.user_id}"))


async def bonus_of_registered(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Reaction to UserRegistered: the bonus again (idempotent), so one lost to a failure is granted."""
    event = rec.event
    assert isinstance(event, UserRegistered)
    await bus.handle(GrantSignupBonus(event.user_id), ctx)
