"""Chat commands: messages with their coin, conversations, read and delivery receipts.

`send` holds SendMessage (text or image, one event with its charge), `receipts` the
conversation start and the receipts, `rules` who may chat with whom, `text` the text rules,
`bodies` how a message looks to each side, and `delivery` the pushes that follow.
"""

from __future__ import annotations

from truebond.commands.bus import HandlerTable, ReactionTable
from truebond.commands.chat import delivery, receipts, send
from truebond.commands.chat.receipts import Conversation, MarkDelivered, MarkRead, StartConversation
from truebond.commands.chat.send import SendMessage, SentMessage

__all__ = [
    "HANDLERS",
    "REACTIONS",
    "Conversation",
    "MarkDelivered",
    "MarkRead",
    "SendMessage",
    "SentMessage",
    "StartConversation",
]

HANDLERS: HandlerTable = {
    SendMessage: send.send_message,
    StartConversation: receipts.start_conversation,
    MarkRead: receipts.mark_read,
    MarkDelivered: receipts.mark_delivered,
}
REACTIONS: ReactionTable = delivery.REACTIONS
