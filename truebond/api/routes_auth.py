"""Accounts and sessions: signup, password login, refresh, logout, sessions, me."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import voluptuous as vol
from aiohttp import web

from truebond.adapters.ratelimit import LOGIN, REFRESH, SIGNUP
from truebond.api import answers
from truebond.api.routing import Req, Route, json_response, limit_key
from truebond.api.shapes import MESSAGE
from truebond.api.validation import EMAIL, integer, strict, text
from truebond.commands.identity import (
    REFRESH_TTL,
    Logout,
    LogoutAll,
    PasswordLogin,
    Refresh,
    RevokeSession,
    SessionTokens,
    Signup,
    normalise_email,
)
from truebond.errors import CrossOrigin, Unauthorized
from truebond.projections import ledger as ledger_view
from truebond.projections import presence as presence_view
from truebond.projections import sessions as sessions_view
from truebond.projections import users as users_view

REFRESH_COOKIE = "__Host-tb_refresh"
GENDERS = ("male", "female", "other")
INTERESTS = ("male", "female", "other", "everyone", "men", "women", "both")
INTENTS = ("dating", "serious", "casual", "friendship")
REFRESH_COOKIE_PARAM = {
    "name": REFRESH_COOKIE,
    "in": "cookie",
    "required": False,
    "description": "The refresh token, when the body carries none (counts only from the frontend's origin)",
    "schema": {"type": "string"},
}
DEVICE_ID = vol.All(str, vol.Strip, vol.Length(min=1, max=128))


def _without_separators(value: str) -> str:
    """A mobile number as it is claimed and stored: spaces and dashes are only formatting, so
    `98765-43210` and `9876543210` are one number (unique per account) and not two."""
    return value.replace(" ", "").replace("-", "")


def min_le_max(data: dict[str, Any]) -> dict[str, Any]:
    """Schema step: refuse preferences whose min_age is above their max_age."""
    if data.get("min_age") is not None and data.get("max_age") is not None and data["min_age"] > data["max_age"]:
        raise vol.Invalid("min_age must not exceed max_age", path=["min_age"])
    return data


SIGNUP_SCHEMA = vol.Schema(
    vol.All(
        strict(
            {
                vol.Required("name"): text(2, 50),
                vol.Required("email"): EMAIL,
                vol.Required("mobile_number"): vol.All(
                    str, vol.Strip, vol.Match(r"^\+?[0-9 -]{10,15}$", msg="invalid mobile number"), _without_separators
                ),
                vol.Required("password"): vol.All(str, vol.Length(min=8, max=128)),
                vol.Required("age"): integer(18, 100),
                vol.Required("gender"): vol.In(GENDERS),
                vol.Required("interested_in"): vol.In(INTERESTS),
                vol.Required("intent"): vol.In(INTENTS),
                vol.Required("min_age"): integer(18, 100),
                vol.Required("max_age"): integer(18, 100),
                vol.Required("max_distance_km"): integer(1, 500),
                vol.Optional("address_line"): vol.Any(None, text(0, 200)),
                vol.Optional("city"): vol.Any(None, text(0, 100)),
                vol.Optional("state"): vol.Any(None, text(0, 100)),
                vol.Optional("country"): vol.Any(None, text(0, 100)),
                vol.Optional("pincode"): vol.Any(None, text(0, 12)),
                vol.Optional("device_id"): vol.Any(None, DEVICE_ID),
                vol.Optional("referral_code"): vol.Any(None, text(0, 32)),
            }
        ),
        min_le_max,
    )
)

LOGIN_SCHEMA = strict(
    {
        vol.Required("email"): EMAIL,
        vol.Required("password"): vol.All(str, vol.Length(min=1, max=128)),
        vol.Optional("device_id"): vol.Any(None, DEVICE_ID),
    }
)

REFRESH_SCHEMA = strict({vol.Optional("refresh_token"): vol.All(str, vol.Length(min=10, max=200))})


def token_body(tokens: SessionTokens, user: dict[str, Any], coins: int, message: str) -> dict[str, Any]:
    """The token answer of signup and login."""
    return {
        "message": message,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": "bearer",
        "user": {
            "id": tokens.user_id,
            "name": user.get("name"),
            "email": user.get("email"),
            "role": tokens.role,
            "coins": coins,
            "credits_balance": coins,
            "is_verified": bool(user.get("is_verified", False)),
        },
    }


def with_refresh_cookie(response: web.Response, tokens: SessionTokens) -> web.Response:
    """Also hand the refresh token over as a __Host- cookie (Secure, HttpOnly, Strict)."""
    response.set_cookie(
        REFRESH_COOKIE,
        tokens.refresh_token,
        max_age=int(REFRESH_TTL.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="Strict",
    )
    return response


async def signup(req: Req) -> web.StreamResponse:
    """POST /api/auth/signup."""
    tokens = await req.bus.handle(Signup(**req.body), req.ctx)
    user = await _user(req, tokens.user_id)
    coins = await ledger_view.coins(req.unit.db, tokens.user_id)
    return with_refresh_cookie(json_response(token_body(tokens, user, coins, "Account created"), status=201), tokens)


async def login(req: Req) -> web.StreamResponse:
    """POST /api/auth/login: one generic failure for a wrong email or a wrong password."""
    email = normalise_email(req.body["email"])
    await req.unit.limiter.hit(LOGIN, limit_key(email, req.ctx.remote))
    done = await req.bus.handle(PasswordLogin(email, req.body["password"], req.body.get("device_id")), req.ctx)
    coins = await ledger_view.coins(req.unit.db, done.tokens.user_id)
    return with_refresh_cookie(json_response(token_body(done.tokens, done.user, coins, "Login successful")), done.tokens)


async def refresh(req: Req) -> web.StreamResponse:
    """POST /api/auth/refresh: rotate; reuse of an old token revokes the session."""
    token = req.body.get("refresh_token")
    if not token:
        token = req.request.cookies.get(REFRESH_COOKIE)
        if token:
            _refuse_cross_origin(req)
    if not token:
        # No credential at all: the caller is not authenticated (the body field itself is optional).
        raise Unauthorized("No refresh token")
    tokens = await req.bus.handle(Refresh(token), req.ctx)
    body: dict[str, Any] = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": "bearer",
        "user_id": tokens.user_id,
    }
    user = await users_view.by_id(req.unit.db, tokens.user_id)
    if user is not None:
        coins = await ledger_view.coins(req.unit.db, tokens.user_id)
        body["user"] = token_body(tokens, user, coins, "")["user"]
    return with_refresh_cookie(json_response(body), tokens)


def clear_refresh_cookie(response: web.Response) -> web.Response:
    """Expire the refresh cookie. A browser ignores any Set-Cookie for a __Host- name without
    Secure, so the expiry carries the attributes the cookie was set with."""
    response.del_cookie(REFRESH_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


def _refuse_cross_origin(req: Req) -> None:
    """A browser sends the refresh cookie by itself, also on a request another page forged (a
    form posting text/plain needs no CORS preflight): the cookie counts only from the frontend's
    origin. Browsers name the origin of every POST; a request without Origin is no browser's."""
    origin = req.request.headers.get("Origin")
    if origin is not None and origin != req.unit.settings.frontend_origin:
        raise CrossOrigin()


