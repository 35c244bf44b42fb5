"""SendMessage: one `MessageSent` on the sender's account stream holds the message and its coin.

Text and image messages, from `POST /api/messages/send`, `POST /api/messages/upload` and the
socket's `message:send`, are this one command. The charge goes through the ledger's one path
(`record_change`): the idempotency id `msg:<sender>:<client message id>` answers a repeat with
the first message and charges once; a short balance is refused (402) before anything is stored.
A shadow-banned sender's message is stored `hidden`: it is answered and shown to them as usual,
and never delivered, listed or counted for the receiver.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from truebond.adapters.images import CleanImage
from truebond.adapters.storage import StorageUnavailable
from truebond.commands.bus import Command, Context
from truebond.commands.chat import bodies, rules, text
from truebond.commands.ledger import LedgerConflict, record_change
from truebond.commands.unit import Unit, new_id
from truebond.errors import DependencyDown, PaymentRequired, ValidationFailed
from truebond.events.base import Recorded
from truebond.events.chat import MESSAGE_PRICE, MESSAGE_REASON, MessageSent
from truebond.logging import get_logger
from truebond.projections import blocks
from truebond.projections import conversations as conversations_view
from truebond.projections import messages as messages_view

log = get_logger(__name__)


@attrs.frozen
class SendMessage(Command["SentMessage"]):
    """Send a text (`content`) or an image (`image`, checked and re-encoded at the edge) for 1 coin."""

    sender_id: str
    receiver_id: str
    content: str = ""
    image: CleanImage | None = None
    conversation_id: str | None = None
    client_message_id: str | None = None


@attrs.frozen
class SentMessage:
    """What a send answers: the message as its sender sees it."""

    message_id: str
    conversation_id: str
    created_at: datetime
    status: str
    message: dict[str, Any]


def message_event_id(sender_id: str, client_message_id: str | None) -> str:
    """The idempotency id of a message: the client's key when it gives one."""
    return f"msg:{sender_id}:{client_message_id or new_id()}"


async def send_message(cmd: SendMessage, ctx: Context, deps: Unit) -> SentMessage:
    """Check the pair, mask the text, store an image, then append the message with its charge."""
    event_id = message_event_id(cmd.sender_id, cmd.client_message_id)
    if cmd.client_message_id is not None:
        done = await deps.store.get(event_id)
        if done is not None:
            return await _answer(deps, done, cmd.sender_id)
    conversation_id = await rules.ensure_may_message(deps, cmd.sender_id, cmd.receiver_id, cmd.conversation_id)
    content = await text.clean(cmd.content) if cmd.content else ""
    if cmd.image is None and not content:
        raise ValidationFailed([{"loc": ["body", "content"], "msg": "a message needs text"}])
    hidden = await blocks.shadow_banned(deps.db, cmd.sender_id)
    image_url = await _store(deps, cmd.image) if cmd.image is not None else None
    message_id = new_id()

    def decide(coins: int) -> MessageSent:
        if coins < MESSAGE_PRICE:
            raise PaymentRequired()
        return MessageSent(
            user_id=cmd.sender_id,
            amount=-MESSAGE_PRICE,
            reason=MESSAGE_REASON,
            reference=f"message:{message_id}",
            balance_after=coins - MESSAGE_PRICE,
            description="Chat message",
            message_id=message_id,
            conversation_id=conversation_id,
            receiver_id=cmd.receiver_id,
            message_type="image" if image_url is not None else "text",
            content=content,
            image_url=image_url,
            client_message_id=cmd.client_message_id,
            hidden=hidden,
        )

    try:
        result = await record_change(deps, cmd.sender_id, event_id=event_id, meta=ctx.meta(), decide=decide, subject=cmd.sender_id)
    except BaseException:
        if image_url is not None:
            await _discard(deps, image_url)
        raise
    if not result.created and image_url is not None:
        await _discard(deps, image_url)  # a concurrent repeat stored its own copy first
    rec = await deps.store.get(event_id)
    assert rec is not None
    return await _answer(deps, rec, cmd.sender_id)


async def _store(deps: Unit, image: CleanImage) -> str:
    try:
        return await deps.storage.put(image.data, image.content_type, image.extension)
    except StorageUnavailable:
        raise DependencyDown("Image storage is unavailable, try again later") from None


async def _discard(deps: Unit, url: str) -> None:
    try:
        await deps.storage.delete(url)
    except StorageUnavailable:
        log.warning("chat.image_discard_failed")


async def _answer(deps: Unit, rec: Recorded, sender_id: str) -> SentMessage:
    """The stored message as its sender sees it (read models healed first if a crash left them behind)."""
    event = rec.event
    if not isinstance(event, MessageSent) or event.user_id != sender_id:
        raise LedgerConflict("idempotency id already used by another event")
    doc = await messages_view.get(deps.db, event.message_id)
    if doc is None:
        await deps.projections.apply(rec)
        doc = await messages_view.get(deps.db, event.message_id)
    if doc is None:
        body = bodies.from_event(event, rec.at, sender_id)
    else:
        conversation = await conversations_view.get(deps.db, event.conversation_id)
        body = bodies.from_doc(doc, sender_id, conversations_view.read_until(conversation, event.receiver_id))
    return SentMessage(event.message_id, event.conversation_id, rec.at, body["status"], body)
