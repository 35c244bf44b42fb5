"""Chat events: a message and its 1-coin charge are one `MessageSent` on the sender's account stream.

`MessageSent` is a ledger event (amount -1, reason `MESSAGE`, the balance after it), so the
balance and the credit history count it like any other charge, and no message exists without
its charge or charge without its message. Conversations, read and delivery receipts live on
the stream `conversation-<id>`, whose id is a function of the pair (`conversation_id_of`).
The text (and an image's URL) is the sender's personal data: encrypted with the sender's key.
"""

from __future__ import annotations

import hashlib

import attrs

from truebond.events.base import Event, event, personal
from truebond.events.ledger import LedgerEvent

MESSAGE_REASON = "MESSAGE"
MESSAGE_PRICE = 1


def conversation_id_of(a: str, b: str) -> str:
    """The one conversation id of a pair of users, whichever of them asks."""
    low, high = sorted((a, b))
    return "c" + hashlib.sha256(f"{low}|{high}".encode()).hexdigest()[:31]


def conversation_stream(conversation_id: str) -> str:
    """The stream of a conversation's start and receipts."""
    return f"conversation-{conversation_id}"


@event("MessageSent")
@attrs.frozen(kw_only=True)
class MessageSent(LedgerEvent):
    """A message and its charge. `hidden`: the sender was shadow-banned when sending (never delivered)."""

    message_id: str
    conversation_id: str
    receiver_id: str
    message_type: str
    content: str = personal()
    image_url: str | None = personal(default=None)
    client_message_id: str | None = None
    hidden: bool = False


@event("ConversationStarted")
@attrs.frozen
class ConversationStarted(Event):
    """`started_by` opened a conversation with `other_id` (create-or-get; once per starter)."""

    conversation_id: str
    started_by: str
    other_id: str


@event("MessagesRead")
@attrs.frozen
class MessagesRead(Event):
    """`reader_id` read the `count` messages `sender_id` had sent them up to `until` (ISO time)."""

    conversation_id: str
    reader_id: str
    sender_id: str
    until: str
    count: int


@event("MessageDelivered")
@attrs.frozen
class MessageDelivered(Event):
    """The receiver's client confirmed it received a message."""

    conversation_id: str
    message_id: str
    receiver_id: str
    sender_id: str
