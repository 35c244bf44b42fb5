"""Block, unblock, list blocked, report (API.md "Profile, settings, discovery")."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from aiohttp import web

from truebond.adapters.ratelimit import Policy
from truebond.api import answers
from truebond.api.routing import Req, Route, json_response
from truebond.api.shapes import SUCCESS
from truebond.api.validation import strict, text
from truebond.commands.safety import BlockUser, ReportUser, UnblockUser
from truebond.projections import safety as safety_view
from truebond.projections import users as users_view
from truebond.projections.safety import REPORT_TYPES

REPORTS = Policy("report", "30/hour")
BLOCKS = Policy("block", "120/hour")

BLOCK_SCHEMA = strict({vol.Optional("reason"): text(0, 500)})
REPORT_SCHEMA = strict({vol.Required("reason"): text(10, 500), vol.Required("report_type"): vol.In(REPORT_TYPES)})


async def block(req: Req) -> web.StreamResponse:
    """POST /api/users/block/{user_id}: block (again: no change)."""
    await req.bus.handle(BlockUser(req.me.user_id, req.param("user_id"), (req.body or {}).get("reason", "")), req.ctx)
    return json_response({"success": True, "message": "User blocked"})


async def unblock(req: Req) -> web.StreamResponse:
    """DELETE /api/users/block/{user_id}: lift a block (none: no change)."""
    await req.bus.handle(UnblockUser(req.me.user_id, req.param("user_id")), req.ctx)
    return json_response({"success": True, "message": "User unblocked"})


async def blocked(req: Req) -> web.StreamResponse:
    """GET /api/users/blocked: the accounts the caller blocked, newest first."""
    out: list[dict[str, Any]] = []
    for entry in reversed(await safety_view.blocked_by_me(req.unit.db, req.me.user_id)):
        other = await users_view.by_id(req.unit.db, str(entry["user_id"])) or {}
        pictures = list(other.get("profile_pictures", []))
        out.append(
            {
                "id": entry["user_id"],
                "name": other.get("name"),
                "profile_picture": pictures[0] if pictures else None,
                "blocked_at": entry.get("at"),
            }
        )
    return json_response({"blocked_users": out, "count": len(out)})


async def report(req: Req) -> web.StreamResponse:
    """POST /api/users/report/{user_id}: a report in the moderation queue (201)."""
    body = req.body
    report_id = await req.bus.handle(ReportUser(req.me.user_id, req.param("user_id"), body["report_type"], body["reason"]), req.ctx)
    return json_response({"success": True, "report_id": report_id, "message": "Report submitted"}, status=201)


ROUTES = [
    Route(
        "POST",
        "/api/users/block/{user_id}",
        block,
        auth="user",
        body=BLOCK_SCHEMA,
        limits=((BLOCKS, "user"),),
        responses={200: SUCCESS},
        errors=(404,),
        summary="Block a user",
        tag="safety",
    ),
    Route(
        "DELETE",
        "/api/users/block/{user_id}",
        unblock,
        auth="user",
        responses={200: SUCCESS},
        errors=(404,),
        summary="Unblock a user",
        tag="safety",
    ),
    Route(
        "GET",
        "/api/users/blocked",
        blocked,
        auth="user",
        responses={200: answers.BLOCKED},
        summary="Users the caller blocked",
        tag="safety",
    ),
    Route(
        "POST",
        "/api/users/report/{user_id}",
        report,
        auth="user",
        body=REPORT_SCHEMA,
        limits=((REPORTS, "user"),),
        responses={201: answers.REPORTED},
        errors=(404,),
        summary="Report a user",
        tag="safety",
    ),
]
