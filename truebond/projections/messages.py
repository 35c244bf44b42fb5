"""Read model `messages`: one document per chat message, indexed by conversation and time.

Whether a message is read is not stored on it: the conversation keeps, per participant, the
time up to which they read (`projections.conversations`), so marking a conversation read is one
single-document write. `hidden` messages (sent while shadow-banned) are seen by their sender only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING

from truebond.events.account import AccountErased
from truebond.events.base import Recorded
from truebond.events.chat import MessageDelivered, MessageSent
from truebond.events.crypto import ERASED
from truebond.projections.views import ErasingDocView, EventDocView, Update


def _sent(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, MessageSent)
    return e.message_id, {
        "$set": {
            "conversationId": e.conversation_id,
            "sender_id": e.user_id,
            "receiver_id": e.receiver_id,
            "content": e.content,
            "message_type": e.message_type,
            "image_url": e.image_url,
            "client_message_id": e.client_message_id,
            "hidden": e.hidden,
            "created_at": rec.at,
        }
    }


def _delivered(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, MessageDelivered)
    return e.message_id, {"$min": {"delivered_at": rec.at}}


_MESSAGE_DOCS = EventDocView(
    name="messages",
    collection="messages",
    docs={MessageSent: _sent, MessageDelivered: _delivered},
    indexes=(
        ([("conversationId", 1), ("created_at", DESCENDING), ("_id", DESCENDING)], {"name": "conversation_time"}),
        ([("sender_id", 1)], {"name": "sender"}),
    ),
)


def _erased(rec: Recorded) -> list[tuple[dict[str, Any], Update]]:
    e = rec.event
    assert isinstance(e, AccountErased)
    # What replaying the events shows once the sender's key is gone: their personal fields erased.
    sent = {"sender_id": e.user_id}
    return [
        (sent, {"$set": {"content": ERASED}}),
        ({**sent, "image_url": {"$ne": None}}, {"$set": {"image_url": ERASED}}),
    ]


MESSAGES = ErasingDocView(_MESSAGE_DOCS, AccountErased, _erased)


async def count_sent(db: Any, user_id: str) -> int:
    """How many messages `user_id` has sent (the dashboard's `messages_sent`)."""
    return int(await db[MESSAGES.collection].count_documents({"sender_id": user_id}))


def visible_to(viewer_id: str) -> dict[str, Any]:
    """The filter of the messages a viewer may see: everything but others' hidden messages."""
    return {"$or": [{"hidden": False}, {"sender_id": viewer_id}]}


async def get(db: Any, message_id: str) -> dict[str, Any] | None:
    """One message by id (whoever may see it)."""
    doc: dict[str, Any] | None = await db[MESSAGES.collection].find_one({"_id": message_id, "sender_id": {"$exists": True}})
    return doc


async def page(
    db: Any, conversation_id: str, viewer_id: str, limit: int, before: tuple[datetime, str | None] | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` messages the viewer may see, older than `before`, oldest first; and whether older ones exist.

    `before` is (time, message id): strictly before that message in (time, id) order, so paging
    by the oldest message seen neither skips nor repeats one; (time, None) is strictly before that time.
    """
    query: dict[str, Any] = {"conversationId": conversation_id, "sender_id": {"$exists": True}, **visible_to(viewer_id)}
    if before is not None:
        at, message_id = before
        older: list[dict[str, Any]] = [{"created_at": {"$lt": at}}]
        if message_id is not None:
            older.append({"created_at": at, "_id": {"$lt": message_id}})
        query = {"$and": [query, {"$or": older}]}
    cursor = db[MESSAGES.collection].find(query).sort([("created_at", -1), ("_id", -1)]).limit(limit + 1)
    docs: list[dict[str, Any]] = await cursor.to_list(None)
    return list(reversed(docs[:limit])), len(docs) > limit


async def unread(db: Any, conversation_id: str, reader_id: str, read_until: datetime | None) -> list[dict[str, Any]]:
    """The messages of a conversation sent to `reader_id` after `read_until` (never hidden ones), oldest first."""
    query: dict[str, Any] = {"conversationId": conversation_id, "receiver_id": reader_id, "hidden": False}
    if read_until is not None:
        query["created_at"] = {"$gt": read_until}
    cursor = db[MESSAGES.collection].find(query, projection={"created_at": 1}).sort([("created_at", 1), ("_id", 1)])
    docs: list[dict[str, Any]] = await cursor.to_list(None)
    return docs


async def unread_count(db: Any, conversation_id: str, reader_id: str, read_until: datetime | None) -> int:
    """How many messages of a conversation `reader_id` has not read."""
    query: dict[str, Any] = {"conversationId": conversation_id, "receiver_id": reader_id, "hidden": False}
    if read_until is not None:
        query["created_at"] = {"$gt": read_until}
    return int(await db[MESSAGES.collection].count_documents(query))


async def by_ids(db: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Messages by id."""
    if not ids:
        return {}
    return {str(d["_id"]): d async for d in db[MESSAGES.collection].find({"_id": {"$in": ids}})}
