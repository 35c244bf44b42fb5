"""Admin identity: login for admin roles only, and /api/admin/me."""

from __future__ import annotations

import voluptuous as vol
from aiohttp import web

from truebond.adapters.ratelimit import ADMIN_LOGIN
from truebond.api import answers_admin
from truebond.api.routing import Req, Route, json_response, limit_key
from truebond.api.validation import EMAIL, strict
from truebond.commands.identity import PasswordLogin, normalise_email

ADMIN_LOGIN_SCHEMA = strict({vol.Required("email"): EMAIL, vol.Required("password"): vol.All(str, vol.Length(min=1, max=128))})


async def admin_login(req: Req) -> web.StreamResponse:
    """POST /api/admin/login: the same generic failure for non-admins as for wrong passwords."""
    email = normalise_email(req.body["email"])
    await req.unit.limiter.hit(ADMIN_LOGIN, limit_key(email, req.ctx.remote))
    done = await req.bus.handle(PasswordLogin(email, req.body["password"], admin=True), req.ctx)
    return json_response({"access_token": done.tokens.access_token, "admin_name": done.user.get("name"), "admin_role": done.tokens.role})


async def admin_me(req: Req) -> web.StreamResponse:
    """GET /api/admin/me."""
    user = await req.account()
    return json_response({"id": req.me.user_id, "name": user.get("name"), "email": user.get("email"), "role": req.me.role})


ROUTES = [
    Route(
        "POST",
        "/api/admin/login",
        admin_login,
        body=ADMIN_LOGIN_SCHEMA,
        responses={200: answers_admin.ADMIN_TOKEN},
        errors=(401,),
        summary="Admin login",
        tag="admin",
    ),
    Route(
        "GET", "/api/admin/me", admin_me, auth="admin", responses={200: answers_admin.ADMIN_ME}, summary="The calling admin", tag="admin"
    ),
]
