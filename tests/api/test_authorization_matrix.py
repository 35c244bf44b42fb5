"""The authorization matrix: every HTTP route x every kind of caller, with the status each gets.

One row per route of the live route table (a route without a row fails). A row names the level
the route needs, what an allowed caller gets for a well-formed request, and, where the route acts
on something of the caller's own (a session, a conversation, a photo, a payment), what any other
live caller gets when it names the owner's thing instead. The dead callers (a suspended account,
a deleted account, a logged-out session) and anonymous get 401 on every guarded route; a plain
user gets 403 on admin routes, a plain admin 403 on super-admin ones. Every refusal changes
nothing in the event store.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from tests.fakes.stripe_api import event, signed, stripe_id
from tests.support import authz_world
from tests.support.accounts import signup_body
from tests.support.authz_world import DEAD, IDENTITIES, MODULE_LOOP, PASSWORD, Who, World
from tests.support.otp_support import unknown_email
from tests.support.photos import form, png_bytes
from tests.support.secrets import WEBHOOK_SECRET
from truebond.api.app import all_routes

world = authz_world.world

Make = Callable[[World, Who], Any]  # returns (or awaits to) a dict


@attrs.frozen
class Row:
    """One route: the level it needs, what an allowed caller gets, what a non-owner gets."""

    level: str
    ok: int
    other: int | None = None
    params: Make | None = None
    send: Make | None = None
    fresh: bool = False
    code: str | None = None
    owner_only_field: str | None = None


def mine(world: World, who: Who) -> bool:
    """Whether the caller is the owner of the world's resources."""
    return who.name == "user"


def owner_id(world: World, who: Who) -> dict[str, str]:
    return {"user_id": world.owner.user_id}


def js(body: Any) -> Make:
    """A fixed JSON body."""
    return lambda world, who: {"json": body}


def q(**query: Any) -> Make:
    """A fixed query string."""
    return lambda world, who: {"params": query}


async def _spare_session(world: World, who: Who) -> dict[str, str]:
    """A new live session of the owner, for each caller (the owner ends it; nobody else can)."""
    return {"session_id": world.session_of((await world.login(world.owner))["access_token"])}


async def _refresh(world: World, who: Who) -> dict[str, Any]:
    return {"json": {"refresh_token": (await world.login(world.owner))["refresh_token"]}}


async def _approve_target(world: World, who: Who) -> dict[str, str]:
    return {"report_id": await world.report()}


def _webhook(world: World, who: Who) -> dict[str, Any]:
    body, headers = signed(event("customer.created", {"id": stripe_id("cus"), "object": "customer"}), WEBHOOK_SECRET)
    return {"data": body, "headers": headers}


def _profile(world: World, who: Who) -> dict[str, Any]:
    # A non-owner puts the owner's photo on its own profile: refused like any foreign URL.
    return {"json": {"bio": "hello"} if mine(world, who) else {"profile_pictures": [world.photo_url]}}


def _send(world: World, who: Who) -> dict[str, Any]:
    # Everybody writes to the partner inside the owner's conversation with them.
    return {"json": {"receiver_id": world.partner.user_id, "content": "hey", "conversation_id": world.conversation_id}}


def _upload(world: World, who: Who) -> dict[str, Any]:
    data = form(png_bytes(), "p.png", "image/png", field="image")
    data.add_field("receiver_id", world.partner.user_id)
    data.add_field("conversation_id", world.conversation_id)
    return {"data": data}


def _photo(world: World, who: Who) -> dict[str, Any]:
    return {"data": form(png_bytes(), "p.png", "image/png")}


def _email_otp(world: World, who: Who) -> dict[str, Any]:
    # The owner asks for a code to its own address; anyone else asks for one to the owner's.
    return {"json": {"email": world.owner.email}}


def _verify_otp(world: World, who: Who) -> dict[str, Any]:
    return {"json": {"email": world.owner.email, "otp": "000000"}}


def _media(world: World, who: Who) -> dict[str, str]:
    return {"name": world.photo_url.rsplit("/", 1)[-1]}


U, A, S, P = "user", "admin", "super", "public"
ADMIN_BODY = js({"reason": "matrix"})

