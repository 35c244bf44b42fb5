"""One-time codes by email: login with a code, and email verification."""

from __future__ import annotations

import voluptuous as vol
from aiohttp import web

from truebond.api import answers
from truebond.api.routes_auth import DEVICE_ID, token_body, with_refresh_cookie
from truebond.api.routing import Req, Route, json_response
from truebond.api.validation import EMAIL, strict
from truebond.commands.otp import EXPIRES_IN_MINUTES, LoginWithOtp, SendEmailOtp, SendLoginOtp, VerifyEmailOtp
from truebond.projections import ledger as ledger_view

OTP_CODE = vol.All(str, vol.Strip, vol.Match(r"^[0-9]{6}$", msg="must be 6 digits"))
SEND_SCHEMA = strict({vol.Required("email"): EMAIL})
LOGIN_SCHEMA = strict(
    {vol.Required("email"): EMAIL, vol.Required("otp_code"): OTP_CODE, vol.Optional("device_id"): vol.Any(None, DEVICE_ID)}
)
VERIFY_SCHEMA = strict({vol.Required("email"): EMAIL, vol.Required("otp"): OTP_CODE})

SENT_MESSAGE = "If an account exists for this email, a login code is on its way"


def _sent(message: str) -> web.Response:
    return json_response({"success": True, "message": message, "expires_in_minutes": EXPIRES_IN_MINUTES})


async def send_for_login(req: Req) -> web.StreamResponse:
    """POST /api/auth/otp/send-for-login: the same answer whether or not the account exists."""
    await req.bus.handle(SendLoginOtp(req.body["email"]), req.ctx)
    return _sent(SENT_MESSAGE)


async def login_with_otp(req: Req) -> web.StreamResponse:
    """POST /api/auth/login-with-otp: 401 for a wrong or expired code, 429 while locked."""
    done = await req.bus.handle(LoginWithOtp(req.body["email"], req.body["otp_code"], req.body.get("device_id")), req.ctx)
    coins = await ledger_view.coins(req.unit.db, done.tokens.user_id)
    body = token_body(done.tokens, done.user, coins, "Login successful")
    body["user_id"] = done.tokens.user_id
    body["is_verified"] = bool(done.user.get("is_verified", False))
    return with_refresh_cookie(json_response(body), done.tokens)


async def send_email_otp(req: Req) -> web.StreamResponse:
    """POST /api/auth/email/send-otp: a verification code to the caller's own email."""
    await req.bus.handle(SendEmailOtp(req.me.user_id, req.body["email"]), req.ctx)
    return _sent("A verification code was sent to your email")


async def verify_email_otp(req: Req) -> web.StreamResponse:
    """POST /api/auth/email/verify-otp: a right code marks the account verified."""
    # A wrong code is a 400 (WrongVerificationCode), not a 401: the caller's login is fine.
    await req.bus.handle(VerifyEmailOtp(req.me.user_id, req.body["email"], req.body["otp"]), req.ctx)
    return json_response({"success": True, "is_verified": True})


ROUTES = [
    Route(
        "POST",
        "/api/auth/otp/send-for-login",
        send_for_login,
        body=SEND_SCHEMA,
        responses={200: answers.OTP_SENT},
        summary="Mail a login code",
        tag="auth",
    ),
    Route(
        "POST",
        "/api/auth/login-with-otp",
        login_with_otp,
        body=LOGIN_SCHEMA,
        responses={200: answers.OTP_LOGIN},
        errors=(401,),
        summary="Log in with a mailed code",
        tag="auth",
    ),
    Route(
        "POST",
        "/api/auth/email/send-otp",
        send_email_otp,
        auth="user",
        body=SEND_SCHEMA,
        responses={200: answers.OTP_SENT},
        errors=(403, 409),
        summary="Mail an email verification code",
        tag="auth",
    ),
    Route(
        "POST",
        "/api/auth/email/verify-otp",
        verify_email_otp,
        auth="user",
        body=VERIFY_SCHEMA,
        responses={200: answers.VERIFIED},
        errors=(400, 403, 409),
        summary="Verify the email with a code",
        tag="auth",
    ),
]