async def logout(req: Req) -> web.StreamResponse:
    """POST /api/auth/logout: this session stops at once."""
    await req.bus.handle(Logout(req.me.user_id, req.me.session_id), req.ctx)
    response = json_response({"message": "Logged out"})
    clear_refresh_cookie(response)
    return response


async def logout_all(req: Req) -> web.StreamResponse:
    """POST /api/auth/logout-all: every session of the user stops."""
    revoked = await req.bus.handle(LogoutAll(req.me.user_id), req.ctx)
    response = json_response({"message": "Logged out everywhere", "revoked": revoked})
    clear_refresh_cookie(response)
    return response


async def list_sessions(req: Req) -> web.StreamResponse:
    """GET /api/auth/sessions."""
    docs = await sessions_view.live_for_user(req.unit.db, req.me.user_id, req.unit.clock.now())
    seen = await req.unit.sessions.last_seen([str(d["_id"]) for d in docs])
    out = []
    for d in docs:
        last = seen.get(str(d["_id"]))
        out.append(
            {
                "id": d["_id"],
                "device_id": d.get("device_id"),
                "device": d.get("device", ""),
                "ip": d.get("ip", ""),
                "created_at": d.get("created_at"),
                "last_seen_at": datetime.fromtimestamp(last, UTC) if last else d.get("last_seen_at"),
                "current": d["_id"] == req.me.session_id,
            }
        )
    return json_response({"sessions": out})


