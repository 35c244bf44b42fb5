"""Roles: admin login, admin-only routes, demotion taking effect at once, every guarded route."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web

from tests.support.accounts import auth, signup
from truebond import bootstrap
from truebond.api.app import all_routes, create_app
from truebond.api.routing import Req, Route, json_response
from truebond.api.shapes import BOOL, STR, obj
from truebond.commands.bus import Context
from truebond.commands.identity import RoleChange, SetRole

PASSWORD = "correct-horse-1"


def concrete(path: str) -> str:
    """A route path with its {params} replaced by plausible dummy ids."""
    return re.sub(r"{(\w+)}", "0123456789abcdef0123456789abcdef", path)


async def call(client: Any, route: Route, headers: dict[str, str] | None = None) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if route.method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return await client.request(route.method, concrete(route.path), **kwargs)


async def set_role(runtime: bootstrap.Runtime, email: str, role: str, reason: str) -> RoleChange:
    """What `truebond roles` does: SetRole through the bus, as the CLI."""
    return await runtime.bus.handle(SetRole(email, role, reason), Context.system("cli"))


async def make_admin(client: Any, runtime: bootstrap.Runtime, role: str = "admin") -> dict[str, Any]:
    """A signed-up account promoted with the CLI's command, logged in through /api/admin/login."""
    account = await signup(client)
    email = account["user"]["email"]
    change = await set_role(runtime, email, role, "test setup")
    user_id = change.user_id
    assert user_id == account["user"]["id"] and change.previous == "user"
    resp = await client.post("/api/admin/login", json={"email": email, "password": PASSWORD})
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return {**body, "email": email, "user_id": user_id, "user_token": account["access_token"]}


# --------------------------------------------------------------------------- admin login


async def test_admin_login_answers_exactly_token_name_and_role(client: Any, runtime: bootstrap.Runtime) -> None:
    account = await signup(client)
    await set_role(runtime, account["user"]["email"], "admin", "test setup")
    resp = await client.post("/api/admin/login", json={"email": account["user"]["email"], "password": PASSWORD})
    body = await resp.json()
    assert resp.status == 200, body
    assert set(body) == {"access_token", "admin_name", "admin_role"}
    assert (body["admin_name"], body["admin_role"]) == ("Asha Rao", "admin")


async def test_admin_login_and_me(client: Any, runtime: bootstrap.Runtime) -> None:
    admin = await make_admin(client, runtime)
    assert set(admin) >= {"access_token", "admin_name", "admin_role"}
    assert admin["admin_role"] == "admin"
    assert admin["admin_name"] == "Asha Rao"

    resp = await client.get("/api/admin/me", headers=auth(admin["access_token"]))
    body = await resp.json()
    assert resp.status == 200, body
    assert body == {"id": admin["user_id"], "name": "Asha Rao", "email": admin["email"], "role": "admin"}


async def test_role_change_is_an_audited_event(client: Any, runtime: bootstrap.Runtime) -> None:
    admin = await make_admin(client, runtime)
    events = await runtime.unit.db["events"].find({"stream": f"user-{admin['user_id']}", "type": "RoleGranted"}).to_list(10)
    assert len(events) == 1
    assert events[0]["meta"]["actor"] == "system:cli"
    assert events[0]["data"]["role"] == "admin"
    assert events[0]["data"]["previous_role"] == "user"
    assert events[0]["data"]["reason"] == "test setup"


async def test_admin_login_refuses_a_normal_user_like_a_wrong_password(client: Any, runtime: bootstrap.Runtime) -> None:
    user = await signup(client)
    admin = await make_admin(client, runtime)

    as_user = await client.post("/api/admin/login", json={"email": user["user"]["email"], "password": PASSWORD})
    wrong_pw = await client.post("/api/admin/login", json={"email": admin["email"], "password": "not-the-password"})
    unknown = await client.post("/api/admin/login", json={"email": "ghost@example.com", "password": PASSWORD})
    bodies = [await r.json() for r in (as_user, wrong_pw, unknown)]
    assert [r.status for r in (as_user, wrong_pw, unknown)] == [401, 401, 401]
    assert len({(b["detail"], b["code"]) for b in bodies}) == 1
    assert all("access_token" not in b for b in bodies)
    # The refused normal user got no session out of it.
    sessions = await (await client.get("/api/auth/sessions", headers=auth(user["access_token"]))).json()
    assert len(sessions["sessions"]) == 1


