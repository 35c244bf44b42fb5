"""Discovery queries over the `users` read model: suggestions, feed, search and nearby.

Every list leaves out the viewer, anyone hidden from them (blocked either way, shadow-banned:
`blocks.hidden_from`), accounts that are not active (deleted, suspended) and accounts with
`safety.hide_from_search` on, and applies the viewer's preferences (gender interest, age range;
distance for nearby). Each query is a `ListQuery` (filter and sort) so a test can check that an
index serves it (`discovery_indexes`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from truebond.projections import blocks
from truebond.projections import locations as locations_view
from truebond.projections.discovery_indexes import HIDDEN
from truebond.projections.search_keys import normalise, prefix_range
from truebond.projections.users import USERS

GENDERS: tuple[str, ...] = ("male", "female", "other")
# The client's `interested_in` values and the genders each one wants to see.
INTEREST_GENDERS: dict[str, tuple[str, ...]] = {
    "male": ("male",),
    "men": ("male",),
    "female": ("female",),
    "women": ("female",),
    "other": ("other",),
    "both": ("male", "female"),
    "everyone": GENDERS,
}


@attrs.frozen
class ListQuery:
    """One page of a list: filter, sort, skip and limit on `users`."""

    filter: dict[str, Any]
    sort: list[tuple[str, int]]
    skip: int
    limit: int


@attrs.frozen
class Viewer:
    """Who is looking, with what preferences, and whom they must not see."""

    user_id: str
    preferences: dict[str, Any]
    hidden: frozenset[str]


async def viewer(db: Any, user: dict[str, Any]) -> Viewer:
    """The viewer of a list: their preferences and the ids safety hides from them."""
    user_id = str(user["_id"])
    hidden = await blocks.hidden_from(db, user_id)
    return Viewer(user_id, dict(user.get("preferences") or {}), frozenset(hidden))


def base_filter(v: Viewer, *, preferences: bool = True) -> dict[str, Any]:
    """Active, visible accounts other than the viewer (with the viewer's preferences applied)."""
    query: dict[str, Any] = {"status": "active"}
    if preferences:
        # Always an `$in`, even for everyone: the index's gender key then serves the sort too.
        query["gender"] = {"$in": list(INTEREST_GENDERS.get(str(v.preferences.get("interested_in")), GENDERS))}
        low, high = v.preferences.get("min_age"), v.preferences.get("max_age")
        if isinstance(low, int) and isinstance(high, int):
            query["age"] = {"$gte": low, "$lte": high}
    query[HIDDEN] = {"$ne": True}
    query["_id"] = {"$nin": sorted(v.hidden | {v.user_id})}
    return query


def page_of(page: int, limit: int) -> tuple[int, int]:
    """Skip and limit of a 1-based page."""
    return (page - 1) * limit, limit


def suggestions_query(v: Viewer, page: int, limit: int) -> ListQuery:
    """Newest accounts matching the viewer's preferences."""
    skip, lim = page_of(page, limit)
    return ListQuery(base_filter(v), [("created_at", -1)], skip, lim)


def feed_query(v: Viewer, page: int, limit: int) -> ListQuery:
    """Recently updated accounts matching the viewer's preferences."""
    skip, lim = page_of(page, limit)
    return ListQuery(base_filter(v), [("updated_at", -1)], skip, lim)


def search_query(v: Viewer, q: str, page: int, limit: int) -> ListQuery:
    """Accounts a word of whose normalised name starts with the normalised `q`, taken literally."""
    skip, lim = page_of(page, limit)
    query = base_filter(v, preferences=False)
    query["name_keys"] = {"$elemMatch": prefix_range(normalise(q))}
    return ListQuery(query, [("created_at", -1)], skip, lim)


async def run(db: Any, query: ListQuery) -> list[dict[str, Any]]:
    """The documents of one page, in the query's order."""
    cursor = db[USERS.collection].find(query.filter).sort(query.sort).skip(query.skip).limit(query.limit)
    return [doc async for doc in cursor]


async def nearby(
    db: Any, v: Viewer, lat: float, lng: float, radius_km: float, now: datetime, skip: int, limit: int
) -> list[tuple[dict[str, Any], dict[str, Any], float]]:
    """Visible accounts with a fresh location within `radius_km`, nearest first:
    (user, location, km) triples."""
    found = [(loc, km) for loc, km in await locations_view.near(db, lat, lng, radius_km, now) if loc["_id"] != v.user_id]
    ids = [str(loc["_id"]) for loc, _ in found]
    query = base_filter(v)
    query["_id"] = {"$in": [i for i in ids if i not in v.hidden]}
    users = {str(doc["_id"]): doc async for doc in db[USERS.collection].find(query)}
    matched = [(users[str(loc["_id"])], loc, km) for loc, km in found if str(loc["_id"]) in users]
    return matched[skip : skip + limit]
