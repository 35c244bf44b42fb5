"""Chat over Socket.IO: `message:send`, `join_chat`, typing relays and receipts (API.md last section).

`message:send` is the same command and price as `POST /api/messages/send`; its ack is
`{success: true, message_id, conversation_id, created_at, status}`. `join_chat` only answers
whether the two may chat (the server alone puts sockets in rooms). Typing is relayed, not
stored: only to the user named, only when the two share a conversation, are not blocked, and
the typist is not shadow-banned. Receipts are commands; only a message's receiver may send them.
"""

from __future__ import annotations

from truebond.api import chat_schemas as schemas
from truebond.api.socket_routing import Ack, SocketReq, SocketRoute
from truebond.commands.chat import MarkDelivered, MarkRead, SendMessage, bodies, rules
from truebond.errors import Forbidden, NotFound
from truebond.events.chat import conversation_id_of
from truebond.projections import blocks
from truebond.projections import conversations as conversations_view


async def send(req: SocketReq) -> Ack:
    """`message:send`: send a text message; the ack carries the stored message's id and time."""
    p = req.payload
    cmd = SendMessage(
        sender_id=req.caller.user_id,
        receiver_id=p["receiver_id"],
        content=p["content"],
        conversation_id=p.get("conversation_id"),
        client_message_id=schemas.client_key(p),
    )
    sent = await req.bus.handle(cmd, req.ctx)
    return {
        "success": True,
        "message_id": sent.message_id,
        "conversation_id": sent.conversation_id,
        "created_at": bodies.iso(sent.created_at),
        "status": sent.status,
        "message": bodies.wire(sent.message),
    }


async def join_chat(req: SocketReq) -> Ack:
    """`join_chat`: the pair's conversation id when the two may chat (no room is joined)."""
    conversation_id = await rules.ensure_pair(req.unit, req.caller.user_id, req.payload["user_id"], field="user_id")
    return {"success": True, "conversation_id": conversation_id}


async def _typing(req: SocketReq, event: str) -> Ack:
    me, other = req.caller.user_id, req.payload["receiver_id"]
    conversation_id = conversation_id_of(me, other)
    if req.payload.get("conversation_id") not in (None, conversation_id):
        raise Forbidden("This conversation is not yours")
    db = req.unit.db
    doc = await conversations_view.get(db, conversation_id)
    if other == me or not conversations_view.sees(doc, me):
        raise NotFound("Conversation not found")
    if await blocks.shadow_banned(db, me):
        return {"success": True}  # as if relayed: the typist is not told
    if not conversations_view.sees(doc, other):
        raise NotFound("Conversation not found")
    if await blocks.blocked_either_way(db, me, other):
        raise Forbidden("You cannot chat with this user")
    await req.unit.notifier.emit_to_user(other, event, {"sender_id": me, "user_id": me, "conversation_id": conversation_id})
    return {"success": True}


async def typing(req: SocketReq) -> Ack:
    """`message:typing`: relayed to the named user only."""
    return await _typing(req, "message:typing")


async def stop_typing(req: SocketReq) -> Ack:
    """`message:stop-typing`: relayed to the named user only."""
    return await _typing(req, "message:stop-typing")


async def read(req: SocketReq) -> Ack:
    """`message:read`: the caller read what `sender_id` sent them."""
    p = req.payload
    marked = await req.bus.handle(MarkRead(req.caller.user_id, p["sender_id"], p.get("conversation_id")), req.ctx)
    return {"success": True, "marked_read": marked}


async def delivered(req: SocketReq) -> Ack:
    """`message:delivered`: the caller's client got a message sent to them."""
    p = req.payload
    await req.bus.handle(MarkDelivered(req.caller.user_id, p["message_id"], p.get("sender_id")), req.ctx)
    return {"success": True}


SOCKET_ROUTES = [
    SocketRoute(
        "message:send", schemas.SOCKET_SEND_SCHEMA, send, limits=(schemas.MESSAGES_PER_MINUTE,), summary="Send a text message (1 coin)"
    ),
    SocketRoute("join_chat", schemas.USER_SCHEMA, join_chat, summary="Whether the caller may chat with a user"),
    SocketRoute("message:typing", schemas.TYPING_SCHEMA, typing, summary="Typing, relayed to the other user"),
    SocketRoute("message:stop-typing", schemas.TYPING_SCHEMA, stop_typing, summary="Stopped typing, relayed to the other user"),
    SocketRoute("message:read", schemas.READ_SCHEMA, read, summary="Mark a conversation read"),
    SocketRoute("message:delivered", schemas.DELIVERED_SCHEMA, delivered, summary="Confirm a message arrived"),
]
