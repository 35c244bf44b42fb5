"""Admin: the users list and detail, suspend/reactivate, shadow-ban, adjust-credits (API.md "Admin")."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from aiohttp import web

from truebond.api import answers_admin
from truebond.api.admin_confirm import confirmed
from truebond.api.routing import Req, Route, json_response
from truebond.api.validation import integer, query_int, strict, text
from truebond.commands.admin import AdjustCredits, ReactivateUser, ShadowBan, SuspendUser
from truebond.errors import NotFound, ValidationFailed
from truebond.projections import admin_queries

MAX_ADJUSTMENT = 100_000
TOKEN = vol.All(str, vol.Length(min=1, max=128))
REASON = text(0, 500)

USERS_QUERY = strict(
    {
        vol.Optional("page", default=1): query_int(1, 10_000),
        vol.Optional("limit", default=20): query_int(1, 100),
        vol.Optional("status"): vol.In(("", *admin_queries.USER_STATUSES)),
        vol.Optional("search"): vol.All(str, vol.Length(max=100)),
    }
)
ACTION_BODY = strict({vol.Optional("reason"): REASON, vol.Optional("confirm_token"): TOKEN})
ADJUST_QUERY = strict(
    {
        vol.Optional("amount"): query_int(-MAX_ADJUSTMENT, MAX_ADJUSTMENT),
        vol.Optional("reason"): REASON,
        vol.Optional("confirm_token"): TOKEN,
    }
)
ADJUST_BODY = strict(
    {
        vol.Optional("amount"): integer(-MAX_ADJUSTMENT, MAX_ADJUSTMENT),
        vol.Optional("reason"): REASON,
        vol.Optional("confirm_token"): TOKEN,
    }
)


async def list_users(req: Req) -> web.StreamResponse:
    """GET /api/admin/users: newest first; `search` is a literal prefix of the name or email."""
    q = req.query
    users, total = await admin_queries.users_page(
        req.unit.db, page=q["page"], limit=q["limit"], status=q.get("status"), search=q.get("search")
    )
    pages = (total + q["limit"] - 1) // q["limit"]
    return json_response({"users": users, "total": total, "page": q["page"], "limit": q["limit"], "pages": pages})


async def user_detail(req: Req) -> web.StreamResponse:
    """GET /api/admin/users/{user_id}: the account, its coins and recent ledger."""
    body = await admin_queries.user_detail(req.unit.db, req.param("user_id"))
    if body is None:
        raise NotFound("User not found")
    return json_response({"user": body, **body})


def _reason(req: Req) -> str:
    return str((req.body or {}).get("reason", ""))


async def suspend(req: Req) -> web.StreamResponse:
    """POST /api/admin/users/{user_id}/suspend (two-step): every session and socket ends."""
    user_id = req.param("user_id")
    await confirmed(req, "suspend", user_id)
    status = await req.bus.handle(SuspendUser(user_id, req.me.role, _reason(req)), req.ctx)
    return json_response({"success": True, "message": "User suspended", "user_id": user_id, "status": status})


async def reactivate(req: Req) -> web.StreamResponse:
    """POST /api/admin/users/{user_id}/reactivate."""
    user_id = req.param("user_id")
    status = await req.bus.handle(ReactivateUser(user_id, req.me.role, _reason(req)), req.ctx)
    return json_response({"success": True, "message": "User reactivated", "user_id": user_id, "status": status})


async def shadow_ban(req: Req) -> web.StreamResponse:
    """POST /api/admin/users/{user_id}/shadow-ban (two-step)."""
    user_id = req.param("user_id")
    await confirmed(req, "shadow_ban", user_id)
    banned = await req.bus.handle(ShadowBan(user_id, req.me.role, _reason(req)), req.ctx)
    return json_response({"success": True, "message": "User shadow-banned", "user_id": user_id, "shadow_banned": banned})


async def unshadow_ban(req: Req) -> web.StreamResponse:
    """POST /api/admin/users/{user_id}/unshadow-ban."""
    user_id = req.param("user_id")
    banned = await req.bus.handle(ShadowBan(user_id, req.me.role, _reason(req), lift=True), req.ctx)
    return json_response({"success": True, "message": "Shadow-ban lifted", "user_id": user_id, "shadow_banned": banned})


async def adjust_credits(req: Req) -> web.StreamResponse:
    """POST /api/admin/users/{user_id}/adjust-credits (super, two-step): `?amount=&reason=` or the body."""
    given: dict[str, Any] = {**(req.query or {}), **(req.body or {})}
    amount, reason = given.get("amount"), str(given.get("reason", "")).strip()
    problems = []
    if not isinstance(amount, int) or amount == 0:
        problems.append({"loc": ["query", "amount"], "msg": "a non-zero whole number of coins is required"})
    if not reason:
        problems.append({"loc": ["query", "reason"], "msg": "a reason is required"})
    if problems:
        raise ValidationFailed(problems)
    assert isinstance(amount, int)
    user_id = req.param("user_id")
    await confirmed(req, "adjust_credits", user_id)
    coins = await req.bus.handle(AdjustCredits(user_id, req.me.role, amount, reason), req.ctx)
    return json_response({"success": True, "user_id": user_id, "amount": amount, "coins": coins, "new_balance": coins})


def _action(path: str, handler: Any, summary: str, answer: dict[str, Any], confirm: bool) -> Route:
    return Route(
        "POST",
        f"/api/admin/users/{{user_id}}/{path}",
        handler,
        auth="admin",
        body=ACTION_BODY,
        responses={200: answer},
        errors=(404, 409),
        params=(answers_admin.CONFIRM_HEADER,) if confirm else (),
        summary=summary,
        tag="admin",
    )


ROUTES = [
    Route(
        "GET",
        "/api/admin/users",
        list_users,
        auth="admin",
        query=USERS_QUERY,
        responses={200: answers_admin.USERS},
        summary="Accounts, filtered",
        tag="admin",
    ),
    Route(
        "GET",
        "/api/admin/users/{user_id}",
        user_detail,
        auth="admin",
        responses={200: answers_admin.USER_DETAIL},
        errors=(404,),
        summary="One account with coins and ledger",
        tag="admin",
    ),
    _action("suspend", suspend, "Suspend an account (confirm_token)", answers_admin.STATUS_CHANGED, True),
    _action("reactivate", reactivate, "Reactivate a suspended account", answers_admin.STATUS_CHANGED, False),
    _action("shadow-ban", shadow_ban, "Shadow-ban an account (confirm_token)", answers_admin.SHADOW_CHANGED, True),
    _action("unshadow-ban", unshadow_ban, "Lift a shadow-ban", answers_admin.SHADOW_CHANGED, False),
    Route(
        "POST",
        "/api/admin/users/{user_id}/adjust-credits",
        adjust_credits,
        auth="super",
        query=ADJUST_QUERY,
        body=ADJUST_BODY,
        responses={200: answers_admin.ADJUSTED},
        errors=(404, 409),
        params=(answers_admin.CONFIRM_HEADER,),
        summary="Add or withdraw coins: a non-zero amount and a reason, in the query or the body (super admin, confirm_token)",
        tag="admin",
    ),
]
