"""Notifications: raised as events on the owner's stream, pushed as `new_notification` to them only.

`notify_user` is the one way to raise one (from a reaction); the reactions registered here cover
purchases credited. `message_reaction`, `missed_call_reaction` and `report_outcome_reaction`
build the reactions for events other parts own (MessageSent, CallMissed, report outcomes); the
lead registers them at merge (see the notes). A notification whose kind the owner switched off in
`settings.notifications` is not raised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from truebond.commands.bus import Bus, Command, Context, HandlerTable, Reaction, ReactionFn, ReactionTable
from truebond.commands.decide import Decision, decide_and_append, head_only
from truebond.commands.profile import settings_of
from truebond.commands.unit import Unit
from truebond.events.base import Recorded
from truebond.events.ledger import CreditsPurchased
from truebond.events.notifications import NotificationRaised, NotificationsRead
from truebond.logging import get_logger
from truebond.projections import users as users_view

log = get_logger(__name__)

IsOnline = Callable[[str], Awaitable[bool]]
# Which `settings.notifications` switch silences a kind (kinds not listed are always raised).
SWITCHES = {"message": "messages", "match": "matches", "nearby": "nearby", "promotion": "marketing"}


async def never_online(user_id: str) -> bool:
    """The presence check until presence is wired: everybody counts as offline."""
    return False


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


def message_reaction(is_online: IsOnline = never_online) -> ReactionFn:
    """A reaction to a sent chat message: notifies the receiver when they are offline.

    Reads `receiver_id` and `sender_id` from the event (MessageSent on the chat branch).
    """

    async def notify_offline_receiver(rec: Recorded, ctx: Context, bus: Bus) -> None:
        receiver, sender = str(getattr(rec.event, "receiver_id", "")), str(getattr(rec.event, "sender_id", ""))
        if not receiver or await is_online(receiver):
            return
        name = await _name_of(bus, sender)
        await notify_user(bus, ctx, receiver, "message", "New message", f"{name} sent you a message.", rec.id)

    return notify_offline_receiver


def missed_call_reaction() -> ReactionFn:
    """A reaction to a missed call: notifies the callee. Reads `receiver_id` and `caller_id`."""

    async def notify_missed_call(rec: Recorded, ctx: Context, bus: Bus) -> None:
        receiver, caller = str(getattr(rec.event, "receiver_id", "")), str(getattr(rec.event, "caller_id", ""))
        if receiver:
            name = await _name_of(bus, caller)
            await notify_user(bus, ctx, receiver, "missed_call", "Missed call", f"You missed a call from {name}.", rec.id)

    return notify_missed_call


def report_outcome_reaction() -> ReactionFn:
    """A reaction to a decided report: tells the reporter (never the outcome for the other user). Reads `reporter_id`."""

    async def notify_reporter(rec: Recorded, ctx: Context, bus: Bus) -> None:
        reporter = str(getattr(rec.event, "reporter_id", ""))
        if reporter:
            body = "We reviewed your report. Thank you for helping keep TrueBond safe."
            await notify_user(bus, ctx, reporter, "report", "Report reviewed", body, rec.id)

    return notify_reporter


async def _name_of(bus: Bus, user_id: str) -> str:
    user = await users_view.by_id(bus.deps.db, user_id) if user_id else None
    return str(user.get("name") or "Someone") if user is not None and user.get("status") == "active" else "Someone"


HANDLERS: HandlerTable = {RaiseNotification: raise_notification, MarkAllNotificationsRead: mark_all_read}
# A purchase's notification must not be lost with a crash: re-driven (idempotent by its dedupe id).
REACTIONS: ReactionTable = {
    CreditsPurchased: [Reaction(notify_purchase, redrive=True)],
    NotificationRaised: [Reaction(push_notification)],
}