MATRIX: dict[tuple[str, str], Row] = {
    # -- public: a bearer token, dead or alive, changes nothing
    ("GET", "/api/health"): Row(P, 200),
    ("GET", "/api/health/ready"): Row(P, 200),
    ("GET", "/api/openapi.json"): Row(P, 200),
    ("POST", "/api/auth/signup"): Row(P, 201, send=lambda w, who: {"json": signup_body()}),
    ("POST", "/api/auth/login"): Row(P, 200, send=lambda w, who: {"json": {"email": w.owner.email, "password": PASSWORD}}),
    ("POST", "/api/auth/refresh"): Row(P, 200, send=_refresh),
    ("POST", "/api/admin/login"): Row(P, 200, send=lambda w, who: {"json": {"email": w.who["admin"].email, "password": PASSWORD}}),
    ("GET", "/media/photos/{name}"): Row(P, 200, params=_media),
    # Mail routes: an address of its own per caller (each address has its own limits and lockout).
    ("POST", "/api/auth/otp/send-for-login"): Row(P, 200, send=lambda w, who: {"json": {"email": unknown_email()}}),
    ("POST", "/api/auth/login-with-otp"): Row(P, 401, send=lambda w, who: {"json": {"email": unknown_email(), "otp_code": "000000"}}),
    ("POST", "/api/auth/forgot-password"): Row(P, 200, send=lambda w, who: {"json": {"email": unknown_email()}}),
    ("GET", "/api/auth/validate-reset-token"): Row(P, 200, send=q(token="x" * 32)),
    ("POST", "/api/auth/reset-password"): Row(P, 400, send=js({"token": "x" * 32, "new_password": "Correct-horse-2"})),
    ("GET", "/api/payments/packages"): Row(P, 200),
    ("POST", "/api/webhooks/stripe"): Row("webhook", 200, send=_webhook),
    ("POST", "/api/webhooks/stripe/credits"): Row("webhook", 200, send=_webhook),
    # -- the caller's own account and sessions
    ("POST", "/api/auth/logout"): Row(U, 200, fresh=True),
    ("POST", "/api/auth/logout-all"): Row(U, 200, fresh=True),
    ("DELETE", "/api/users/account"): Row(U, 200, fresh=True),
    ("GET", "/api/auth/sessions"): Row(U, 200),
    ("DELETE", "/api/auth/sessions/{session_id}"): Row(U, 200, other=404, params=_spare_session),
    ("GET", "/api/auth/me"): Row(U, 200),
    ("POST", "/api/auth/email/send-otp"): Row(U, 200, other=403, send=_email_otp),
    ("POST", "/api/auth/email/verify-otp"): Row(U, 400, other=403, send=_verify_otp),
    # -- profile, settings, safety
    ("GET", "/api/users/profile/{user_id}"): Row(U, 200, params=owner_id),
    ("PUT", "/api/users/profile"): Row(U, 200, other=422, send=_profile),
    ("PUT", "/api/users/preferences"): Row(U, 200, send=js({"min_age": 20, "max_age": 40})),
    ("POST", "/api/users/upload-photo"): Row(U, 200, send=_photo),
    ("GET", "/api/settings"): Row(U, 200),
    ("POST", "/api/settings"): Row(U, 200, send=js({"dark_mode": True})),
    ("POST", "/api/users/fcm-token"): Row(U, 200, send=js({"token": "fcm-token-0123456789"})),
    ("DELETE", "/api/users/fcm-token"): Row(U, 200, send=js({"token": "fcm-token-0123456789"})),
    ("POST", "/api/users/block/{user_id}"): Row(U, 200, params=lambda w, who: {"user_id": w.target.user_id}, send=js({})),
    ("DELETE", "/api/users/block/{user_id}"): Row(U, 200, params=lambda w, who: {"user_id": w.target.user_id}),
    ("GET", "/api/users/blocked"): Row(U, 200),
    ("POST", "/api/users/report/{user_id}"): Row(
        U, 201, params=lambda w, who: {"user_id": w.target.user_id}, send=js({"reason": "fake profile photos", "report_type": "photo"})
    ),
    # -- payments
    ("POST", "/api/payments/order"): Row(U, 200, send=js({"package_id": "starter"})),
    ("POST", "/api/payments/verify"): Row(U, 200, other=404, send=lambda w, who: {"json": {"payment_intent_id": w.intent_id}}),
    ("GET", "/api/credits/history"): Row(U, 200),
    # -- chat: the owner's conversation with the partner
    ("GET", "/api/messages/conversations"): Row(U, 200),
    ("POST", "/api/messages/start-conversation"): Row(U, 200, send=lambda w, who: {"json": {"receiver_id": w.partner.user_id}}),
    ("POST", "/api/users/create-or-get-conversation"): Row(U, 200, send=lambda w, who: {"json": {"user_id": w.partner.user_id}}),
    ("POST", "/api/messages/send"): Row(U, 200, other=403, send=_send),
    ("POST", "/api/messages/upload"): Row(U, 200, other=403, send=_upload),
    ("POST", "/api/messages/read/{other_user_id}"): Row(U, 200, params=lambda w, who: {"other_user_id": w.partner.user_id}),
    ("GET", "/api/messages/{other_user_id}"): Row(
        U, 200, params=lambda w, who: {"other_user_id": w.partner.user_id}, owner_only_field="messages"
    ),
    # -- discovery, location, notifications, calls
    ("GET", "/api/users/nearby"): Row(U, 200),
    ("GET", "/api/users/suggestions"): Row(U, 200),
    ("GET", "/api/users/search"): Row(U, 200, send=q(q="asha")),
    ("GET", "/api/users/feed"): Row(U, 200),
    ("GET", "/api/users/dashboard-stats"): Row(U, 200),
    ("GET", "/api/users/streak"): Row(U, 200),
    ("POST", "/api/location/update"): Row(U, 200, send=js({"latitude": 12.97, "longitude": 77.59})),
    ("GET", "/api/location/nearby-with-location"): Row(U, 200, send=q(lat="12.97", lng="77.59")),
    ("GET", "/api/notifications"): Row(U, 200),
    ("GET", "/api/notifications/unread-count"): Row(U, 200),
    ("POST", "/api/notifications/mark-all-read"): Row(U, 200),
    ("GET", "/api/calls/history"): Row(U, 200),
    # -- admin; two-step actions answer 409 confirmation_required (nothing changes)
    ("GET", "/api/admin/me"): Row(A, 200),
    ("GET", "/api/admin/users"): Row(A, 200),
    ("GET", "/api/admin/users/{user_id}"): Row(A, 200, params=owner_id),
    ("POST", "/api/admin/users/{user_id}/suspend"): Row(A, 409, params=owner_id, send=ADMIN_BODY, code="confirmation_required"),
    ("POST", "/api/admin/users/{user_id}/reactivate"): Row(A, 200, params=owner_id, send=ADMIN_BODY),
    ("POST", "/api/admin/users/{user_id}/shadow-ban"): Row(A, 409, params=owner_id, send=ADMIN_BODY, code="confirmation_required"),
    ("POST", "/api/admin/users/{user_id}/unshadow-ban"): Row(A, 200, params=owner_id, send=ADMIN_BODY),
    ("POST", "/api/admin/users/{user_id}/adjust-credits"): Row(
        S, 409, params=owner_id, send=js({"amount": 5, "reason": "matrix"}), code="confirmation_required"
    ),
    ("GET", "/api/admin/moderation/reports"): Row(A, 200),
    ("GET", "/api/admin/moderation/stats"): Row(A, 200),
    ("POST", "/api/admin/moderation/reports/{report_id}/approve"): Row(A, 200, params=_approve_target, send=ADMIN_BODY),
    ("POST", "/api/admin/moderation/reports/{report_id}/remove"): Row(
        A, 409, params=lambda w, who: {"report_id": w.report_id}, send=ADMIN_BODY, code="confirmation_required"
    ),
    ("POST", "/api/admin/moderation/reports/{report_id}/ban"): Row(
        S, 409, params=lambda w, who: {"report_id": w.report_id}, send=ADMIN_BODY, code="confirmation_required"
    ),
    ("GET", "/api/admin/audit-logs"): Row(A, 200),
    ("GET", "/api/admin/analytics/overview"): Row(A, 200),
    ("GET", "/api/admin/analytics/user-growth"): Row(A, 200),
    ("GET", "/api/admin/analytics/demographics"): Row(A, 200),
    ("GET", "/api/admin/analytics/revenue"): Row(A, 200),
    ("GET", "/api/admin/analytics/activity"): Row(A, 200),
    ("GET", "/api/admin/analytics/highlights"): Row(A, 200),
    ("GET", "/api/admin/settings"): Row(S, 200),
    ("PUT", "/api/admin/settings"): Row(S, 409, send=js({"registrations_open": True, "reason": "matrix"}), code="confirmation_required"),
}


