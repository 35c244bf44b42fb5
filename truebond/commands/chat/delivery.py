"""Reactions: a message reaches its receiver's sockets and the sender's other ones; receipts reach the sender.

The receiver gets `message:new` and `new_message`, the sender's other sockets `message:sent`
(the socket that sent it has its ack) and `balance_updated`. A hidden message (a shadow-banned
sender) reaches nobody but its sender, and neither do a shadow-banned user's receipts. Not
re-driven: a client that missed a push fetches what it missed with `GET /api/messages/{id}?before=`,
so a lost push loses no message.
"""

from __future__ import annotations

from truebond.commands.bus import Bus, Context, Reaction, ReactionTable
from truebond.commands.chat import bodies
from truebond.commands.payments.pushes import push_balance
from truebond.events.base import Recorded
from truebond.events.chat import MessageDelivered, MessageSent, MessagesRead
from truebond.projections import blocks


async def deliver_message(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Push a new message to the receiver (unless hidden) and to the sender's other sockets."""
    e = rec.event
    assert isinstance(e, MessageSent)
    notifier = bus.deps.notifier
    if not e.hidden:
        incoming = bodies.wire(bodies.from_event(e, rec.at, e.receiver_id))
        await notifier.emit_to_user(e.receiver_id, "message:new", incoming)
        await notifier.emit_to_user(e.receiver_id, "new_message", incoming)
    sent = bodies.wire(bodies.from_event(e, rec.at, e.user_id))
    await notifier.emit_to_user(e.user_id, "message:sent", sent, skip_sid=ctx.socket_id)
    await push_balance(bus, e.user_id)


async def announce_read(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Tell the sender their messages were read (not by a shadow-banned reader: nothing of theirs reaches others)."""
    e = rec.event
    assert isinstance(e, MessagesRead)
    if await blocks.shadow_banned(bus.deps.db, e.reader_id):
        return
    payload = {"conversation_id": e.conversation_id, "reader_id": e.reader_id, "read_until": e.until, "count": e.count}
    await bus.deps.notifier.emit_to_user(e.sender_id, "message:read", payload)


async def announce_delivered(rec: Recorded, ctx: Context, bus: Bus) -> None:
    """Tell the sender their message reached the receiver's client (not a shadow-banned receiver's)."""
    e = rec.event
    assert isinstance(e, MessageDelivered)
    if await blocks.shadow_banned(bus.deps.db, e.receiver_id):
        return
    payload = {"message_id": e.message_id, "conversation_id": e.conversation_id, "delivered_at": bodies.iso(rec.at)}
    await bus.deps.notifier.emit_to_user(e.sender_id, "message:delivered", payload)


REACTIONS: ReactionTable = {
    MessageSent: [Reaction(deliver_message)],
    MessagesRead: [Reaction(announce_read)],
    MessageDelivered: [Reaction(announce_delivered)],
}
