"""StartConversation (create-or-get), MarkRead and MarkDelivered, on the stream `conversation-<id>`.

Only the receiver of messages may mark them read or delivered; a message or conversation the
caller may not see, or a pair blocked either way, is answered as not found, and nothing is appended.
"""

from __future__ import annotations

import attrs

from truebond.commands.bus import Command, Context
from truebond.commands.chat import rules
from truebond.commands.decide import Decision, decide_and_append, head_only
from truebond.commands.unit import Unit
from truebond.errors import Forbidden, NotFound
from truebond.events.base import Event
from truebond.events.chat import ConversationStarted, MessageDelivered, MessagesRead, conversation_id_of, conversation_stream
from truebond.projections import blocks
from truebond.projections import conversations as conversations_view
from truebond.projections import messages as messages_view


@attrs.frozen
class Conversation:
    """A conversation id, and whether the caller already had it."""

    conversation_id: str
    existing: bool


@attrs.frozen
class StartConversation(Command[Conversation]):
    """Open (or find) the conversation of `user_id` with `other_id`."""

    user_id: str
    other_id: str


@attrs.frozen
class MarkRead(Command[int]):
    """`reader_id` read every message `other_id` sent them; answers how many were unread."""

    reader_id: str
    other_id: str
    conversation_id: str | None = None


@attrs.frozen
class MarkDelivered(Command[None]):
    """The receiver's client got a message (only the receiver may say so)."""

    receiver_id: str
    message_id: str
    sender_id: str | None = None


async def _append(deps: Unit, ctx: Context, conversation_id: str, event: Event, event_id: str) -> None:
    stream = conversation_stream(conversation_id)
    await decide_and_append(deps, stream, head_only(stream), lambda _: Decision(event, event_id), ctx.meta())


async def start_conversation(cmd: StartConversation, ctx: Context, deps: Unit) -> Conversation:
    """Create-or-get: the pair's conversation, visible to the caller from now on."""
    conversation_id = await rules.ensure_pair(deps, cmd.user_id, cmd.other_id, field="user_id")
    doc = await conversations_view.get(deps.db, conversation_id)
    if conversations_view.sees(doc, cmd.user_id):
        return Conversation(conversation_id, existing=True)
    event = ConversationStarted(conversation_id=conversation_id, started_by=cmd.user_id, other_id=cmd.other_id)
    await _append(deps, ctx, conversation_id, event, f"conversation:{conversation_id}:{cmd.user_id}")
    return Conversation(conversation_id, existing=False)


async def mark_read(cmd: MarkRead, ctx: Context, deps: Unit) -> int:
    """Mark the caller's unread messages from `other_id` read (one event; none when nothing is unread)."""
    conversation_id = conversation_id_of(cmd.reader_id, cmd.other_id)
    if cmd.conversation_id is not None and cmd.conversation_id != conversation_id:
        raise Forbidden("This conversation is not yours")
    doc = await conversations_view.get(deps.db, conversation_id)
    if cmd.other_id == cmd.reader_id or not conversations_view.sees(doc, cmd.reader_id):
        raise NotFound("Conversation not found")
    if await blocks.blocked_either_way(deps.db, cmd.reader_id, cmd.other_id):
        raise NotFound("Conversation not found")
    unread = await messages_view.unread(deps.db, conversation_id, cmd.reader_id, conversations_view.read_until(doc, cmd.reader_id))
    if not unread:
        return 0
    until = unread[-1]["created_at"].isoformat()
    event = MessagesRead(conversation_id=conversation_id, reader_id=cmd.reader_id, sender_id=cmd.other_id, until=until, count=len(unread))
    await _append(deps, ctx, conversation_id, event, f"read:{conversation_id}:{cmd.reader_id}:{until}")
    return len(unread)


async def mark_delivered(cmd: MarkDelivered, ctx: Context, deps: Unit) -> None:
    """Record that the receiver got the message (once); anyone else is told it does not exist."""
    doc = await messages_view.get(deps.db, cmd.message_id)
    if (
        doc is None
        or doc["receiver_id"] != cmd.receiver_id
        or doc.get("hidden")
        or (cmd.sender_id is not None and doc["sender_id"] != cmd.sender_id)
    ):
        raise NotFound("Message not found")
    if await blocks.blocked_either_way(deps.db, cmd.receiver_id, str(doc["sender_id"])):
        raise NotFound("Message not found")
    if doc.get("delivered_at") is not None:
        return
    event = MessageDelivered(
        conversation_id=str(doc["conversationId"]), message_id=cmd.message_id, receiver_id=cmd.receiver_id, sender_id=str(doc["sender_id"])
    )
    await _append(deps, ctx, str(doc["conversationId"]), event, f"delivered:{cmd.message_id}")
