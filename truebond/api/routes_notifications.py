"""Notifications (API.md "Calls, coins, payments, notifications"): list, unread count, mark all read."""

from __future__ import annotations

import voluptuous as vol
from aiohttp import web

from truebond.api import answers
from truebond.api.routing import Req, Route, json_response
from truebond.api.validation import query_int, strict
from truebond.commands.notifications import MarkAllNotificationsRead
from truebond.projections import notifications as notifications_view

LIST_QUERY = strict(
    {
        vol.Optional("unread_only", default="false"): vol.All(str, vol.Lower, vol.In(("true", "false", "1", "0"))),
        vol.Optional("limit", default=50): query_int(1, 100),
    }
)


async def list_notifications(req: Req) -> web.StreamResponse:
    """GET /api/notifications: newest first; `unread_only=true` leaves the read ones out."""
    unread_only = req.query["unread_only"] in ("true", "1")
    docs = await notifications_view.of_user(req.unit.db, req.me.user_id, unread_only=unread_only, limit=req.query["limit"])
    keys = ("title", "body", "type", "is_read", "created_at")
    return json_response({"notifications": [{"id": d["_id"], **{k: d.get(k) for k in keys}} for d in docs]})


async def unread_count(req: Req) -> web.StreamResponse:
    """GET /api/notifications/unread-count."""
    return json_response({"count": await notifications_view.unread_count(req.unit.db, req.me.user_id)})


async def mark_all_read(req: Req) -> web.StreamResponse:
    """POST /api/notifications/mark-all-read."""
    await req.bus.handle(MarkAllNotificationsRead(req.me.user_id), req.ctx)
    return json_response({"success": True, "count": 0})


ROUTES = [
    Route(
        "GET",
        "/api/notifications",
        list_notifications,
        auth="user",
        query=LIST_QUERY,
        responses={200: answers.NOTIFICATIONS},
        summary="Notifications",
        tag="notify",
    ),
    Route(
        "GET",
        "/api/notifications/unread-count",
        unread_count,
        auth="user",
        responses={200: answers.COUNT},
        summary="Unread notifications",
        tag="notify",
    ),
    Route(
        "POST",
        "/api/notifications/mark-all-read",
        mark_all_read,
        auth="user",
        responses={200: answers.MARKED_ALL},
        summary="Mark every notification read",
        tag="notify",
    ),
]
