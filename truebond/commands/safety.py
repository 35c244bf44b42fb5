"""Users' safety: block, unblock and report another account.

Blocks live on the blocker's stream `safety-<id>` (read model `block_lists`); each report is its
own stream `report-<id>` (read model `reports`, the moderation queue). The hooks of
`projections/blocks.py` answer from these read models for chat, calls and discovery.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs

from truebond.commands.bus import Command, Context, HandlerTable, ReactionTable
from truebond.commands.decide import Decision, decide_and_append, read_model
from truebond.commands.unit import Unit, new_id
from truebond.errors import NotFound, RateLimited, ValidationFailed
from truebond.events.base import Head
from truebond.events.safety import UserBlocked, UserReported, UserUnblocked
from truebond.projections import platform_settings
from truebond.projections import users as users_view
from truebond.projections.safety import BLOCK_LISTS, REPORTS

REPORT_WINDOW = timedelta(days=1)


@attrs.frozen
class BlockUser(Command[None]):
    """`user_id` blocks `target_id` (blocking again changes nothing)."""

    user_id: str
    target_id: str
    reason: str = ""


@attrs.frozen
class UnblockUser(Command[None]):
    """`user_id` lifts a block on `target_id` (no block, nothing appended)."""

    user_id: str
    target_id: str


@attrs.frozen
class ReportUser(Command[str]):
    """`reporter_id` reports `target_id`; answers the new report's id."""

    reporter_id: str
    target_id: str
    report_type: str
    reason: str


async def _existing_other(deps: Unit, user_id: str, target_id: str) -> None:
    if target_id == user_id:
        raise ValidationFailed([{"loc": ["path", "user_id"], "msg": "you cannot do this to yourself"}])
    doc = await users_view.by_id(deps.db, target_id) if len(target_id) <= 64 else None
    if doc is None or doc.get("status") == "deleted":
        raise NotFound("User not found")


def _blocked_ids(doc: dict[str, Any] | None) -> set[str]:
    return {str(e.get("user_id")) for e in (doc or {}).get("entries", [])}


async def block_user(cmd: BlockUser, ctx: Context, deps: Unit) -> None:
    """Append UserBlocked unless the block exists already."""
    await _existing_other(deps, cmd.user_id, cmd.target_id)
    stream, event_id = f"safety-{cmd.user_id}", f"block:{cmd.user_id}:{new_id()}"

    def decide(doc: dict[str, Any] | None) -> Decision | None:
        if cmd.target_id in _blocked_ids(doc):
            return None
        event = UserBlocked(blocker_id=cmd.user_id, blocked_id=cmd.target_id, reason=cmd.reason)
        return Decision(event, event_id, subject=cmd.user_id)

    await decide_and_append(deps, stream, read_model(BLOCK_LISTS, stream, cmd.user_id), decide, ctx.meta())


async def unblock_user(cmd: UnblockUser, ctx: Context, deps: Unit) -> None:
    """Append UserUnblocked when there is a block to lift."""
    stream, event_id = f"safety-{cmd.user_id}", f"unblock:{cmd.user_id}:{new_id()}"

    def decide(doc: dict[str, Any] | None) -> Decision | None:
        if cmd.target_id not in _blocked_ids(doc):
            return None
        return Decision(UserUnblocked(blocker_id=cmd.user_id, blocked_id=cmd.target_id), event_id)

    await decide_and_append(deps, stream, read_model(BLOCK_LISTS, stream, cmd.user_id), decide, ctx.meta())


async def report_user(cmd: ReportUser, ctx: Context, deps: Unit) -> str:
    """Open a report (pending) in the moderation queue; `max_reports_per_day` per reporter."""
    await _existing_other(deps, cmd.reporter_id, cmd.target_id)
    allowed = int((await platform_settings.current(deps.db))["max_reports_per_day"])
    since = deps.clock.now() - REPORT_WINDOW
    recent = await deps.db[REPORTS.collection].count_documents({"reporter_id": cmd.reporter_id, "created_at": {"$gte": since}})
    if recent >= allowed:
        raise RateLimited(retry_after=int(REPORT_WINDOW.total_seconds()), detail="Too many reports today")
    report_id = new_id()
    event = UserReported(
        report_id=report_id, reporter_id=cmd.reporter_id, reported_id=cmd.target_id, report_type=cmd.report_type, reason=cmd.reason
    )
    await deps.append(f"report-{report_id}", Head(), event, event_id=f"report:{report_id}", meta=ctx.meta(), subject=cmd.reporter_id)
    return report_id


HANDLERS: HandlerTable = {BlockUser: block_user, UnblockUser: unblock_user, ReportUser: report_user}
REACTIONS: ReactionTable = {}
