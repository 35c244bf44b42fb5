"""How a message looks to a participant: the fields of API.md "Chat" (`GET /api/messages/{id}`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from truebond.clock import to_ms
from truebond.events.chat import MessageSent


def status_of(created_at: datetime, delivered_at: datetime | None, receiver_read_until: datetime | None) -> str:
    """`read` once the receiver read up to it, `delivered` once their client confirmed it, else `sent`."""
    if receiver_read_until is not None and created_at <= receiver_read_until:
        return "read"
    return "delivered" if delivered_at is not None else "sent"


def from_doc(doc: Mapping[str, Any], viewer_id: str, receiver_read_until: datetime | None) -> dict[str, Any]:
    """A `messages` read-model document as `viewer_id` sees it."""
    status = status_of(doc["created_at"], doc.get("delivered_at"), receiver_read_until)
    body: dict[str, Any] = {
        "id": doc["_id"],
        "sender_id": doc["sender_id"],
        "receiver_id": doc["receiver_id"],
        "content": doc.get("content", ""),
        "message_type": doc.get("message_type", "text"),
        "image_url": doc.get("image_url"),
        "is_mine": doc["sender_id"] == viewer_id,
        "is_read": status == "read",
        "status": status,
        "created_at": doc["created_at"],
        "conversation_id": doc["conversationId"],
    }
    if body["is_mine"] and doc.get("client_message_id"):
        body["client_message_id"] = doc["client_message_id"]
    return body


def from_event(e: MessageSent, at: datetime, viewer_id: str) -> dict[str, Any]:
    """A message just sent, as `viewer_id` sees it (status `sent`)."""
    doc = {
        "_id": e.message_id,
        "sender_id": e.user_id,
        "receiver_id": e.receiver_id,
        "content": e.content,
        "message_type": e.message_type,
        "image_url": e.image_url,
        "created_at": at,
        "conversationId": e.conversation_id,
        "client_message_id": e.client_message_id,
    }
    return from_doc(doc, viewer_id, None)


def iso(at: datetime) -> str:
    """A time as the API writes it: ISO 8601 in UTC to the millisecond, with a Z."""
    return to_ms(at).isoformat().replace("+00:00", "Z")


def wire(body: Mapping[str, Any]) -> dict[str, Any]:
    """A body for a socket push or ack: times as ISO strings."""
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in body.items()}
