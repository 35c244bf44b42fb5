"""Read model `calls`: one document per call, from the `call-<id>` stream.

It holds what the call commands decide on (state, paid minutes, who is away and until when),
what the billing schedule is re-derived from (`next_action_at`), and what the call history
shows (status, duration and credits spent, all derived from the events).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING

from truebond.clock import to_ms
from truebond.events.base import Recorded
from truebond.events.calls import (
    CallAccepted,
    CallEnded,
    CallInitiated,
    CallMinutePaid,
    CallMissed,
    CallRejected,
    ParticipantDisconnected,
    ParticipantReconnected,
)
from truebond.projections.views import StreamDocView, Update

MINUTE = timedelta(seconds=60)
LIVE_STATES = ("ringing", "connected")
HISTORY_FILTERS = ("all", "missed", "incoming", "outgoing")


def _initiated(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, CallInitiated)
    return {
        "$set": {
            "caller_id": e.caller_id,
            "receiver_id": e.receiver_id,
            "participants": [e.caller_id] if e.hidden else [e.caller_id, e.receiver_id],
            "hidden": e.hidden,
            "call_type": e.call_type,
            "rate": e.rate,
            "state": "ringing",
            "initiated_at": rec.at,
            "ring_until": e.ring_until,
            "paid_ticks": 0,
            "credits_spent": 0,
            "away": {},
        }
    }


def _accepted(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, CallAccepted)
    return {"$set": {"state": "connected", "connected_at": e.connected_at, "paid_until": e.connected_at}}


def _paid(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, CallMinutePaid)
    return {"$set": {"paid_ticks": e.tick + 1, "paid_until": e.paid_until}, "$inc": {"credits_spent": e.amount}}


def _rejected(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, CallRejected)
    return _final(rec.at, "rejected", "rejected", e.rejected_by, 0)


def _missed(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, CallMissed)
    return _final(rec.at, "missed", "missed", "system", 0)


def _ended(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, CallEnded)
    if e.connected:
        status = "completed"
    elif e.reason == "ended":
        status = "missed"  # the caller hung up before anyone answered
    else:
        status = "failed"
    return _final(e.ended_at, e.reason, status, e.ended_by, e.duration_seconds)


def _final(at: datetime, reason: str, status: str, ended_by: str, duration: int) -> Update:
    return {
        "$set": {
            "state": "ended",
            "status": status,
            "end_reason": reason,
            "ended_by": ended_by,
            "ended_at": at,
            "duration_seconds": duration,
        },
        "$unset": {"away": ""},
    }


def _away(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, ParticipantDisconnected)
    return {"$set": {f"away.{e.user_id}": e.grace_until}}


def _back(rec: Recorded) -> Update:
    e = rec.event
    assert isinstance(e, ParticipantReconnected)
    return {"$unset": {f"away.{e.user_id}": ""}}


CALLS = StreamDocView(
    name="calls",
    collection="calls",
    stream_prefix="call-",
    updates={
        CallInitiated: _initiated,
        CallAccepted: _accepted,
        CallMinutePaid: _paid,
        CallRejected: _rejected,
        CallMissed: _missed,
        CallEnded: _ended,
        ParticipantDisconnected: _away,
        ParticipantReconnected: _back,
    },
    indexes=(
        ([("participants", ASCENDING), ("state", ASCENDING)], {"name": "participants_state"}),
        ([("participants", ASCENDING), ("initiated_at", DESCENDING)], {"name": "participants_time"}),
        ([("state", ASCENDING)], {"name": "state"}),
    ),
)


# -- what the state means ----------------------------------------------------------------------


def next_tick_at(doc: dict[str, Any]) -> datetime:
    """When the next minute of a connected call starts (it is charged then, before it runs)."""
    return to_ms(doc["connected_at"]) + MINUTE * int(doc.get("paid_ticks", 0))


def grace_until(doc: dict[str, Any]) -> datetime | None:
    """The earliest end of grace of a participant who is away, if any is."""
    away = doc.get("away") or {}
    return min((to_ms(v) for v in away.values()), default=None)


def next_action_at(doc: dict[str, Any]) -> datetime | None:
    """When the billing worker must next look at this call (None: never again, it is over)."""
    state = doc.get("state")
    if state == "ringing":
        return to_ms(doc["ring_until"])
    if state == "connected":
        tick = next_tick_at(doc)
        grace = grace_until(doc)
        return tick if grace is None else min(tick, grace)
    return None


def connected_seconds(doc: dict[str, Any], until: datetime) -> int:
    """Seconds connected up to `until`, never past the paid boundary (minutes are prepaid)."""
    if doc.get("connected_at") is None:
        return 0
    end = min(until, to_ms(doc.get("paid_until") or doc["connected_at"]))
    return max(0, int((end - to_ms(doc["connected_at"])).total_seconds()))


# -- queries -----------------------------------------------------------------------------------


async def by_id(db: Any, call_id: str) -> dict[str, Any] | None:
    """One call's document."""
    doc: dict[str, Any] | None = await db[CALLS.collection].find_one({"_id": call_id})
    return doc


async def live_call_of(db: Any, user_id: str) -> dict[str, Any] | None:
    """The user's ringing or connected call, if any (newest first)."""
    cursor = db[CALLS.collection].find({"participants": user_id, "state": {"$in": list(LIVE_STATES)}}).sort("initiated_at", -1)
    docs: list[dict[str, Any]] = await cursor.limit(1).to_list(None)
    return docs[0] if docs else None


async def live_calls(db: Any, batch: int = 1000) -> list[dict[str, Any]]:
    """Every ringing or connected call (to re-derive the billing schedule)."""
    cursor = db[CALLS.collection].find({"state": {"$in": list(LIVE_STATES)}})
    docs: list[dict[str, Any]] = await cursor.to_list(None)
    return docs


def _history_filter(user_id: str, which: str, hidden: Collection[str]) -> dict[str, Any]:
    base: dict[str, Any] = {"participants": user_id, "state": "ended"}
    if which == "incoming":
        base["receiver_id"] = user_id
    elif which == "outgoing":
        base["caller_id"] = user_id
    elif which == "missed":
        base.update({"receiver_id": user_id, "status": "missed"})
    # The user is one side; the other side (whichever key is not the user) must not be hidden.
    for key in ("caller_id", "receiver_id"):
        if hidden and key not in base:
            base[key] = {"$nin": sorted(hidden)}
    return base


async def history(
    db: Any, user_id: str, which: str, limit: int, skip: int, hidden: Collection[str] = ()
) -> tuple[list[dict[str, Any]], int]:
    """The user's ended calls, newest first, and how many match in all; calls with `hidden` users left out."""
    query = _history_filter(user_id, which, hidden)
    coll = db[CALLS.collection]
    cursor = coll.find(query).sort([("initiated_at", -1), ("_id", -1)]).skip(skip).limit(limit)
    docs: list[dict[str, Any]] = await cursor.to_list(None)
    return docs, int(await coll.count_documents(query))