async def test_the_users_own_token_does_not_open_admin_routes_after_promotion(client: Any, runtime: bootstrap.Runtime) -> None:
    admin = await make_admin(client, runtime)
    # The token from signup was issued for role "user": it must not act as an admin token.
    resp = await client.get("/api/admin/me", headers=auth(admin["user_token"]))
    assert resp.status == 403
    assert (await resp.json())["code"] == "forbidden"


async def test_demotion_takes_effect_at_once(client: Any, runtime: bootstrap.Runtime) -> None:
    admin = await make_admin(client, runtime)
    assert (await client.get("/api/admin/me", headers=auth(admin["access_token"]))).status == 200

    previous = (await set_role(runtime, admin["email"], "user", "left the team")).previous
    assert previous == "admin"

    resp = await client.get("/api/admin/me", headers=auth(admin["access_token"]))
    body = await resp.json()
    assert resp.status == 403, body
    assert body["code"] == "forbidden"
    again = await client.post("/api/admin/login", json={"email": admin["email"], "password": PASSWORD})
    assert again.status == 401


async def test_set_role_refuses_unknown_roles(client: Any, runtime: bootstrap.Runtime) -> None:
    account = await signup(client)
    with pytest.raises(ValueError):
        await set_role(runtime, account["user"]["email"], "root", "nope")
    me = await (await client.get("/api/auth/me", headers=auth(account["access_token"]))).json()
    assert me["role"] == "user"


# --------------------------------------------------------------------------- every guarded route


ADMIN_ROUTES = [r for r in all_routes() if r.auth in ("admin", "super")]
USER_ROUTES = [r for r in all_routes() if r.auth == "user"]


def test_the_route_table_has_guarded_routes() -> None:
    assert ADMIN_ROUTES, "no admin routes found"
    assert USER_ROUTES, "no user routes found"
    # Every /api/admin route except the login itself is guarded.
    unguarded = [f"{r.method} {r.path}" for r in all_routes() if r.path.startswith("/api/admin/") and r.auth not in ("admin", "super")]
    assert unguarded == ["POST /api/admin/login"]


async def test_every_served_admin_path_comes_from_the_guarded_route_table(client: Any) -> None:
    # What the running app serves, not what the table says: no /api/admin handler slips in beside it.
    table = {(r.method, r.path): r.auth for r in all_routes()}
    served = [
        (route.method, route.resource.canonical)
        for route in client.server.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/admin") and route.method != "OPTIONS"
    ]
    assert served
    for method, path in served:
        assert (method, path) in table, f"{method} {path} is served but not in the route table"
        assert table[(method, path)] in ("admin", "super") or (method, path) == ("POST", "/api/admin/login"), (method, path)


