"""Read models `block_lists` (who each user blocked) and `reports` (the moderation queue)."""

from __future__ import annotations

import re
from typing import Any

from pymongo import ASCENDING, DESCENDING

from truebond.events.admin import ReportApproved, ReportedContentRemoved, UserBanned
from truebond.events.base import Recorded
from truebond.events.safety import UserBlocked, UserReported, UserUnblocked
from truebond.projections.views import EventDocView, StreamDocView, Update

REPORT_STATUSES = ("pending", "approved", "removed", "banned")
REPORT_TYPES = ("profile", "message", "photo", "other")


def _blocked(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, UserBlocked)
    # The decision never blocks twice, so a push cannot duplicate an entry.
    return {"$push": {"entries": {"user_id": e.blocked_id, "at": rec.at}}, "$set": {"user_id": e.blocker_id}}


def _unblocked(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, UserUnblocked)
    return {"$pull": {"entries": {"user_id": e.blocked_id}}, "$set": {"user_id": e.blocker_id}}


BLOCK_LISTS = StreamDocView(
    name="block_lists",
    collection="block_lists",
    stream_prefix="safety-",
    updates={UserBlocked: _blocked, UserUnblocked: _unblocked},
    indexes=(([("entries.user_id", ASCENDING)], {"name": "blocked_user"}),),
)


def _reported(rec: Recorded) -> tuple[str, Update]:
    e = rec.event
    assert isinstance(e, UserReported)
    return e.report_id, {
        "$set": {
            "reporter_id": e.reporter_id,
            "reported_id": e.reported_id,
            "report_type": e.report_type,
            "reason": e.reason,
            "created_at": rec.at,
        },
        # A resolution applied first (the async projector's order) is never overwritten.
        "$setOnInsert": {"status": "pending"},
    }


def _resolved(status: str) -> Any:
    def update(rec: Recorded) -> tuple[str, Update]:
        e = rec.event
        assert isinstance(e, ReportApproved | ReportedContentRemoved | UserBanned)
        return e.report_id, {
            "$set": {
                "status": status,
                "resolved_by": rec.meta.actor,
                "resolution_reason": e.reason,
                "resolved_at": rec.at,
            }
        }

    return update


REPORTS = EventDocView(
    name="reports",
    collection="reports",
    docs={
        UserReported: _reported,
        ReportApproved: _resolved("approved"),
        ReportedContentRemoved: _resolved("removed"),
        UserBanned: _resolved("banned"),
    },
    indexes=(
        ([("status", ASCENDING), ("created_at", DESCENDING)], {"name": "status_time"}),
        ([("created_at", DESCENDING)], {"name": "created_at"}),
        ([("reported_id", ASCENDING)], {"name": "reported"}),
    ),
)


async def blocked_by_me(db: Any, user_id: str) -> list[dict[str, Any]]:
    """The entries `{user_id, at}` of the users `user_id` blocked, oldest first."""
    doc = await db[BLOCK_LISTS.collection].find_one({"_id": user_id}, projection={"entries": 1})
    return list((doc or {}).get("entries", []))


async def who_blocked(db: Any, user_id: str) -> list[str]:
    """Ids of the users who blocked `user_id`."""
    cursor = db[BLOCK_LISTS.collection].find({"entries.user_id": user_id}, projection={"_id": 1})
    return [str(doc["_id"]) async for doc in cursor]


async def has_blocked(db: Any, blocker: str, blocked: str) -> bool:
    """Whether `blocker` blocked `blocked`."""
    found = await db[BLOCK_LISTS.collection].find_one({"_id": blocker, "entries.user_id": blocked}, projection={"_id": 1})
    return found is not None


async def report(db: Any, report_id: str) -> dict[str, Any] | None:
    """One report by id."""
    if not re.fullmatch(r"[0-9a-f]{32}", report_id):
        return None
    doc: dict[str, Any] | None = await db[REPORTS.collection].find_one({"_id": report_id})
    return doc


async def reports_page(db: Any, *, status: str | None, report_type: str | None, page: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """A page of reports, newest first, and how many match."""
    query: dict[str, Any] = {}
    if status:
        query["status"] = status
    if report_type:
        query["report_type"] = report_type
    coll = db[REPORTS.collection]
    total = int(await coll.count_documents(query))
    docs: list[dict[str, Any]] = await coll.find(query).sort("created_at", -1).skip((page - 1) * limit).limit(limit).to_list(None)
    return docs, total


async def report_stats(db: Any) -> dict[str, Any]:
    """How many reports there are by status and, among the pending ones, by type."""
    coll = db[REPORTS.collection]
    by_status = {s: int(await coll.count_documents({"status": s})) for s in REPORT_STATUSES}
    pending = {t: int(await coll.count_documents({"status": "pending", "report_type": t})) for t in REPORT_TYPES}
    return {"total": sum(by_status.values()), "by_status": by_status, "pending_by_type": pending}