async def delete_session(req: Req) -> web.StreamResponse:
    """DELETE /api/auth/sessions/{id}: 404 for a session that is not the caller's."""
    await req.bus.handle(RevokeSession(req.me.user_id, req.param("session_id")), req.ctx)
    return json_response({"message": "Session revoked"})


async def _user(req: Req, user_id: str) -> dict[str, Any]:
    user = await users_view.by_id(req.unit.db, user_id)
    if user is None:
        raise Unauthorized()
    return user


def me_body(user: dict[str, Any], coins: int) -> dict[str, Any]:
    """The caller's own profile as /api/auth/me shows it."""
    pictures = list(user.get("profile_pictures", []))
    return {
        "id": user["_id"],
        "name": user.get("name"),
        "email": user.get("email"),
        "age": user.get("age"),
        "gender": user.get("gender"),
        "bio": user.get("bio", ""),
        "profile_picture": pictures[0] if pictures else None,
        "profile_pictures": pictures,
        "preferences": user.get("preferences", {}),
        "intent": user.get("intent"),
        "location": user.get("location"),
        "is_online": bool(user.get("is_online", False)),
        "is_verified": bool(user.get("is_verified", False)),
        "coins": coins,
        "credits_balance": coins,
        "role": user.get("role", "user"),
    }


async def me(req: Req) -> web.StreamResponse:
    """GET /api/auth/me."""
    coins = await ledger_view.coins(req.unit.db, req.me.user_id)
    return json_response(me_body(await presence_view.with_online(req.unit, req.me.user_id, await req.account()), coins))


ROUTES = [
    Route(
        "POST",
        "/api/auth/signup",
        signup,
        body=SIGNUP_SCHEMA,
        limits=((SIGNUP, "ip"),),
        responses={201: answers.TOKENS},
        errors=(403, 409),
        summary="Create an account",
        tag="auth",
    ),
    Route(
        "POST",
        "/api/auth/login",
        login,
        body=LOGIN_SCHEMA,
        responses={200: answers.TOKENS},
        errors=(401,),
        summary="Password login",
        tag="auth",
    ),
    Route(
        "POST",
        "/api/auth/refresh",
        refresh,
        body=REFRESH_SCHEMA,
        limits=((REFRESH, "ip"),),
        responses={200: answers.REFRESHED},
        errors=(401, 403),
        params=(REFRESH_COOKIE_PARAM,),
        summary="Rotate tokens",
        tag="auth",
    ),
    Route("POST", "/api/auth/logout", logout, auth="user", responses={200: MESSAGE}, summary="End this session", tag="auth"),
    Route(
        "POST",
        "/api/auth/logout-all",
        logout_all,
        auth="user",
        responses={200: answers.LOGGED_OUT_ALL},
        summary="End every session",
        tag="auth",
    ),
    Route("GET", "/api/auth/sessions", list_sessions, auth="user", responses={200: answers.SESSIONS}, summary="Live sessions", tag="auth"),
    Route(
        "DELETE",
        "/api/auth/sessions/{session_id}",
        delete_session,
        auth="user",
        responses={200: MESSAGE},
        errors=(404,),
        summary="Revoke a session",
        tag="auth",
    ),
    Route("GET", "/api/auth/me", me, auth="user", responses={200: answers.ME}, summary="The caller's account", tag="auth"),
]
