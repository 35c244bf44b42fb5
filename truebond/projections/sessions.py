"""Read model `sessions`: one document per session, from the `session-<id>` stream."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from truebond.events.base import Recorded
from truebond.events.identity import SessionRefreshed, SessionRevoked, SessionStarted
from truebond.projections.views import StreamDocView, Update

OLD_HASHES_KEPT = 50
LISTED_SESSIONS = 200  # GET /api/auth/sessions shows the newest ones


def _started(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, SessionStarted)
    return {
        "$set": {
            "user_id": e.user_id,
            "device_id": e.device_id,
            "device": e.device,
            "ip": e.ip,
            "method": e.method,
            "refresh_hash": e.refresh_hash,
            "old_hashes": [],
            "created_at": rec.at,
            "last_seen_at": rec.at,
            "expires_at": datetime.fromisoformat(e.expires_at),
            "revoked_at": None,
            "revoked_reason": None,
        }
    }


def _refreshed(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, SessionRefreshed)
    return {
        "$set": {"refresh_hash": e.refresh_hash, "last_seen_at": rec.at, "ip": e.ip},
        "$push": {"old_hashes": {"$each": [e.previous_hash], "$slice": -OLD_HASHES_KEPT}},
    }


def _revoked(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, SessionRevoked)
    return {"$set": {"revoked_at": rec.at, "revoked_reason": e.reason}}


SESSIONS = StreamDocView(
    name="sessions",
    collection="sessions",
    stream_prefix="session-",
    updates={SessionStarted: _started, SessionRefreshed: _refreshed, SessionRevoked: _revoked},
    indexes=(([("user_id", ASCENDING), ("revoked_at", ASCENDING)], {"name": "user_live"}),),
)


async def get(db: Any, session_id: str) -> dict[str, Any] | None:
    """One session by id."""
    doc: dict[str, Any] | None = await db[SESSIONS.collection].find_one({"_id": session_id})
    return doc


async def live_for_user(db: Any, user_id: str, now: datetime, limit: int | None = LISTED_SESSIONS) -> list[dict[str, Any]]:
    """The user's sessions that are neither revoked nor expired, newest first: the newest `limit`, or all (None).

    A real server returns no more than the limit (mongomock's `to_list` used to ignore it): a
    caller that acts on every live session must ask for all of them.
    """
    cursor = db[SESSIONS.collection].find({"user_id": user_id, "revoked_at": None, "expires_at": {"$gt": now}}).sort("created_at", -1)
    if limit is not None:
        cursor = cursor.limit(limit)
    docs: list[dict[str, Any]] = await cursor.to_list(None)
    return docs


async def live_ids(db: Any, user_id: str, now: datetime) -> list[str]:
    """Ids of every live session of the user, however many (revoking all must miss none)."""
    cursor = db[SESSIONS.collection].find({"user_id": user_id, "revoked_at": None, "expires_at": {"$gt": now}}, projection={"_id": 1})
    return [str(doc["_id"]) async for doc in cursor]


async def unexpired_ids(db: Any, user_id: str, now: datetime) -> list[str]:
    """Ids of the user's sessions that have not expired, revoked or not (account erasure re-drops them)."""
    cursor = db[SESSIONS.collection].find({"user_id": user_id, "expires_at": {"$gt": now}}, projection={"_id": 1})
    return [str(doc["_id"]) async for doc in cursor]


async def ended_among(db: Any, session_ids: list[str], now: datetime) -> set[str]:
    """Which of `session_ids` are over: revoked, expired or unknown (sockets of those must go)."""
    if not session_ids:
        return set()
    cursor = db[SESSIONS.collection].find(
        {"_id": {"$in": session_ids}, "revoked_at": None, "expires_at": {"$gt": now}}, projection={"_id": 1}
    )
    live = {str(doc["_id"]) async for doc in cursor}
    return set(session_ids) - live
