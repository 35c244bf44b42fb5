"""Admin actions on accounts: suspend, reactivate, shadow-ban, lift it, adjust coins.

Each is one event on the account's stream that is also its audit entry (events/admin.py). A
suspension's sessions end in the reaction `end_sessions` (re-driven), which revokes each through
the sessions' own path, so their allow-list entries and sockets go at once.
"""

from __future__ import annotations

from typing import Any

import attrs

from truebond.commands.admin.common import act_on_user, check_target
from truebond.commands.bus import Bus, Command, Context
from truebond.commands.identity import revoke_all
from truebond.commands.ledger import LedgerResult, record_change
from truebond.commands.unit import Unit, new_id
from truebond.errors import BalanceBelowZero, Conflict
from truebond.events.admin import (
    AdminAction,
    CreditsAdjusted,
    UserBanned,
    UserReactivated,
    UserShadowBanLifted,
    UserShadowBanned,
    UserSuspended,
)
from truebond.events.base import Recorded
from truebond.events.ledger import LedgerEvent
from truebond.projections import users as users_view

ADJUSTMENT_REASON = "admin_adjustment"


@attrs.frozen
class SuspendUser(Command[str]):
    """Suspend an active account; answers its status after the command."""

    user_id: str
    actor_role: str
    reason: str = ""


@attrs.frozen
class ReactivateUser(Command[str]):
    """Make a suspended account active again."""

    user_id: str
    actor_role: str
    reason: str = ""


@attrs.frozen
class ShadowBan(Command[bool]):
    """Shadow-ban an account (`lift=True`: end the shadow-ban); answers whether it is shadow-banned."""

    user_id: str
    actor_role: str
    reason: str = ""
    lift: bool = False


@attrs.frozen
class AdjustCredits(Command[int]):
    """Add (amount > 0) or withdraw (amount < 0) coins by hand; answers the balance after."""

    user_id: str
    actor_role: str
    amount: int
    reason: str


@attrs.frozen
class EndSessions(Command[int]):
    """End every live session of a suspended or banned account (idempotent)."""

    user_id: str
    reason: str


async def suspend_user(cmd: SuspendUser, ctx: Context, deps: Unit) -> str:
    """Append UserSuspended to an active account (already suspended: nothing)."""

    def decide(doc: dict[str, Any]) -> AdminAction | None:
        status = str(doc.get("status"))
        if status == "suspended":
            return None
        if status != "active":
            raise Conflict(f"The account is {status}")
        return UserSuspended(target_id=cmd.user_id, reason=cmd.reason, before={"status": status}, after={"status": "suspended"})

    await act_on_user(deps, ctx, user_id=cmd.user_id, actor_role=cmd.actor_role, event_id=f"suspend:{new_id()}", decide=decide)
    return "suspended"


async def reactivate_user(cmd: ReactivateUser, ctx: Context, deps: Unit) -> str:
    """Append UserReactivated to a suspended account (active already: nothing; banned: 409)."""

    def decide(doc: dict[str, Any]) -> AdminAction | None:
        status = str(doc.get("status"))
        if status == "active":
            return None
        if status != "suspended":
            raise Conflict(f"The account is {status}")
        return UserReactivated(target_id=cmd.user_id, reason=cmd.reason, before={"status": status}, after={"status": "active"})

    await act_on_user(deps, ctx, user_id=cmd.user_id, actor_role=cmd.actor_role, event_id=f"reactivate:{new_id()}", decide=decide)
    return "active"


async def shadow_ban(cmd: ShadowBan, ctx: Context, deps: Unit) -> bool:
    """Append UserShadowBanned or UserShadowBanLifted when it changes something."""

    def decide(doc: dict[str, Any]) -> AdminAction | None:
        banned = bool(doc.get("shadow_banned", False))
        if banned != cmd.lift:
            return None
        cls = UserShadowBanLifted if cmd.lift else UserShadowBanned
        return cls(target_id=cmd.user_id, reason=cmd.reason, before={"shadow_banned": banned}, after={"shadow_banned": not banned})

    kind = "unshadow-ban" if cmd.lift else "shadow-ban"
    await act_on_user(deps, ctx, user_id=cmd.user_id, actor_role=cmd.actor_role, event_id=f"{kind}:{new_id()}", decide=decide)
    return not cmd.lift


async def adjust_credits(cmd: AdjustCredits, ctx: Context, deps: Unit) -> int:
    """One CreditsAdjusted through the ledger's one path; a withdrawal below zero is refused (409)."""
    check_target(await users_view.by_id(deps.db, cmd.user_id), ctx.user_id or "", cmd.actor_role)

    def decide(coins: int) -> LedgerEvent:
        if coins + cmd.amount < 0:
            raise BalanceBelowZero(f"The balance is {coins}; at most {coins} can be withdrawn")
        return CreditsAdjusted(
            user_id=cmd.user_id,
            amount=cmd.amount,
            reason=ADJUSTMENT_REASON,
            reference=f"admin:{ctx.user_id}",
            balance_after=coins + cmd.amount,
            description="Adjustment by the TrueBond team",
            note=cmd.reason,
        )

    result: LedgerResult = await record_change(deps, cmd.user_id, event_id=f"adjust:{new_id()}", meta=ctx.meta(), decide=decide)
    return result.entry.balance_after


async def end_sessions(cmd: EndSessions, ctx: Context, deps: Unit) -> int:
    """Revoke every live session of the account; each revocation drops its sockets (their reaction).

    Re-driven after a reactivation, it leaves the sessions of the active account alone.
    """
    doc = await users_view.by_id(deps.db, cmd.user_id)
    if doc is None or doc.get("status") == "active":
        return 0
    return await revoke_all(deps, ctx.meta(), cmd.user_id, cmd.reason)


async def end_sessions_of_suspended(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Reaction to UserSuspended and UserBanned: every session and socket of the account ends."""
    event = rec.event
    assert isinstance(event, UserSuspended | UserBanned)
    reason = "suspended" if isinstance(event, UserSuspended) else "banned"
    await bus.handle(EndSessions(user_id=event.target_id, reason=reason), ctx)
