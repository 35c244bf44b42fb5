"""Notifications: raised as events on the owner's stream, pushed as `new_notification` to them only.

`notify_user` is the one way to raise one (from a reaction): a credited purchase, a message to
an offline receiver (never a shadow-banned one), a missed call, a decided report (to its reporter). A
notification whose kind the owner switched off in `settings.notifications` is not raised.
"""

from __future__ import annotations

from typing import Any

import attrs

from truebond.commands.bus import Bus, Command, Context, HandlerTable, Reaction, ReactionTable
from truebond.commands.decide import Decision, decide_and_append, head_only
from truebond.commands.profile import settings_of
from truebond.commands.unit import Unit
from truebond.events.admin import ReportApproved, ReportedContentRemoved, UserBanned
from truebond.events.base import Recorded
from truebond.events.calls import CallMissed
from truebond.events.chat import MessageSent
from truebond.events.ledger import CreditsPurchased
from truebond.events.notifications import NotificationRaised, NotificationsRead
from truebond.logging import get_logger
from truebond.projections import calls as calls_view
from truebond.projections import presence as presence_view
from truebond.projections import safety as safety_view
from truebond.projections import users as users_view

log = get_logger(__name__)

# Which `settings.notifications` switch silences a kind (kinds not listed are always raised).
SWITCHES = {"message": "messages", "match": "matches", "nearby": "nearby", "promotion": "marketing"}


@attrs.frozen
class RaiseNotification(Command[bool]):
    """Notify `user_id` once per `dedupe_id`; answers whether it was raised now."""

    user_id: str
    type: str
    title: str
    body: str
    dedupe_id: str


@attrs.frozen
class MarkAllNotificationsRead(Command[None]):
    """Mark every notification of the user up to now as read."""

    user_id: str


def notifications_stream(user_id: str) -> str:
    """The owner's notification stream."""
    return f"notifications-{user_id}"


async def raise_notification(cmd: RaiseNotification, ctx: Context, deps: Unit) -> bool:
    """Append the notification (an existing dedupe id appends nothing); skipped when switched off."""
    user = await users_view.by_id(deps.db, cmd.user_id)
    if user is None or user.get("status") != "active":
        return False
    switch = SWITCHES.get(cmd.type)
    if switch is not None and not settings_of(user)["notifications"].get(switch, True):
        return False
    stream = notifications_stream(cmd.user_id)
    event = NotificationRaised(user_id=cmd.user_id, type=cmd.type, title=cmd.title, body=cmd.body)

    def decide(_: None) -> Decision:
        return Decision(event, f"notif:{cmd.user_id}:{cmd.dedupe_id}", subject=cmd.user_id)

    done = await decide_and_append(deps, stream, head_only(stream), decide, ctx.meta())
    return any(a.created for a in done)


async def mark_all_read(cmd: MarkAllNotificationsRead, ctx: Context, deps: Unit) -> None:
    """Move the user's read mark to now."""
    stream = notifications_stream(cmd.user_id)
    now = deps.clock.now()

    def decide(_: None) -> Decision:
        return Decision(NotificationsRead(user_id=cmd.user_id, up_to=now), f"notif-read:{cmd.user_id}:{now.isoformat()}")

    await decide_and_append(deps, stream, head_only(stream), decide, ctx.meta())


async def notify_user(bus: Bus, ctx: Context, user_id: str, type: str, title: str, body: str, dedupe_id: str) -> bool:
    """Raise a notification for `user_id` through the bus (once per `dedupe_id`)."""
    return await bus.handle(RaiseNotification(user_id, type, title, body, dedupe_id), ctx)


def notification_body(rec: Recorded) -> dict[str, Any]:
    """What `new_notification` and the list show of one notification."""
    e = rec.event
    assert isinstance(e, NotificationRaised)
    return {"id": rec.id, "title": e.title, "body": e.body, "type": e.type, "is_read": False, "created_at": rec.at}


async def push_notification(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """`new_notification` to the owner's sockets only (a lost push is healed by the next list)."""
    e = rec.event
    assert isinstance(e, NotificationRaised)
    body = notification_body(rec)
    body["created_at"] = rec.at.isoformat().replace("+00:00", "Z")
    await bus.deps.notifier.emit_to_user(e.user_id, "new_notification", body)


async def notify_purchase(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """A credited purchase notifies the buyer (once per purchase)."""
    e = rec.event
    assert isinstance(e, CreditsPurchased)
    await notify_user(bus, ctx, e.user_id, "purchase", "Coins added", f"{e.amount} coins were added to your balance.", rec.id)


async def notify_offline_receiver(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """A chat message notifies its receiver when they are offline; never a shadow-banned one."""
    e = rec.event
    assert isinstance(e, MessageSent)
    if e.hidden or await presence_view.presence_of(bus.deps).is_online(e.receiver_id):
        return
    name = await _name_of(bus, e.user_id)
    await notify_user(bus, ctx, e.receiver_id, "message", "New message", f"{name} sent you a message.", rec.id)


async def notify_missed_call(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """A call left unanswered notifies its receiver (not for a shadow-banned caller's call)."""
    e = rec.event
    assert isinstance(e, CallMissed)
    call = await calls_view.by_id(bus.deps.db, e.call_id)
    # A shadow-banned caller's call never reached its receiver: nothing to tell them.
    if call is not None and not call.get("hidden"):
        name = await _name_of(bus, str(call["caller_id"]))
        await notify_user(bus, ctx, str(call["receiver_id"]), "missed_call", "Missed call", f"You missed a call from {name}.", rec.id)


async def notify_reporter(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """A decided report tells its reporter that it was reviewed (never the outcome for the other user)."""
    e = rec.event
    assert isinstance(e, ReportApproved | ReportedContentRemoved | UserBanned)
    report = await safety_view.report(bus.deps.db, e.report_id)
    if report is not None and report.get("reporter_id"):
        body = "We reviewed your report. Thank you for helping keep TrueBond safe."
        await notify_user(bus, ctx, str(report["reporter_id"]), "report", "Report reviewed", body, rec.id)


async def _name_of(bus: Bus, user_id: str) -> str:
    user = await users_view.by_id(bus.deps.db, user_id) if user_id else None
    return str(user.get("name") or "Someone") if user is not None and user.get("status") == "active" else "Someone"


HANDLERS: HandlerTable = {RaiseNotification: raise_notification, MarkAllNotificationsRead: mark_all_read}
# A purchase's notification must not be lost with a crash: re-driven (idempotent by its dedupe id).
REACTIONS: ReactionTable = {
    CreditsPurchased: [Reaction(notify_purchase, redrive=True)],
    MessageSent: [Reaction(notify_offline_receiver)],
    CallMissed: [Reaction(notify_missed_call)],
    ReportApproved: [Reaction(notify_reporter)],
    ReportedContentRemoved: [Reaction(notify_reporter)],
    UserBanned: [Reaction(notify_reporter)],
    NotificationRaised: [Reaction(push_notification)],
}
