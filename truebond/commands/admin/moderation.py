"""Moderation of reports: approve (nothing to act on), remove the reported content, ban the account.

Every resolution of a report has the idempotency id `resolve:<report id>`, whichever stream it goes
to, so a report is resolved exactly once even when two moderators act at the same moment.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from truebond.commands.admin.common import act_on_user
from truebond.commands.bus import Command, Context
from truebond.commands.unit import Unit
from truebond.errors import AlreadyResolved, Forbidden, NotFound
from truebond.events.admin import AdminAction, ReportApproved, ReportedContentRemoved, UserBanned
from truebond.events.store import Appended
from truebond.projections import safety as safety_view

Decision = Literal["approve", "remove", "ban"]


@attrs.frozen
class ResolveReport(Command[str]):
    """Resolve a pending report; answers the report's new status."""

    report_id: str
    decision: Decision
    actor_role: str
    reason: str = ""


STATUS = {"approve": "approved", "remove": "removed", "ban": "banned"}


async def resolve_report(cmd: ResolveReport, ctx: Context, deps: Unit) -> str:
    """Append the resolution's event; a report resolved already answers 409."""
    report = await safety_view.report(deps.db, cmd.report_id)
    if report is None:
        raise NotFound("Report not found")
    if report.get("status") != "pending":
        raise AlreadyResolved()
    if cmd.decision == "ban" and cmd.actor_role != "super_admin":
        raise Forbidden("Super admin access required")
    target = str(report["reported_id"])
    event_id = f"resolve:{cmd.report_id}"
    done: list[Appended]
    if cmd.decision == "approve":
        event = ReportApproved(
            target_id=target, report_id=cmd.report_id, reason=cmd.reason, before={"status": "pending"}, after={"status": "approved"}
        )
        stream = f"report-{cmd.report_id}"
        done = [await deps.append(stream, await deps.store.head(stream), event, event_id=event_id, meta=ctx.meta())]
    else:

        def decide(doc: dict[str, Any]) -> AdminAction:
            if cmd.decision == "remove":
                before = {"bio": bool(doc.get("bio")), "photos": len(doc.get("profile_pictures", []))}
                return ReportedContentRemoved(
                    target_id=target, report_id=cmd.report_id, reason=cmd.reason, before=before, after={"bio": False, "photos": 0}
                )
            return UserBanned(
                target_id=target,
                report_id=cmd.report_id,
                reason=cmd.reason,
                before={"status": doc.get("status")},
                after={"status": "banned"},
            )

        done = await act_on_user(deps, ctx, user_id=target, actor_role=cmd.actor_role, event_id=event_id, decide=decide)
    if not done or not done[0].created:
        raise AlreadyResolved()
    return STATUS[cmd.decision]
