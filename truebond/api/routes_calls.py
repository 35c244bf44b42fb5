"""Call history: `GET /api/calls/history?filter=all|missed|incoming|outgoing&limit&skip`.

Everything shown is derived from the call's events (the `calls` read model): status, duration
and credits spent; `other_user` is the other participant's public name and photo.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from aiohttp import web

from truebond.api import answers
from truebond.api.routing import Req, Route, json_response
from truebond.api.validation import query_int, strict
from truebond.projections import blocks
from truebond.projections import calls as calls_view
from truebond.projections import users as users_view

HISTORY_QUERY = strict(
    {
        vol.Optional("filter", default="all"): vol.In(list(calls_view.HISTORY_FILTERS)),
        vol.Optional("limit", default=20): query_int(1, 100),
        vol.Optional("skip", default=0): query_int(0, 10_000),
    }
)


async def _other(db: Any, user_id: str) -> dict[str, Any]:
    doc = await users_view.by_id(db, user_id)
    if doc is None or doc.get("status") == "deleted":
        return {"id": user_id, "name": "Deleted user", "profile_picture": None}
    pictures = doc.get("profile_pictures") or []
    return {"id": user_id, "name": doc.get("name", ""), "profile_picture": pictures[0] if pictures else None}


async def call_history(req: Req) -> web.StreamResponse:
    """The caller's ended calls, newest first, with the total for paging."""
    me = req.me.user_id
    q = req.query
    # Calls with someone blocked either way or shadow-banned leave the list, as they leave every list.
    hidden = await blocks.hidden_from(req.unit.db, me)
    docs, total = await calls_view.history(req.unit.db, me, q["filter"], q["limit"], q["skip"], hidden)
    calls = []
    for d in docs:
        other_id = str(d["receiver_id"] if d["caller_id"] == me else d["caller_id"])
        calls.append(
            {
                "id": d["_id"],
                "caller_id": d["caller_id"],
                "receiver_id": d["receiver_id"],
                "call_type": d["call_type"],
                "status": d.get("status"),
                "initiated_at": d["initiated_at"],
                "duration_seconds": int(d.get("duration_seconds", 0)),
                "credits_spent": int(d.get("credits_spent", 0)),
                "disconnect_reason": d.get("end_reason"),
                "other_user": await _other(req.unit.db, other_id),
            }
        )
    return json_response({"calls": calls, "total": total})


ROUTES = [
    Route(
        "GET",
        "/api/calls/history",
        call_history,
        auth="user",
        query=HISTORY_QUERY,
        responses={200: answers.CALLS},
        summary="Call history",
        tag="calls",
    ),
]
