"""The HTTP edge: error envelope, security headers, CORS, OpenAPI, rate limits, Redis outages."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from aiohttp import web

from tests.support.accounts import auth, signup, signup_body
from truebond import bootstrap
from truebond.adapters.redis_client import free_port
from truebond.api.app import all_routes, create_app
from truebond.api.routing import Req, Route
from truebond.config import Settings

FRONTEND = "https://app.truebond.test"
SECRET_FAILURE_TEXT = "ledger cursor exploded near shard kappa"

EXPECTED_SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def assert_security_headers(resp: Any) -> None:
    """Every answer carries the security headers and a Server header without a version."""
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, (name, resp.headers.get(name))
    assert "frame-ancestors 'none'" in resp.headers.get("Content-Security-Policy", "")
    assert resp.headers.get("Referrer-Policy"), "Referrer-Policy missing"
    server = resp.headers.get("Server", "")
    assert "aiohttp" not in server.lower() and "python" not in server.lower(), server
    assert not re.search(r"\d", server), f"Server header reveals a version: {server}"


def assert_envelope(body: Any, status_code: str) -> None:
    """The one error shape of API.md."""
    assert isinstance(body, dict), body
    assert body["code"] == status_code, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["request_id"], str) and body["request_id"]


async def boom(req: Req) -> web.StreamResponse:
    raise RuntimeError(SECRET_FAILURE_TEXT)


@pytest.fixture
async def boom_client(runtime: bootstrap.Runtime, aiohttp_client: Any) -> Any:
    """The real app plus one route whose handler crashes."""
    app = create_app(runtime.unit, runtime.bus, routes=[*all_routes(), Route("GET", "/api/test/boom", boom)])
    return await aiohttp_client(app)


@pytest.fixture
async def redis_down(settings: Settings, db: Any, aiohttp_client: Any) -> AsyncIterator[Any]:
    """A second runtime on the same database whose REDIS_URL points at a closed port."""
    dead = attrs.evolve(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    rt = await bootstrap.build(dead, db=db, fast_hashing=True)
    try:
        yield await aiohttp_client(bootstrap.web_app(rt))
    finally:
        await rt.close()


# --------------------------------------------------------------------------- errors


async def test_unexpected_exception_is_a_generic_500_and_the_traceback_only_in_the_log(boom_client: Any, log_output: Any) -> None:
    resp = await boom_client.get("/api/test/boom")
    raw = await resp.text()
    assert resp.status == 500
    body = json.loads(raw)
    assert body == {"detail": "Internal server error", "code": "internal", "request_id": body["request_id"]}
    assert SECRET_FAILURE_TEXT not in raw
    assert "Traceback" not in raw and "RuntimeError" not in raw
    assert_security_headers(resp)

    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    crash = [line for line in lines if line.get("event") == "http.unhandled_error"]
    assert len(crash) == 1, lines
    assert crash[0]["request_id"] == body["request_id"]
    assert "Traceback" in crash[0]["exception"]
    assert SECRET_FAILURE_TEXT in crash[0]["exception"]
    assert "in boom" in crash[0]["exception"]


async def test_request_id_from_the_client_is_echoed_in_the_error_envelope(boom_client: Any) -> None:
    resp = await boom_client.get("/api/test/boom", headers={"X-Request-ID": "trace-0123456789abcdef"})
    body = await resp.json()
    assert resp.status == 500
    assert body["request_id"] == "trace-0123456789abcdef"


async def test_unknown_path_is_404_in_the_envelope(client: Any) -> None:
    resp = await client.get("/api/does-not-exist")
    assert resp.status == 404
    assert_envelope(await resp.json(), "not_found")
    assert_security_headers(resp)


async def test_removed_legacy_routes_answer_404(client: Any) -> None:
    for path in ("/api/auth/otp/send", "/api/auth/otp/verify", "/api/auth/firebase-login", "/api/auth/login/approve"):
        resp = await client.post(path, json={})
        assert resp.status == 404, path
        assert_envelope(await resp.json(), "not_found")


async def test_a_malformed_request_refused_by_aiohttp_itself_shows_no_server_version(client: Any) -> None:
    # Refused in aiohttp's protocol layer, before any middleware or response hook runs.
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /api/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(10):
        raw = await reader.read()
    writer.close()
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/1.") and " 400 " in head.splitlines()[0], head
    server = [line.split(":", 1)[1].strip() for line in head.splitlines()[1:] if line.lower().startswith("server:")]
    assert server == ["truebond"], head


async def test_wrong_method_is_405_in_the_envelope(client: Any) -> None:
    resp = await client.put("/api/auth/signup", json={})
    assert resp.status == 405
    assert_envelope(await resp.json(), "method_not_allowed")
    assert "POST" in resp.headers.get("Allow", "")
    assert_security_headers(resp)


# --------------------------------------------------------------------------- security headers


async def test_security_headers_on_success_401_and_404(client: Any) -> None:
    ok = await client.get("/api/health")
    assert ok.status == 200
    assert await ok.json() == {"status": "ok"}
    assert_security_headers(ok)

    denied = await client.get("/api/auth/me")
    assert denied.status == 401
    assert_envelope(await denied.json(), "unauthorized")
    assert_security_headers(denied)

    missing = await client.get("/nowhere")
    assert missing.status == 404
    assert_security_headers(missing)


async def test_security_headers_on_429(client: Any) -> None:
    email = signup_body()["email"]
    resp = None
    for _ in range(11):
        resp = await client.post("/api/auth/login", json={"email": email, "password": "wrong-password"})
    assert resp is not None and resp.status == 429
    assert_security_headers(resp)


# --------------------------------------------------------------------------- CORS


async def test_cors_preflight_from_the_frontend_is_allowed_with_credentials(client: Any) -> None:
    resp = await client.options(
        "/api/auth/login",
        headers={"Origin": FRONTEND, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Content-Type"},
    )
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert_security_headers(resp)


async def test_cors_preflight_from_another_origin_gets_no_allow_headers(client: Any) -> None:
    for origin in ("https://evil.example", "http://app.truebond.test", "https://app.truebond.test.evil.example"):
        resp = await client.options(
            "/api/auth/login",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "Content-Type"},
        )
        assert resp.status >= 400, origin
        allow = [h for h in resp.headers if h.lower().startswith("access-control-allow-")]
        assert allow == [], (origin, allow)
        assert_security_headers(resp)


async def test_cors_actual_request_only_reflects_the_frontend_origin(client: Any) -> None:
    good = await client.get("/api/health", headers={"Origin": FRONTEND})
    assert good.headers.get("Access-Control-Allow-Origin") == FRONTEND
    assert good.headers.get("Access-Control-Allow-Credentials") == "true"

    bad = await client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in bad.headers
    assert "Access-Control-Allow-Credentials" not in bad.headers


async def test_cors_headers_on_an_error_so_the_frontend_can_read_it(client: Any) -> None:
    resp = await client.get("/api/auth/me", headers={"Origin": FRONTEND})
    assert resp.status == 401
    assert resp.headers.get("Access-Control-Allow-Origin") == FRONTEND
    assert_envelope(await resp.json(), "unauthorized")


# --------------------------------------------------------------------------- OpenAPI


async def test_openapi_lists_every_route_with_its_method(client: Any) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    routes = all_routes()
    assert len(routes) >= 10
    for route in routes:
        assert route.path in doc["paths"], route.path
        op = doc["paths"][route.path].get(route.method.lower())
        assert op is not None, (route.method, route.path)
        assert op["x-auth"] == route.auth
        if route.auth in ("user", "admin", "super"):
            assert op["security"] == [{"bearer": []}], route.path
        if route.body is not None:
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert schema["type"] == "object" and schema["properties"], route.path
        for name in re.findall(r"{(\w+)}", route.path):
            assert {"name": name, "in": "path"}.items() <= next(p for p in op["parameters"] if p["name"] == name).items()


async def test_openapi_lists_every_route_the_running_app_serves(client: Any) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    served = {
        (route.method, route.resource.canonical)
        for route in client.server.app.router.routes()
        if route.resource is not None
        and route.method not in ("OPTIONS", "HEAD")  # CORS preflights
        and not route.resource.canonical.startswith("/socket.io")  # Socket.IO, not an HTTP API route
    }
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert len(served) >= 10
    assert served == documented


async def test_openapi_signup_schema_carries_the_validation_rules(client: Any) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    schema = doc["paths"]["/api/auth/signup"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    required = set(schema["required"])
    assert {"name", "email", "mobile_number", "password", "age", "gender", "min_age", "max_age", "max_distance_km"} <= required
    assert "device_id" not in required and "referral_code" not in required
    assert schema["properties"]["age"]["minimum"] == 18
    assert schema["properties"]["age"]["maximum"] == 100
    assert schema["properties"]["max_distance_km"]["minimum"] == 1
    assert schema["properties"]["max_distance_km"]["maximum"] == 500
    assert schema["properties"]["name"]["minLength"] == 2
    assert set(schema["properties"]["gender"]["enum"]) == {"male", "female", "other"}
    for forbidden in ("role", "coins", "is_verified"):
        assert forbidden not in schema["properties"]
    assert schema.get("additionalProperties") is False  # unknown fields are rejected (422)
    # Optional fields accept null, written the way the declared OpenAPI 3.1 expects.
    assert doc["openapi"].startswith("3.1")
    assert "nullable" not in json.dumps(doc)
    assert {"type": "null"} in schema["properties"]["device_id"]["anyOf"]


# --------------------------------------------------------------------------- rate limits


async def test_eleventh_login_try_is_429_with_retry_after(client: Any) -> None:
    account = await signup(client)
    email = account["user"]["email"]
    for attempt in range(10):
        resp = await client.post("/api/auth/login", json={"email": email, "password": f"wrong-password-{attempt}"})
        assert resp.status == 401, attempt
    # The 11th try is refused even with the right password.
    resp = await client.post("/api/auth/login", json={"email": email, "password": "correct-horse-1"})
    body = await resp.json()
    assert resp.status == 429, body
    assert body["code"] == "rate_limited"
    assert body["detail"]
    assert "access_token" not in body
    retry_after = int(resp.headers["Retry-After"])
    assert 1 <= retry_after <= 15 * 60


async def test_login_limit_is_per_email(client: Any) -> None:
    account = await signup(client)
    for _ in range(11):
        await client.post("/api/auth/login", json={"email": "someone-else@example.com", "password": "wrong-password"})
    resp = await client.post("/api/auth/login", json={"email": account["user"]["email"], "password": "correct-horse-1"})
    assert resp.status == 200, await resp.json()


async def test_login_limit_counts_the_normalised_email(client: Any) -> None:
    account = await signup(client)
    email = account["user"]["email"]
    for i in range(10):
        variant = email.upper() if i % 2 else f"  {email}  "
        await client.post("/api/auth/login", json={"email": variant, "password": "wrong-password"})
    resp = await client.post("/api/auth/login", json={"email": email, "password": "correct-horse-1"})
    assert resp.status == 429


# --------------------------------------------------------------------------- Redis down


async def test_rate_limited_routes_fail_closed_when_redis_is_down(client: Any, redis_down: Any) -> None:
    account = await signup(client)  # through the healthy runtime, same database
    async with asyncio.timeout(60):  # a hang would be a failure too
        login = await redis_down.post("/api/auth/login", json={"email": account["user"]["email"], "password": "correct-horse-1"})
        login_body = await login.json()
        new = await redis_down.post("/api/auth/signup", json=signup_body())
        new_body = await new.json()
        me = await redis_down.get("/api/auth/me", headers=auth(account["access_token"]))
        me_body = await me.json()
    assert login.status == 503, login_body
    assert_envelope(login_body, "dependency_unavailable")
    assert "access_token" not in login_body
    assert new.status == 503, new_body
    assert_envelope(new_body, "dependency_unavailable")
    assert me.status == 503, me_body
    assert_envelope(me_body, "dependency_unavailable")
    assert_security_headers(login)


async def test_readiness_names_redis_when_it_is_down(client: Any, redis_down: Any) -> None:
    async with asyncio.timeout(60):
        down = await redis_down.get("/api/health/ready")
        body = await down.json()
        live = await redis_down.get("/api/health")
    assert down.status == 503
    assert body["down"] == ["redis"]
    assert body["checks"] == {"mongodb": "up", "redis": "down"}
    assert live.status == 200  # liveness has no dependencies

    ready = await client.get("/api/health/ready")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"mongodb": "up", "redis": "up"}


async def test_readiness_names_mongodb_when_it_is_down(runtime: bootstrap.Runtime, aiohttp_client: Any) -> None:
    dead_db = bootstrap.mongo_database(f"mongodb://127.0.0.1:{free_port()}/truebond")
    rt = await bootstrap.build(runtime.unit.settings, db=dead_db, fast_hashing=True)
    try:
        client = await aiohttp_client(bootstrap.web_app(rt))
        async with asyncio.timeout(60):
            down = await client.get("/api/health/ready")
            body = await down.json()
    finally:
        await rt.close()
        dead_db.client.close()
    assert down.status == 503, body
    assert body["down"] == ["mongodb"]
    assert body["checks"] == {"mongodb": "down", "redis": "up"}
    assert_security_headers(down)