def gate(row: Row, name: str) -> int | None:
    """The refusal of the route's auth level for `name` (401 or 403), or None when it lets them by."""
    if row.level in (P, "webhook"):
        return None
    if name == "anonymous" or name in DEAD:
        return 401
    if row.level != U and (name in ("user", "other") or (row.level == S and name == "admin")):
        return 403
    return None


def expected(row: Row, name: str) -> int:
    """The status `name` gets on the row's route."""
    refused = gate(row, name)
    if refused is not None:
        return refused
    return row.ok if name == "user" or row.other is None or row.level != U else row.other


async def made(make: Make | None, world: World, who: Who) -> dict[str, Any]:
    """What a row's factory gives for one caller (sync or async)."""
    if make is None:
        return {}
    value = make(world, who)
    return dict(await value) if inspect.isawaitable(value) else dict(value)


def test_every_route_has_a_row() -> None:
    table = {(r.method, r.path): r.auth for r in all_routes()}
    assert sorted(set(table) - set(MATRIX)) == [], "routes without a row in MATRIX"
    assert sorted(set(MATRIX) - set(table)) == [], "rows for routes that do not exist"
    for key, level in table.items():
        assert MATRIX[key].level == level, key


@MODULE_LOOP
async def test_every_served_route_is_in_the_table(world: World) -> None:
    # What the running app serves, not only what the table lists: no handler beside the table.
    served = {
        (r.method, r.resource.canonical)
        for r in world.client.server.app.router.routes()
        if r.resource is not None and r.method != "OPTIONS" and not r.resource.canonical.startswith("/socket.io")
    }
    assert served and served <= set(MATRIX), sorted(served - set(MATRIX))