@pytest.mark.parametrize("route", ADMIN_ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_every_admin_route_needs_a_token_and_an_admin_role(client: Any, route: Route) -> None:
    anonymous = await call(client, route)
    assert anonymous.status == 401, (route.path, await anonymous.text())
    assert (await anonymous.json())["code"] == "unauthorized"

    user = await signup(client)
    as_user = await call(client, route, auth(user["access_token"]))
    assert as_user.status == 403, (route.path, await as_user.text())
    assert (await as_user.json())["code"] == "forbidden"


@pytest.mark.parametrize("route", USER_ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_every_user_route_needs_a_token(client: Any, route: Route) -> None:
    resp = await call(client, route)
    body = await resp.json()
    assert resp.status == 401, (route.path, body)
    assert body["code"] == "unauthorized"
    bad = await call(client, route, {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."})
    assert bad.status == 401


SUPER_ONLY = obj({"ok": BOOL, "role": STR})


async def _super_only(req: Req) -> web.StreamResponse:
    return json_response({"ok": True, "role": req.me.role})


async def test_super_routes_refuse_a_plain_admin(runtime: bootstrap.Runtime, aiohttp_client: Any) -> None:
    app = create_app(
        runtime.unit,
        runtime.bus,
        routes=[*all_routes(), Route("GET", "/api/test/super", _super_only, auth="super", responses={200: SUPER_ONLY})],
    )
    client = await aiohttp_client(app)
    admin = await make_admin(client, runtime, "admin")
    boss = await make_admin(client, runtime, "super_admin")
    assert boss["admin_role"] == "super_admin"

    denied = await client.get("/api/test/super", headers=auth(admin["access_token"]))
    assert denied.status == 403
    assert (await denied.json())["code"] == "forbidden"
    allowed = await client.get("/api/test/super", headers=auth(boss["access_token"]))
    assert allowed.status == 200
    assert await allowed.json() == {"ok": True, "role": "super_admin"}
    # A super admin also passes the plain admin gate.
    assert (await client.get("/api/admin/me", headers=auth(boss["access_token"]))).status == 200


# --------------------------------------------------------------------------- the whole admin table

# Every admin route: the role it needs, and what an allowed caller gets for the probe `call` sends
# (dummy ids, an empty JSON body on writes). A new admin route without a row fails the first test.
ADMIN_TABLE: dict[tuple[str, str], tuple[str, int]] = {
    ("GET", "/api/admin/me"): ("admin", 200),
    ("GET", "/api/admin/users"): ("admin", 200),
    ("GET", "/api/admin/users/{user_id}"): ("admin", 404),
    ("POST", "/api/admin/users/{user_id}/suspend"): ("admin", 409),
    ("POST", "/api/admin/users/{user_id}/reactivate"): ("admin", 404),
    ("POST", "/api/admin/users/{user_id}/shadow-ban"): ("admin", 409),
    ("POST", "/api/admin/users/{user_id}/unshadow-ban"): ("admin", 404),
    ("POST", "/api/admin/users/{user_id}/adjust-credits"): ("super", 422),
    ("GET", "/api/admin/moderation/reports"): ("admin", 200),
    ("GET", "/api/admin/moderation/stats"): ("admin", 200),
    ("POST", "/api/admin/moderation/reports/{report_id}/approve"): ("admin", 404),
    ("POST", "/api/admin/moderation/reports/{report_id}/remove"): ("admin", 409),
    ("POST", "/api/admin/moderation/reports/{report_id}/ban"): ("super", 409),
    ("GET", "/api/admin/audit-logs"): ("admin", 200),
    ("GET", "/api/admin/analytics/overview"): ("admin", 200),
    ("GET", "/api/admin/analytics/user-growth"): ("admin", 200),
    ("GET", "/api/admin/analytics/demographics"): ("admin", 200),
    ("GET", "/api/admin/analytics/revenue"): ("admin", 200),
    ("GET", "/api/admin/analytics/activity"): ("admin", 200),
    ("GET", "/api/admin/analytics/highlights"): ("admin", 200),
    ("GET", "/api/admin/settings"): ("super", 200),
    ("PUT", "/api/admin/settings"): ("super", 409),
}


def test_every_admin_route_has_a_row_in_the_table() -> None:
    served = {(r.method, r.path): r.auth for r in ADMIN_ROUTES}
    assert set(served) == set(ADMIN_TABLE), "admin routes and ADMIN_TABLE differ"
    for key, auth_level in served.items():
        assert ADMIN_TABLE[key][0] == auth_level, key


@pytest.mark.parametrize("key", sorted(ADMIN_TABLE), ids=lambda k: f"{k[0]} {k[1]}")
async def test_admin_route_by_role(client: Any, runtime: bootstrap.Runtime, key: tuple[str, str]) -> None:
    route = next(r for r in ADMIN_ROUTES if (r.method, r.path) == key)
    level, allowed_status = ADMIN_TABLE[key]
    user = await signup(client)
    admin = await make_admin(client, runtime, "admin")
    boss = await make_admin(client, runtime, "super_admin")
    expected = {
        "anonymous": 401,
        "user": 403,
        "admin": allowed_status if level == "admin" else 403,
        "super_admin": allowed_status,
    }
    tokens = {"anonymous": None, "user": user["access_token"], "admin": admin["access_token"], "super_admin": boss["access_token"]}
    got = {}
    for who, token in tokens.items():
        resp = await call(client, route, auth(token) if token else None)
        got[who] = resp.status
    assert got == expected, key


async def test_admin_actions_are_limited_to_60_a_minute_per_admin(client: Any, runtime: bootstrap.Runtime) -> None:
    admin, other = await make_admin(client, runtime), await make_admin(client, runtime)
    url = "/api/admin/users/" + "0" * 32 + "/reactivate"
    statuses = [(await client.post(url, headers=auth(admin["access_token"]))).status for _ in range(61)]
    assert statuses[:60] == [404] * 60 and statuses[60] == 429
    # Per admin: another admin is not affected, and reads are not actions.
    assert (await client.post(url, headers=auth(other["access_token"]))).status == 404
    assert (await client.get("/api/admin/users", headers=auth(admin["access_token"]))).status == 200
