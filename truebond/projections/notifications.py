"""Read model `notifications`: one document per notification, and a read mark per user.

A notification is read when it is not newer than its owner's mark (`read:<user>`, moved forward
only with `$max`), so "mark all read" is one single-document write however many there are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING

from truebond.events.base import Recorded
from truebond.events.notifications import NotificationRaised, NotificationsRead
from truebond.projections.views import EventDocView, Update


def _raised(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, NotificationRaised)
    return rec.id, {"$set": {"user_id": e.user_id, "type": e.type, "title": e.title, "body": e.body, "created_at": rec.at}}


def _read(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, NotificationsRead)
    return mark_id(e.user_id), {"$max": {"read_until": e.up_to}}


NOTIFICATIONS = EventDocView(
    name="notifications",
    collection="notifications",
    docs={NotificationRaised: _raised, NotificationsRead: _read},
    indexes=(([("user_id", ASCENDING), ("created_at", DESCENDING)], {"name": "user_time"}),),
)


def mark_id(user_id: str) -> str:
    """The id of a user's read mark."""
    return f"read:{user_id}"


async def read_until(db: Any, user_id: str) -> datetime | None:
    """Up to when the user has read their notifications (None: nothing read yet)."""
    doc = await db[NOTIFICATIONS.collection].find_one({"_id": mark_id(user_id)}, projection={"read_until": 1})
    return None if doc is None else doc.get("read_until")


def _filter(user_id: str, unread_after: datetime | None) -> dict[str, Any]:
    query: dict[str, Any] = {"user_id": user_id}
    if unread_after is not None:
        query["created_at"] = {"$gt": unread_after}
    return query


async def of_user(db: Any, user_id: str, *, unread_only: bool, limit: int) -> list[dict[str, Any]]:
    """The user's notifications, newest first, each with `is_read`."""
    mark = await read_until(db, user_id)
    cursor = db[NOTIFICATIONS.collection].find(_filter(user_id, mark if unread_only else None)).sort([("created_at", -1)]).limit(limit)
    return [{**doc, "is_read": mark is not None and doc["created_at"] <= mark} async for doc in cursor]


async def unread_count(db: Any, user_id: str) -> int:
    """How many of the user's notifications are newer than their read mark."""
    mark = await read_until(db, user_id)
    query = _filter(user_id, mark)
    count: int = await db[NOTIFICATIONS.collection].count_documents(query)
    return count
