"""Chat over HTTP (API.md "Chat" and its last section): conversations, history, send, read, upload."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import voluptuous as vol
from aiohttp import web

from truebond.adapters import images
from truebond.adapters.ratelimit import Policy
from truebond.api import answers
from truebond.api import chat_schemas as schemas
from truebond.api.chat_upload import UPLOAD_BODY_LIMIT, read_message_upload
from truebond.api.routes_profile import public_body
from truebond.api.routing import KeyBy, Req, Route, json_response
from truebond.commands.chat import MarkRead, SendMessage, SentMessage, StartConversation, bodies
from truebond.errors import ImageTooLarge, NotFound, UnsupportedMediaType, ValidationFailed
from truebond.events.chat import conversation_id_of
from truebond.projections import blocks
from truebond.projections import conversations as conversations_view
from truebond.projections import messages as messages_view
from truebond.projections import presence as presence_view
from truebond.projections import users as users_view

SEND_LIMITS: tuple[tuple[Policy, KeyBy], ...] = ((schemas.MESSAGES_PER_MINUTE, "user"),)


def path_id(req: Req, name: str = "other_user_id") -> str:
    """A user id from the path (422 when it cannot be one)."""
    value = req.param(name)
    try:
        return str(schemas.ID(value))
    except vol.Invalid:
        raise ValidationFailed([{"loc": ["path", name], "msg": "invalid id"}]) from None


def _sent_body(sent: SentMessage) -> dict[str, Any]:
    return {
        "success": True,
        "message_id": sent.message_id,
        "status": sent.status,
        "created_at": sent.created_at,
        "message": sent.message,
        "conversation_id": sent.conversation_id,
    }


def _avatar(user: dict[str, Any]) -> str | None:
    pictures = user.get("profile_pictures") or []
    return str(pictures[0]) if pictures else None


async def list_conversations(req: Req) -> web.StreamResponse:
    """GET /api/messages/conversations: newest first, with the last message and the unread count."""
    db, me = req.unit.db, req.me.user_id
    hidden = await blocks.hidden_from(db, me)
    docs = [d for d in await conversations_view.for_user(db, me) if conversations_view.other_of(d, me) not in hidden]
    last_ids = [conversations_view.message_id_of(str(k)) for d in docs if (k := (d.get("last_key") or {}).get(me))]
    last = await messages_view.by_ids(db, last_ids)
    online = await presence_view.visible_online_among(req.unit, me, [conversations_view.other_of(d, me) for d in docs])
    items = []
    for doc in docs:
        other_id = conversations_view.other_of(doc, me)
        other = await users_view.by_id(db, other_id)
        if other is None or other.get("status") == "deleted":
            continue
        key = (doc.get("last_key") or {}).get(me)
        message = last.get(conversations_view.message_id_of(str(key))) if key else None
        profile = public_body(other)
        items.append(
            {
                "id": doc["_id"],
                "conversation_id": doc["_id"],
                "user_id": other_id,
                "name": other.get("name"),
                "avatar": _avatar(other),
                "online": other_id in online,
                "lastMessage": _preview(message),
                "last_message_at": message["created_at"] if message else None,
                "last_message_sender_id": message["sender_id"] if message else None,
                "unread": await messages_view.unread_count(db, doc["_id"], me, conversations_view.read_until(doc, me)),
                "created_at": doc.get("created_at"),
                "user": profile,
                "other_user": profile,
            }
        )
    return json_response({"success": True, "conversations": items, "count": len(items)})


def _preview(message: dict[str, Any] | None) -> str:
    if message is None:
        return ""
    return "Photo" if message.get("message_type") == "image" else str(message.get("content", ""))


async def _start(req: Req, other_id: str) -> tuple[str, bool, dict[str, Any]]:
    started = await req.bus.handle(StartConversation(req.me.user_id, other_id), req.ctx)
    other = await users_view.by_id(req.unit.db, other_id)
    assert other is not None
    return started.conversation_id, started.existing, public_body(other)


async def start_conversation(req: Req) -> web.StreamResponse:
    """POST /api/messages/start-conversation: the pair's conversation (created if needed)."""
    conversation_id, _, user = await _start(req, req.body["receiver_id"])
    return json_response({"conversation_id": conversation_id, "user": user})


async def create_or_get_conversation(req: Req) -> web.StreamResponse:
    """POST /api/users/create-or-get-conversation: the same, saying whether it existed."""
    conversation_id, existing, user = await _start(req, req.body["user_id"])
    return json_response({"conversation_id": conversation_id, "user": user, "existing": existing})


