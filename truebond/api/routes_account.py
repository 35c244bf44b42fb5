"""Password reset by emailed link, and account deletion."""

from __future__ import annotations

import voluptuous as vol
from aiohttp import web

from truebond.adapters.ratelimit import Policy
from truebond.api import answers
from truebond.api.routes_auth import clear_refresh_cookie
from truebond.api.routing import Req, Route, json_response
from truebond.api.shapes import SUCCESS
from truebond.api.validation import EMAIL, strict
from truebond.commands.account import DeleteAccount, ForgotPassword, ResetPassword, reset_token_valid

RESET_TOKEN_IP = Policy("reset_token", "30/hour")
TOKEN = vol.All(str, vol.Strip, vol.Length(min=16, max=128))


def _strong(value: str) -> str:
    if not (any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)):
        raise vol.Invalid("must contain an upper-case letter, a lower-case letter and a digit")
    return value


# What the document says of `_strong` (api/openapi.py reads a validator's `openapi` attribute).
_strong.openapi = {"allOf": [{"pattern": "[A-Z]"}, {"pattern": "[a-z]"}, {"pattern": "[0-9]"}]}  # type: ignore[attr-defined]

FORGOT_SCHEMA = strict({vol.Required("email"): EMAIL})
VALIDATE_QUERY = strict({vol.Required("token"): TOKEN})
RESET_SCHEMA = strict({vol.Required("token"): TOKEN, vol.Required("new_password"): vol.All(str, vol.Length(min=8, max=128), _strong)})

FORGOT_MESSAGE = "If an account exists for this email, a reset link is on its way"


async def forgot_password(req: Req) -> web.StreamResponse:
    """POST /api/auth/forgot-password: one answer for every email."""
    await req.bus.handle(ForgotPassword(req.body["email"]), req.ctx)
    return json_response({"success": True, "message": FORGOT_MESSAGE})


async def validate_reset_token(req: Req) -> web.StreamResponse:
    """GET /api/auth/validate-reset-token?token=...: `{valid}` without using the token."""
    return json_response({"valid": await reset_token_valid(req.unit, req.query["token"])})


async def reset_password(req: Req) -> web.StreamResponse:
    """POST /api/auth/reset-password: a new password, and every session of the account ends."""
    await req.bus.handle(ResetPassword(req.body["token"], req.body["new_password"]), req.ctx)
    return json_response({"success": True, "message": "Password changed; log in with the new password"})


async def delete_account(req: Req) -> web.StreamResponse:
    """DELETE /api/users/account: soft delete; sessions, sockets and personal data go."""
    await req.bus.handle(DeleteAccount(req.me.user_id), req.ctx)
    response = json_response({"success": True, "message": "Account deleted"})
    clear_refresh_cookie(response)
    return response


ROUTES = [
    Route(
        "POST",
        "/api/auth/forgot-password",
        forgot_password,
        body=FORGOT_SCHEMA,
        responses={200: SUCCESS},
        summary="Mail a password reset link",
        tag="auth",
    ),
    Route(
        "GET",
        "/api/auth/validate-reset-token",
        validate_reset_token,
        query=VALIDATE_QUERY,
        limits=((RESET_TOKEN_IP, "ip"),),
        responses={200: answers.VALID},
        summary="Check a reset link",
        tag="auth",
    ),
    Route(
        "POST",
        "/api/auth/reset-password",
        reset_password,
        body=RESET_SCHEMA,
        limits=((RESET_TOKEN_IP, "ip"),),
        responses={200: SUCCESS},
        errors=(400,),
        summary="Choose a new password with a reset link",
        tag="auth",
    ),
    Route(
        "DELETE",
        "/api/users/account",
        delete_account,
        auth="user",
        responses={200: SUCCESS},
        summary="Delete the caller's account",
        tag="users",
    ),
]
