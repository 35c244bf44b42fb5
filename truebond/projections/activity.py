"""Read models for the dashboard: `profile_views` (count per user) and `activity_streaks`.

`profile_views` counts the `views-<user>` stream (one event per viewer per day). The streak of a
user is the run of consecutive UTC days on which they did something (any event whose actor is
`user:<id>`: a login, a token refresh, a message...), kept as the last active day and the run's
length; redelivering an event of a day already counted changes nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import attrs
from pymongo.errors import DuplicateKeyError

from truebond.events.base import Recorded
from truebond.events.discovery import ProfileViewed
from truebond.events.store import EventStore
from truebond.projections.views import IndexSpec, StreamDocView, Update

REWARD_EVERY_DAYS = 7


def _viewed(rec: Recorded) -> Update:
    assert isinstance(rec.event, ProfileViewed)
    return {"$inc": {"count": 1}, "$set": {"last_viewed_at": rec.at}}


PROFILE_VIEWS = StreamDocView(name="profile_views", collection="profile_views", stream_prefix="views-", updates={ProfileViewed: _viewed})


@attrs.frozen
class StreakView:
    """Consecutive active days per user, from every event a user caused."""

    name: str = "activity_streaks"
    collection: str = "activity_streaks"
    indexes: tuple[IndexSpec, ...] = ()

    def wants(self, rec: Recorded) -> bool:
        """Events a user caused themselves."""
        kind, _, ident = rec.meta.actor.partition(":")
        return kind == "user" and bool(ident)

    async def apply(self, coll: Any, rec: Recorded, store: EventStore) -> None:
        """Extend, restart or keep the run (compare-and-set on the last active day)."""
        user_id = rec.meta.actor.partition(":")[2]
        day = rec.at.date()
        for _ in range(20):
            doc = await coll.find_one({"_id": user_id})
            if doc is None:
                try:
                    await coll.insert_one({"_id": user_id, "last_day": day.isoformat(), "streak_days": 1})
                    return
                except DuplicateKeyError:  # another writer inserted it first: decide again on its state
                    continue
            last = date.fromisoformat(str(doc["last_day"]))
            if day <= last:
                return
            streak = int(doc.get("streak_days", 1)) + 1 if day == last + timedelta(days=1) else 1
            result = await coll.update_one(
                {"_id": user_id, "last_day": doc["last_day"]}, {"$set": {"last_day": day.isoformat(), "streak_days": streak}}
            )
            if result.matched_count:
                return


STREAKS = StreakView()


async def profile_views(db: Any, user_id: str) -> int:
    """How many times others opened the user's profile (each viewer once a day)."""
    doc = await db[PROFILE_VIEWS.collection].find_one({"_id": user_id}, projection={"count": 1})
    return 0 if doc is None else int(doc.get("count", 0))


async def streak(db: Any, user_id: str, today: date) -> int:
    """The current run of active days (0 once a whole day passed without activity)."""
    doc = await db[STREAKS.collection].find_one({"_id": user_id})
    if doc is None:
        return 0
    last = date.fromisoformat(str(doc["last_day"]))
    return int(doc.get("streak_days", 0)) if today - last <= timedelta(days=1) else 0


def days_to_next_reward(streak_days: int) -> int:
    """Days left until the streak reaches the next multiple of 7."""
    return REWARD_EVERY_DAYS - streak_days % REWARD_EVERY_DAYS
