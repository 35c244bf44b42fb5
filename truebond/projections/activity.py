"""Read models for the dashboard: `profile_views` (count per user) and `activity_days`.

`profile_views` counts the `views-<user>` stream (one event per viewer per day). `activity_days`
holds one document per actor and UTC day on which the actor caused any event (a login, a token
refresh, a message...); a user's streak is the run of consecutive days ending today or yesterday.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING

from truebond.events.base import Event, Recorded
from truebond.events.discovery import ProfileViewed
from truebond.projections.views import EventDocView, StreamDocView, Update

REWARD_EVERY_DAYS = 7


def _viewed(rec: Recorded) -> Update:
    assert isinstance(rec.event, ProfileViewed)
    return {"$inc": {"count": 1}, "$set": {"last_viewed_at": rec.at}}


PROFILE_VIEWS = StreamDocView(name="profile_views", collection="profile_views", stream_prefix="views-", updates={ProfileViewed: _viewed})


def _active_day(rec: Recorded) -> tuple[str, Update]:
    day = rec.at.date().isoformat()
    return f"{rec.meta.actor}|{day}", {"$set": {"actor": rec.meta.actor, "day": day}}


# One document per actor and UTC day with any event; a user's streak is read from theirs.
ACTIVITY_DAYS = EventDocView(
    name="activity_days",
    collection="activity_days",
    docs={Event: _active_day},
    indexes=(([("actor", ASCENDING), ("day", DESCENDING)], {"name": "actor_day"}),),
)
STREAKS = ACTIVITY_DAYS
MAX_STREAK_DAYS = 400


async def profile_views(db: Any, user_id: str) -> int:
    """How many times others opened the user's profile (each viewer once a day)."""
    doc = await db[PROFILE_VIEWS.collection].find_one({"_id": user_id}, projection={"count": 1})
    return 0 if doc is None else int(doc.get("count", 0))


async def streak(db: Any, user_id: str, today: date) -> int:
    """The run of consecutive active days ending today or yesterday (0 once a whole day passed)."""
    cursor = db[ACTIVITY_DAYS.collection].find({"actor": f"user:{user_id}"}, projection={"day": 1}).sort([("day", -1)])
    expected: date | None = None
    run = 0
    async for doc in cursor.limit(MAX_STREAK_DAYS):
        day = date.fromisoformat(str(doc["day"]))
        if expected is None:
            if today - day > timedelta(days=1):
                return 0
        elif day != expected:
            break
        run += 1
        expected = day - timedelta(days=1)
    return run


def days_to_next_reward(streak_days: int) -> int:
    """Days left until the streak reaches the next multiple of 7."""
    return REWARD_EVERY_DAYS - streak_days % REWARD_EVERY_DAYS
