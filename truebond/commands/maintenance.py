"""The maintenance sweep's commands (issued by truebond/workers/maintenance.py).

`RecordExpiredOtps` records the expiry of OTP codes that ran out unused, so the audit trail of
every email is complete even when nobody presents the code again; `FinishPendingErasures`
finishes account erasures that an earlier attempt left pending. Both are idempotent: several
processes may sweep at once.
"""

from __future__ import annotations

import attrs

from truebond.commands import account, otp
from truebond.commands.bus import Command, Context, HandlerTable, ReactionTable
from truebond.commands.unit import Unit
from truebond.events.otp import OtpExpired
from truebond.logging import get_logger
from truebond.projections import users as users_view

log = get_logger(__name__)


@attrs.frozen
class RecordExpiredOtps(Command[int]):
    """Audit up to `limit` codes that ran out unused; returns how many."""

    limit: int = 500


@attrs.frozen
class FinishPendingErasures(Command[int]):
    """Finish up to `limit` deletions whose erasure is pending; returns how many finished."""

    limit: int = 100


async def record_expired_otps(cmd: RecordExpiredOtps, ctx: Context, deps: Unit) -> int:
    """Append OtpExpired for each code that expired with nobody presenting it again.

    The event id is the one a verification or a resend uses when it notices the same expiry
    first, so each code's expiry is recorded exactly once.
    """
    expired = await deps.otp.expired_codes(cmd.limit)
    meta = ctx.meta()
    for code in expired:
        event = OtpExpired(purpose=code.purpose, code_id=code.code_id)
        await otp.audit(deps, code.ehash, event, f"otp-expired:{code.code_id}", meta)
    await deps.otp.forget_expired(expired)
    return len(expired)


async def finish_pending_erasures(cmd: FinishPendingErasures, ctx: Context, deps: Unit) -> int:
    """Run the erasure of every deleted account still marked `erasure_pending`."""
    finished = 0
    for user_id in await users_view.pending_erasures(deps.db, cmd.limit):
        try:
            await account.erase(deps, ctx.meta(causation_id=f"account-deleted:{user_id}"), user_id)
        except Exception as exc:  # one stuck erasure must not stop the others
            log.warning("account.erasure_deferred", user_id=user_id, error=type(exc).__name__, exc_info=True)
            continue
        finished += 1
    return finished


HANDLERS: HandlerTable = {RecordExpiredOtps: record_expired_otps, FinishPendingErasures: finish_pending_erasures}
REACTIONS: ReactionTable = {}
