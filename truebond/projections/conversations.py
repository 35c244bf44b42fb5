"""Read model `chats`: one document per conversation (a pair of users), indexed by participants.

Per participant the document keeps whether they see the conversation (`visible_to`: a message
sent while shadow-banned shows it to its sender only), the sort key of the newest message they
see (`last_key.<user>` = "<time>|<message id>", so the newest wins whatever order events are
applied in) and the time up to which they read (`read_up_to.<user>`). Every update is `$max`,
`$min`, `$addToSet` or `$setOnInsert`: applying an event again changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from truebond.events.base import Recorded
from truebond.events.chat import ConversationStarted, MessageSent, MessagesRead
from truebond.projections.views import EventDocView, Update

LISTED_CONVERSATIONS = 200


def sort_key(at: datetime, message_id: str) -> str:
    """A string that orders messages by time, then id (fixed-width UTC time)."""
    return f"{at.strftime('%Y-%m-%dT%H:%M:%S.%f')}|{message_id}"


def message_id_of(key: str) -> str:
    """The message id inside a `sort_key`."""
    return key.rpartition("|")[2]


def _base(a: str, b: str, at: datetime) -> Update:
    return {"$setOnInsert": {"participants": sorted((a, b))}, "$min": {"created_at": at}}


def _started(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, ConversationStarted)
    update = _base(e.started_by, e.other_id, rec.at)
    update["$addToSet"] = {"visible_to": e.started_by}
    return e.conversation_id, update


def _sent(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, MessageSent)
    update = _base(e.user_id, e.receiver_id, rec.at)
    key = sort_key(rec.at, e.message_id)
    seers = [e.user_id] if e.hidden else [e.user_id, e.receiver_id]
    update["$addToSet"] = {"visible_to": {"$each": seers}}
    update["$max"] = {f"last_key.{user}": key for user in seers}
    return e.conversation_id, update


def _read(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, MessagesRead)
    return e.conversation_id, {"$max": {f"read_up_to.{e.reader_id}": datetime.fromisoformat(e.until)}}


CONVERSATIONS = EventDocView(
    name="conversations",
    collection="chats",
    docs={ConversationStarted: _started, MessageSent: _sent, MessagesRead: _read},
    indexes=(
        ([("participants", 1)], {"name": "participants"}),
        ([("visible_to", 1)], {"name": "visible_to"}),
    ),
)


async def count_for(db: Any, user_id: str, hidden: Collection[str] = ()) -> int:
    """How many conversations `user_id` sees, with nobody in `hidden` (the dashboard's `matches`)."""
    query: dict[str, Any] = {"visible_to": user_id}
    if hidden:
        query["participants"] = {"$nin": sorted(hidden)}
    return int(await db[CONVERSATIONS.collection].count_documents(query))


async def get(db: Any, conversation_id: str) -> dict[str, Any] | None:
    """One conversation by id."""
    doc: dict[str, Any] | None = await db[CONVERSATIONS.collection].find_one({"_id": conversation_id, "participants": {"$exists": True}})
    return doc


def sees(doc: dict[str, Any] | None, user_id: str) -> bool:
    """Whether the user sees this conversation in their list."""
    return doc is not None and user_id in doc.get("visible_to", [])


def other_of(doc: dict[str, Any], user_id: str) -> str:
    """The participant who is not `user_id`."""
    return next((p for p in doc["participants"] if p != user_id), user_id)


def read_until(doc: dict[str, Any] | None, user_id: str) -> datetime | None:
    """Up to when the user read this conversation (None: nothing read yet)."""
    if doc is None:
        return None
    value = (doc.get("read_up_to") or {}).get(user_id)
    return value if isinstance(value, datetime) else None


async def for_user(db: Any, user_id: str, limit: int = LISTED_CONVERSATIONS) -> list[dict[str, Any]]:
    """The conversations the user sees, newest message first (conversations without one last)."""
    cursor = db[CONVERSATIONS.collection].find({"visible_to": user_id})
    docs: list[dict[str, Any]] = await cursor.to_list(None)

    def newest(doc: dict[str, Any]) -> str:
        key = (doc.get("last_key") or {}).get(user_id)
        return str(key) if key else sort_key(doc["created_at"], "")

    return sorted(docs, key=newest, reverse=True)[:limit]


async def partner_ids(db: Any, user_id: str) -> list[str]:
    """The users who share a conversation with `user_id` and see it (presence goes to them)."""
    cursor = db[CONVERSATIONS.collection].find({"participants": user_id}, projection={"participants": 1, "visible_to": 1})
    partners: list[str] = []
    async for doc in cursor:
        other = other_of(doc, user_id)
        if other != user_id and other in doc.get("visible_to", []):
            partners.append(other)
    return sorted(set(partners))
