"""Discovery lists and the dashboard (API.md "Profile, settings, discovery").

`/api/users/nearby`, `/suggestions`, `/search?q`, `/feed` answer `{users, count, page, has_more}`
of public profiles from the `users` read model; nearby uses the caller's fresh location and their
`max_distance_km`, and shows bucketed distances only (none for users with `show_distance` off).
"""

from __future__ import annotations

from typing import Any

import attrs
import voluptuous as vol
from aiohttp import web

from truebond.api import answers
from truebond.api.discovery_body import listed
from truebond.api.routing import Req, Route, json_response
from truebond.api.validation import query_int, strict
from truebond.projections import activity, blocks, discovery
from truebond.projections import conversations as conversations_view
from truebond.projections import ledger as ledger_view
from truebond.projections import locations as locations_view
from truebond.projections import messages as messages_view

MAX_LIMIT = 50
MAX_PAGE = 20
PAGING = {vol.Optional("limit", default=20): query_int(1, MAX_LIMIT), vol.Optional("page", default=1): query_int(1, MAX_PAGE)}
LIST_QUERY = strict(PAGING)
SEARCH_QUERY = strict({vol.Required("q"): vol.All(str, vol.Strip, vol.Length(min=1, max=50)), **PAGING})
# Collections of the chat read models (branch chat); absent until it merges, so the counts are 0.


def _page(users: list[dict[str, Any]], page: int, limit: int) -> dict[str, Any]:
    shown = users[:limit]
    return {"users": shown, "count": len(shown), "page": page, "has_more": len(users) > limit}


async def _list(req: Req, build: Any) -> web.StreamResponse:
    page, limit = req.query["page"], req.query["limit"]
    v = await discovery.viewer(req.unit.db, dict(await req.account()))
    # One more than asked, to tell whether another page follows.
    docs = await discovery.run(req.unit.db, attrs.evolve(build(v, page, limit), limit=limit + 1))
    return json_response(_page([listed(d) for d in docs], page, limit))


async def suggestions(req: Req) -> web.StreamResponse:
    """GET /api/users/suggestions: newest accounts matching the caller's preferences."""
    return await _list(req, discovery.suggestions_query)


async def feed(req: Req) -> web.StreamResponse:
    """GET /api/users/feed: recently updated accounts matching the caller's preferences."""
    return await _list(req, discovery.feed_query)


async def search(req: Req) -> web.StreamResponse:
    """GET /api/users/search?q: a literal, normalised prefix of a word of the name."""
    q = req.query["q"]
    return await _list(req, lambda v, page, limit: discovery.search_query(v, q, page, limit))


async def nearby(req: Req) -> web.StreamResponse:
    """GET /api/users/nearby: accounts near the caller's fresh location, within their max distance."""
    page, limit = req.query["page"], req.query["limit"]
    unit = req.unit
    now = unit.clock.now()
    mine = await locations_view.of_user(unit.db, req.me.user_id)
    if mine is None or not locations_view.is_fresh(mine, now):
        return json_response({**_page([], page, limit), "location_required": True})
    v = await discovery.viewer(unit.db, dict(await req.account()))
    radius = float(v.preferences.get("max_distance_km") or 50)
    found = await discovery.nearby(unit.db, v, float(mine["lat"]), float(mine["lng"]), radius, now, (page - 1) * limit, limit + 1)
    return json_response(_page([listed(user, km) for user, _, km in found], page, limit))


async def dashboard_stats(req: Req) -> web.StreamResponse:
    """GET /api/users/dashboard-stats: messages sent, conversations, profile views, coins."""
    db, uid = req.unit.db, req.me.user_id
    return json_response(
        {
            "messages_sent": await messages_view.count_sent(db, uid),
            # Counted as the conversation list shows them: none with a blocked or shadow-banned user.
            "matches": await conversations_view.count_for(db, uid, await blocks.hidden_from(db, uid)),
            "profile_views": await activity.profile_views(db, uid),
            "coins": await ledger_view.coins(db, uid),
        }
    )


async def streak(req: Req) -> web.StreamResponse:
    """GET /api/users/streak: consecutive active days and the days left to the next 7-day mark."""
    days = await activity.streak(req.unit.db, req.me.user_id, req.unit.clock.now().date())
    return json_response({"streak_days": days, "next_reward": activity.days_to_next_reward(days)})


def _get(path: str, handler: Any, summary: str, answer: dict[str, Any], query: vol.Schema | None = None) -> Route:
    return Route("GET", path, handler, auth="user", query=query, responses={200: answer}, summary=summary, tag="discovery")


ROUTES = [
    _get("/api/users/nearby", nearby, "Accounts near the caller", answers.PAGE, LIST_QUERY),
    _get("/api/users/suggestions", suggestions, "Suggested accounts", answers.PAGE, LIST_QUERY),
    _get("/api/users/search", search, "Search accounts by name", answers.PAGE, SEARCH_QUERY),
    _get("/api/users/feed", feed, "Recently updated accounts", answers.PAGE, LIST_QUERY),
    _get("/api/users/dashboard-stats", dashboard_stats, "The caller's dashboard numbers", answers.DASHBOARD),
    _get("/api/users/streak", streak, "The caller's activity streak", answers.STREAK),
]