@MODULE_LOOP
@pytest.mark.parametrize("key", list(MATRIX), ids=lambda k: f"{k[0]} {k[1]}")
async def test_route_by_caller(world: World, key: tuple[str, str]) -> None:
    method, path = key
    row = MATRIX[key]
    world.clear_limits()
    got: dict[str, int] = {}
    want = {name: expected(row, name) for name in IDENTITIES}
    for name in IDENTITIES:
        who = await world.fresh(name) if row.fresh and name not in ("anonymous", *DEAD) else world.who[name]
        url = path.format(**await made(row.params, world, who))
        kwargs = await made(row.send, world, who)
        kwargs["headers"] = {**kwargs.get("headers", {}), **who.headers}
        before = await world.events()
        resp = await world.client.request(method, url, **kwargs)
        got[name] = resp.status
        body = await resp.json() if resp.content_type == "application/json" else None
        if resp.status != want[name]:
            continue
        if gate(row, name) is not None:
            assert body is not None and body["code"] == ("unauthorized" if want[name] == 401 else "forbidden"), (name, body)
        if want[name] != row.ok or (row.other is not None and name != "user"):
            assert await world.events() == before, f"{name}'s refused {method} {path} changed the store"
        if row.code is not None and want[name] == row.ok:
            assert body is not None and body["code"] == row.code, (name, body)
        if row.owner_only_field and row.level == U and name in ("other", "admin", "super_admin"):
            assert body is not None and body[row.owner_only_field] == [], (name, body)
        if row.owner_only_field and name == "user":
            assert body is not None and body[row.owner_only_field], "the owner sees its own"
    assert got == want, key