async def history(req: Req) -> web.StreamResponse:
    """GET /api/messages/{other_user_id}: the pair's messages, oldest first, paged back with `before`."""
    db, me, other_id = req.unit.db, req.me.user_id, path_id(req)
    # Blocked either way, or a shadow-banned other: gone from this user's view, old messages too.
    if await blocks.out_of_sight(db, me, other_id):
        raise NotFound("User not found")
    conversation_id = conversation_id_of(me, other_id)
    doc = await conversations_view.get(db, conversation_id)
    if other_id == me or not conversations_view.sees(doc, me):
        return json_response({"messages": [], "has_more": False, "conversation_id": conversation_id})
    before = req.query.get("before")
    cursor: tuple[datetime, str | None] | None = None
    if isinstance(before, datetime):
        cursor = (before, None)
    elif isinstance(before, str):
        seen = await messages_view.get(db, before)
        if seen is None or seen["conversationId"] != conversation_id:
            raise ValidationFailed([{"loc": ["query", "before"], "msg": "unknown message"}])
        cursor = (seen["created_at"], before)
    docs, has_more = await messages_view.page(db, conversation_id, me, req.query["limit"], cursor)
    messages = [bodies.from_doc(d, me, conversations_view.read_until(doc, str(d["receiver_id"]))) for d in docs]
    return json_response({"messages": messages, "has_more": has_more, "conversation_id": conversation_id})


async def send(req: Req) -> web.StreamResponse:
    """POST /api/messages/send: a text message for 1 coin (402 short, 403 blocked or a foreign conversation)."""
    body = req.body
    cmd = SendMessage(
        sender_id=req.me.user_id,
        receiver_id=body["receiver_id"],
        content=body["content"],
        conversation_id=body.get("conversation_id"),
        client_message_id=schemas.client_key(body),
    )
    return json_response(_sent_body(await req.bus.handle(cmd, req.ctx)))


async def mark_read(req: Req) -> web.StreamResponse:
    """POST /api/messages/read/{other_user_id}: the caller's unread messages from that user are read."""
    other_id = path_id(req)
    try:
        marked = await req.bus.handle(MarkRead(req.me.user_id, other_id), req.ctx)
    except NotFound:
        marked = 0
    return json_response({"marked_read": marked})


async def upload(req: Req) -> web.StreamResponse:
    """POST /api/messages/upload: an image message (field `image` or `file`), same answer and price as text."""
    data, body = await read_message_upload(req.request, schemas.UPLOAD_FIELDS)
    try:
        image = await images.clean_async(data)
    except images.ImageTooLarge as exc:
        raise ImageTooLarge(exc.reason) from None
    except images.NotAnImage as exc:
        raise UnsupportedMediaType(exc.reason) from None
    cmd = SendMessage(
        sender_id=req.me.user_id,
        receiver_id=body["receiver_id"],
        content=body.get("content") or body.get("caption") or "",
        image=image,
        conversation_id=body.get("conversation_id"),
        client_message_id=schemas.client_key(body),
    )
    return json_response(_sent_body(await req.bus.handle(cmd, req.ctx)))


ROUTES = [
    Route(
        "GET",
        "/api/messages/conversations",
        list_conversations,
        auth="user",
        responses={200: answers.CONVERSATIONS},
        summary="The caller's conversations",
        tag="chat",
    ),
    Route(
        "POST",
        "/api/messages/start-conversation",
        start_conversation,
        auth="user",
        body=schemas.START_SCHEMA,
        responses={200: answers.CONVERSATION},
        errors=(403, 404),
        summary="Open a conversation",
        tag="chat",
    ),
    Route(
        "POST",
        "/api/users/create-or-get-conversation",
        create_or_get_conversation,
        auth="user",
        body=schemas.CREATE_OR_GET_SCHEMA,
        responses={200: answers.CONVERSATION},
        errors=(403, 404),
        summary="Open or find a conversation",
        tag="chat",
    ),
    Route(
        "POST",
        "/api/messages/send",
        send,
        auth="user",
        body=schemas.SEND_SCHEMA,
        limits=SEND_LIMITS,
        responses={200: answers.SENT},
        errors=(402, 403, 404),
        summary="Send a text message (1 coin)",
        tag="chat",
    ),
    Route(
        "POST",
        "/api/messages/upload",
        upload,
        auth="user",
        raw_body=True,
        max_body=UPLOAD_BODY_LIMIT,
        limits=SEND_LIMITS,
        responses={200: answers.SENT},
        errors=(400, 402, 403, 404, 415, 422),
        content=schemas.UPLOAD_FORM,
        summary="Send an image message (multipart image or file, receiver_id; 1 coin)",
        tag="chat",
    ),
    Route(
        "POST",
        "/api/messages/read/{other_user_id}",
        mark_read,
        auth="user",
        responses={200: answers.MARKED_READ},
        errors=(422,),
        summary="Mark a conversation read",
        tag="chat",
    ),
    Route(
        "GET",
        "/api/messages/{other_user_id}",
        history,
        auth="user",
        query=schemas.HISTORY_QUERY,
        responses={200: answers.THREAD},
        errors=(404,),
        summary="Messages with a user (limit, before)",
        tag="chat",
    ),
]
